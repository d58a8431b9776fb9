#!/usr/bin/env bash
# Compares sidetail with cat, GNU `tail -n+1 -F` and busybox `tail -n+1 -F` in one
# run, on the same generated files, and prints ratios; then sidetail rotate with
# logrotate copytruncate on the same writer. Timings are noisy: compare the
# ratios of one run, not absolute numbers across runs.
#
#   bench/compare.sh                 # 1 GiB catch-up, 60 s idle
#   SIZE_MB=256 IDLE_SECONDS=10 bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-1024}
IDLE_SECONDS=${IDLE_SECONDS:-60}
WORK=${WORK:-$(mktemp -d /var/tmp/sidetail-bench.XXXXXX)}
trap 'rm -rf "$WORK"' EXIT

if ! command -v busybox >/dev/null; then
  echo "installing busybox-static (Debian) ..." >&2
  apt-get install -y -qq busybox-static >/dev/null
fi
if ! command -v logrotate >/dev/null; then
  echo "installing logrotate (Debian) ..." >&2
  apt-get install -y -qq logrotate >/dev/null
fi

static=$WORK/sidetail
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$static" .
# Checkpoints off for the comparisons: a second run would resume and print nothing.
bin=$WORK/sidetail-nostate
printf '#!/bin/sh\nexec %s --state-dir= "$@"\n' "$static" > "$bin"; chmod +x "$bin"
# With checkpoints, each run starting from an empty state dir.
withstate=$WORK/sidetail-state
printf '#!/bin/sh\nrm -rf %s/state; exec %s --state-dir=%s/state "$@"\n' "$WORK" "$static" "$WORK" > "$withstate"; chmod +x "$withstate"
go build -o "$WORK/latency" ./bench/latency

# 100-byte lines: 99 bytes of text and a newline.
big=$WORK/big.log
lines=$(( SIZE_MB * 1024 * 1024 / 100 ))
awk -v n="$lines" 'BEGIN { pad = sprintf("%80s", ""); gsub(/ /, "x", pad);
  for (i = 0; i < n; i++) printf "%018d %s\n", i, pad }' > "$big"

# until_out HEAD_ARG CMD...: runs CMD into a pipe until `head HEAD_ARG` has what it
# wants (-c BYTES or -n LINES); prints wall ms and the CPU ms of CMD's threads (from
# schedstat, in ns; CMD may exec but must not fork).
until_out() {
  local n=$1; shift
  local fifo=$WORK/fifo; rm -f "$fifo"; mkfifo "$fifo"
  local t0 t1 cpu
  t0=$(date +%s%N)
  "$@" > "$fifo" 2>/dev/null & local pid=$!
  head $n < "$fifo" > /dev/null
  t1=$(date +%s%N)
  cpu=$(cat /proc/$pid/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s / 1e6 }')
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  echo $(( (t1 - t0) / 1000000 )) "$cpu"
}

# best HEAD_ARG CMD...: the fastest of 3 runs of until_out.
best() {
  local b=""
  for _ in 1 2 3; do
    local ms; ms=$(until_out "$@" | cut -d' ' -f1)
    if [ -z "$b" ] || [ "$ms" -lt "$b" ]; then b=$ms; fi
  done
  echo "$b"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "== catch-up: $SIZE_MB MiB of 100-byte lines into a pipe (higher ratio is faster)"
cat "$big" > /dev/null # warm the page cache: every tool reads from memory
# Raw output is the file's bytes: stop at that many. JSON is longer: count lines.
bytes="-c $(stat -c %s "$big")"
cat_ms=$(best "$bytes" cat "$big")
raw_ms=$(best "$bytes" "$bin" "$big")
json_ms=$(best "-n $lines" "$bin" --format=json "$big")
gnu_ms=$(best "$bytes" tail -n+1 -F "$big")
bb_ms=$(best "$bytes" busybox tail -n+1 -F "$big")
mbs() { awk -v ms="$1" -v mb="$SIZE_MB" 'BEGIN { printf "%.0f MiB/s", mb / (ms / 1000) }'; }
printf "%-22s %7s ms  %-12s 1.00 x cat\n" cat "$cat_ms" "$(mbs "$cat_ms")"
printf "%-22s %7s ms  %-12s %s x cat, %s x GNU tail (target >= 0.7 x cat, >= 1 x GNU)\n" "sidetail raw" "$raw_ms" "$(mbs "$raw_ms")" "$(ratio "$cat_ms" "$raw_ms")" "$(ratio "$gnu_ms" "$raw_ms")"
printf "%-22s %7s ms  %-12s %s x cat (target >= 0.25)\n" "sidetail json" "$json_ms" "$(mbs "$json_ms")" "$(ratio "$cat_ms" "$json_ms")"
printf "%-22s %7s ms  %-12s %s x cat\n" "GNU tail -n+1 -F" "$gnu_ms" "$(mbs "$gnu_ms")" "$(ratio "$cat_ms" "$gnu_ms")"
printf "%-22s %7s ms  %-12s %s x cat\n" "busybox tail -n+1 -F" "$bb_ms" "$(mbs "$bb_ms")" "$(ratio "$cat_ms" "$bb_ms")"

# Checkpoint overhead is a few percent, below the spread of single runs here: runs
# with and without alternate, and the medians of wall and CPU time are compared.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: > "$WORK/cp"
for _ in $(seq "${CP_ROUNDS:-9}"); do
  echo "off $(until_out "$bytes" "$bin" "$big")" >> "$WORK/cp"
  echo "on $(until_out "$bytes" "$withstate" "$big")" >> "$WORK/cp"
done
for m in off on; do
  eval "${m}_wall=$(awk -v m=$m '$1 == m { print $2 }' "$WORK/cp" | median)"
  eval "${m}_cpu=$(awk -v m=$m '$1 == m { print $3 }' "$WORK/cp" | median)"
done
echo "== checkpoint overhead: medians of ${CP_ROUNDS:-9} alternating catch-ups (target <= 5%)"
printf "%-22s wall %5s ms  cpu %5s ms\n" "checkpoints off" "$off_wall" "$off_cpu"
printf "%-22s wall %5s ms  cpu %5s ms  (%s x wall, %s x cpu)\n" "checkpoints on" "$on_wall" "$on_cpu" \
  "$(ratio "$on_wall" "$off_wall")" "$(ratio "$on_cpu" "$off_cpu")"
rm -f "$big"

echo "== latency: write -> stdout at 200 lines/s (target p99 <= 5 ms)"
lat=$WORK/lat.log
printf "%-22s %s\n" sidetail "$("$WORK/latency" -file "$lat" -n 2000 -- "$bin" "$lat")"
printf "%-22s %s\n" "GNU tail -F" "$("$WORK/latency" -file "$lat" -n 2000 -- tail -n+1 -F "$lat")"
printf "%-22s %s\n" "busybox tail -F" "$("$WORK/latency" -file "$lat" -n 400 -- busybox tail -n+1 -F "$lat")"

# cpu_rss PID: prints CPU seconds used and RSS/peak RSS in KiB.
cpu_rss() {
  local ticks hz
  ticks=$(awk '{ print $14 + $15 }' "/proc/$1/stat")
  hz=$(getconf CLK_TCK)
  printf "cpu_s=%s rss_kib=%s peak_kib=%s" "$(awk -v t="$ticks" -v h="$hz" 'BEGIN { printf "%.2f", t / h }')" \
    "$(awk '/VmRSS/ { print $2 }' "/proc/$1/status")" "$(awk '/VmHWM/ { print $2 }' "/proc/$1/status")"
}

echo "== idle: 10 files for ${IDLE_SECONDS}s (target <= 0.05 CPU-s, RSS <= 8 MiB)"
idle=()
for i in $(seq 10); do echo "line $i" > "$WORK/idle$i.log"; idle+=("$WORK/idle$i.log"); done
"$static" --state-dir= "${idle[@]}" > /dev/null 2>&1 & pid=$!
sleep 1
start_ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
sleep "$IDLE_SECONDS"
end_ticks=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
printf "%-22s idle_cpu_s=%s %s\n" sidetail "$(awk -v a="$start_ticks" -v b="$end_ticks" -v h="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / h }')" "$(cpu_rss $pid)"
kill $pid; wait $pid 2>/dev/null || true
tail -n+1 -F "${idle[@]}" > /dev/null 2>&1 & pid=$!
sleep 1; printf "%-22s %s\n" "GNU tail -F" "$(cpu_rss $pid)"; kill $pid; wait $pid 2>/dev/null || true

echo "== 16 MiB lines: peak RSS (target <= 16 MiB)"
long=$WORK/long.log
for i in 1 2 3 4; do head -c $((16 << 20)) /dev/zero | tr '\0' 'y'; echo; done > "$long"
fifo=$WORK/fifo; rm -f "$fifo"; mkfifo "$fifo"
"$static" --state-dir= "$long" > "$fifo" 2>/dev/null & pid=$!
# --max-line is 1Mi: 4 lines come out as 64 pieces.
head -n 64 < "$fifo" > /dev/null
printf "%-22s %s\n" sidetail "$(cpu_rss $pid)"
kill $pid; wait $pid 2>/dev/null || true

echo "== binary: CGO_ENABLED=0 -trimpath -ldflags='-s -w' (target <= 6 MiB)"
printf "%-22s %s bytes (%s MiB)\n" sidetail "$(stat -c %s "$static")" "$(awk -v s="$(stat -c %s "$static")" 'BEGIN { printf "%.2f", s / 1048576 }')"

echo "== rotation: a writer at ${ROTATE_RATE:-50000} lines/s for ${ROTATE_SECONDS:-10}s, cut at 1 MiB, checked every 100ms (target: lost 0)"
go build -o "$WORK/rotateloss" ./bench/rotateloss
"$WORK/rotateloss" -rotator logrotate -rate "${ROTATE_RATE:-50000}" -seconds "${ROTATE_SECONDS:-10}" | sed 's/^logrotate  */logrotate copytruncate /'
"$WORK/rotateloss" -rotator sidetail -bin "$static" -rate "${ROTATE_RATE:-50000}" -seconds "${ROTATE_SECONDS:-10}" | sed 's/^sidetail  */sidetail rotate        /'
