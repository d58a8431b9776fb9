#!/usr/bin/env bash
# Compares sidetail with cat, GNU `tail -n+1 -F` and busybox `tail -n+1 -F` in one
# run, on the same generated files, and prints ratios; then sidetail rotate with
# logrotate copytruncate on the same writer. Timings are noisy: compare the
# ratios of one run, not absolute numbers across runs.
#
#   bench/compare.sh [MODE...]
#
# Modes (none: catchup checkpoint latency idle longline binary rotation):
#   steady      a writer appends 100-byte lines at STEADY_MB MB/s in 64 KiB writes
#               for STEADY_SECONDS; each follower's stdout goes to bench/drain; CPU-
#               seconds (schedstat) per GB relayed, median of STEADY_ROUNDS alternating
#               rounds; bench/floor shows what a Go follower costs at the least
#   latency     write -> stdout latency at LATENCY_RATE lines/s
#   maxrate     the same latency without and with --max-rate=MAX_RATE (default 1Mi),
#               alternating for MAXRATE_ROUNDS rounds: pacing must not delay lines
#               that come far below the rate
#   idle        IDLE_FILES idle files for IDLE_SECONDS: wakeups/s, CPU, RSS
#   many        MANY_FILES idle files for MANY_SECONDS: RSS, CPU
#   catchup     SIZE_MB MiB of 100-byte lines into a pipe, against cat: into head, then
#               into a fast reader (bench/drain), with the bound the pipe sets JSON
#   checkpoint  catch-up with and without checkpoints, alternating
#   longline    --max-line=LONG_MAX_MB Mi with one LONG_MB MiB line: peak RSS
#   binary      the static binary's size
#   rotation    logrotate copytruncate against sidetail rotate: lines lost
#   compress    sidetail rotate --compress against a writer of random base64 lines
#               at COMPRESS_MB MB/s: how large the live file gets
#   issue17     steady latency idle many catchup longline compress binary
#
# Two sidetail builds in one run (before/after): SIDETAIL_BASE=/path/to/old runs
# every sidetail measurement for both, alternating, beside SIDETAIL (default: built
# from this tree). QUICK=1 shortens every duration (about 2-3 minutes for issue17).
#
#   bench/compare.sh                 # 1 GiB catch-up, 60 s idle
#   SIZE_MB=256 IDLE_SECONDS=10 bench/compare.sh
#   SIDETAIL_BASE=/tmp/sidetail-main bench/compare.sh issue17
#   QUICK=1 SIDETAIL_BASE=/tmp/sidetail-main bench/compare.sh steady
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${QUICK:-}" ]; then
  : "${SIZE_MB:=128}" "${IDLE_SECONDS:=10}" "${STEADY_SECONDS:=4}" "${STEADY_ROUNDS:=1}"
  : "${LATENCY_N:=400}" "${MANY_SECONDS:=10}" "${LONG_MAX_MB:=16}" "${LONG_MB:=64}"
  : "${COMPRESS_SECONDS:=4}" "${CP_ROUNDS:=3}" "${ROTATE_SECONDS:=3}"
fi
# Defaults, by mode (QUICK=1 above shortens them; the environment overrides both).
: "${SIZE_MB:=1024}" "${IDLE_SECONDS:=60}" "${IDLE_FILES:=10}"
: "${STEADY_MB:=20}" "${STEADY_SECONDS:=20}" "${STEADY_ROUNDS:=3}"
: "${LATENCY_RATE:=200}" "${LATENCY_N:=2000}" "${MAX_RATE:=1Mi}" "${MAXRATE_ROUNDS:=3}"
: "${MANY_FILES:=1000}" "${MANY_SECONDS:=30}" "${LONG_MAX_MB:=64}" "${LONG_MB:=256}"
: "${COMPRESS_MB:=100}" "${COMPRESS_SECONDS:=15}"
WORK=${WORK:-$(mktemp -d /var/tmp/sidetail-bench.XXXXXX)}
trap 'rm -rf "$WORK"' EXIT
# The followed files have a folder of their own: the FIFOs and result files written
# beside them during a run would raise events in the followed folder, as a pod's
# stdout (a pipe) does not.
LOGS=$WORK/logs
mkdir -p "$LOGS"

if ! command -v busybox >/dev/null; then
  echo "installing busybox-static (Debian) ..." >&2
  apt-get install -y -qq busybox-static >/dev/null
fi
if ! command -v logrotate >/dev/null; then
  echo "installing logrotate (Debian) ..." >&2
  apt-get install -y -qq logrotate >/dev/null
fi

# The sidetail builds under test: NAMES[i] runs BINS[i]. With SIDETAIL_BASE the
# base comes first, so "sidetail" (the new one) is always the last.
if [ -n "${SIDETAIL:-}" ]; then
  cp "$SIDETAIL" "$WORK/sidetail"
else
  CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$WORK/sidetail" .
fi
NAMES=(sidetail) BINS=("$WORK/sidetail")
if [ -n "${SIDETAIL_BASE:-}" ]; then
  cp "$SIDETAIL_BASE" "$WORK/sidetail-base"
  NAMES=(sidetail-base sidetail) BINS=("$WORK/sidetail-base" "$WORK/sidetail")
fi
# Checkpoints off for the comparisons: a second run would resume and print nothing.
for b in "${BINS[@]}"; do
  printf '#!/bin/sh\nexec %s --state-dir= "$@"\n' "$b" > "$b-nostate"; chmod +x "$b-nostate"
done
static=$WORK/sidetail
bin=$WORK/sidetail-nostate
go build -o "$WORK/latency" ./bench/latency
go build -o "$WORK/appender" ./bench/appender
go build -o "$WORK/rotateloss" ./bench/rotateloss
go build -o "$WORK/drain" ./bench/drain
go build -o "$WORK/floor" ./bench/floor

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.2f", a / b }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
hz=$(getconf CLK_TCK)
# cpu_ticks PID: user+system clock ticks of the process, exited threads included.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# cpu_ns PID: nanoseconds its living threads ran (schedstat: exact, where the clock
# ticks of /proc/PID/stat count 10 ms at a time: a steady round is 15-30 of them).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'; }
# switches PID: voluntary and involuntary context switches of all its threads: each
# is a wakeup (or a preemption) of one of them.
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }'; }
rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
# stop PID: SIGTERM, then wait for it.
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# 100-byte lines: 99 bytes of text and a newline.
make_lines() { # FILE MIB
  awk -v n="$(( $2 * 1024 * 1024 / 100 ))" 'BEGIN { pad = sprintf("%80s", ""); gsub(/ /, "x", pad);
    for (i = 0; i < n; i++) printf "%018d %s\n", i, pad }' > "$1"
}

# until_out READER CMD...: runs CMD into a pipe until READER (a command line, e.g.
# "head -c BYTES", "head -n LINES" or "$WORK/drain -lines LINES") has what it wants
# and exits; prints wall ms and the CPU ms of CMD's threads (from schedstat, in ns;
# CMD may exec but must not fork). READER's stdout goes to READER_OUT, /dev/null
# unless set (head's copy of the output into a file would be what is timed).
until_out() {
  local reader=$1; shift
  local fifo=$WORK/fifo; rm -f "$fifo"; mkfifo "$fifo"
  local t0 t1 cpu
  t0=$(date +%s%N)
  "$@" > "$fifo" 2>/dev/null & local pid=$!
  $reader < "$fifo" > "${READER_OUT:-/dev/null}"
  t1=$(date +%s%N)
  cpu=$(cat /proc/$pid/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s / 1e6 }')
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  echo $(( (t1 - t0) / 1000000 )) "$cpu"
}

# best_run READER CMD...: the fastest of 3 runs of until_out: its wall and CPU ms.
best_run() {
  local b="" line
  for _ in 1 2 3; do
    line=$(until_out "$@")
    if [ -z "$b" ] || [ "${line%% *}" -lt "${b%% *}" ]; then b=$line; fi
  done
  echo "$b"
}

# best READER CMD...: the wall ms of best_run.
best() { best_run "$@" | cut -d' ' -f1; }

mode_catchup() {
  local big=$LOGS/big.log lines=$(( SIZE_MB * 1024 * 1024 / 100 ))
  make_lines "$big" "$SIZE_MB"
  echo "== catch-up: $SIZE_MB MiB of 100-byte lines into a pipe (higher ratio is faster)"
  cat "$big" > /dev/null # warm the page cache: every tool reads from memory
  # Raw output is the file's bytes: stop at that many. JSON is longer: count lines.
  local bytes="head -c $(stat -c %s "$big")"
  local cat_ms gnu_ms bb_ms
  cat_ms=$(best "$bytes" cat "$big")
  gnu_ms=$(best "$bytes" tail -n+1 -F "$big")
  bb_ms=$(best "$bytes" busybox tail -n+1 -F "$big")
  mbs() { awk -v ms="$1" -v mb="$SIZE_MB" 'BEGIN { printf "%.0f MiB/s", mb / (ms / 1000) }'; }
  printf "%-26s %7s ms  %-12s 1.00 x cat\n" cat "$cat_ms" "$(mbs "$cat_ms")"
  local i raw_ms ts_ms json_ms
  for i in "${!BINS[@]}"; do
    raw_ms=$(best "$bytes" "${BINS[$i]}-nostate" "$big")
    ts_ms=$(best "head -n $lines" "${BINS[$i]}-nostate" --timestamps "$big")
    json_ms=$(best "head -n $lines" "${BINS[$i]}-nostate" --format=json "$big")
    printf "%-26s %7s ms  %-12s %s x cat, %s x GNU tail (target >= 1 x GNU)\n" "${NAMES[$i]} raw" "$raw_ms" "$(mbs "$raw_ms")" "$(ratio "$cat_ms" "$raw_ms")" "$(ratio "$gnu_ms" "$raw_ms")"
    printf "%-26s %7s ms  %-12s %s x cat\n" "${NAMES[$i]} --timestamps" "$ts_ms" "$(mbs "$ts_ms")" "$(ratio "$cat_ms" "$ts_ms")"
    printf "%-26s %7s ms  %-12s %s x cat (target >= 0.7)\n" "${NAMES[$i]} json" "$json_ms" "$(mbs "$json_ms")" "$(ratio "$cat_ms" "$json_ms")"
  done
  printf "%-26s %7s ms  %-12s %s x cat\n" "GNU tail -n+1 -F" "$gnu_ms" "$(mbs "$gnu_ms")" "$(ratio "$cat_ms" "$gnu_ms")"
  printf "%-26s %7s ms  %-12s %s x cat\n" "busybox tail -n+1 -F" "$bb_ms" "$(mbs "$bb_ms")" "$(ratio "$cat_ms" "$bb_ms")"
  echo "   (JSON output is ~2x the input's bytes: into \`head\`, the pipe's reader bounds it)"
  catchup_fast "$big" "$lines" "$cat_ms"
  rm -f "$big"
}

# catchup_fast FILE LINES HEAD_CAT_MS: catch-up into a fast reader, drain, which
# costs a read and a vectorised newline count per MiB: what is left is the writer
# and the pipe. Then the bound that leaves JSON: as many bytes as its output, from
# a writer with nothing else to do (dd from /dev/zero in cat's 128 KiB writes),
# into the same reader.
catchup_fast() {
  local big=$1 lines=$2 head_cat_ms=$3 drain="$WORK/drain -lines $2"
  echo "== catch-up into a fast reader (drain: 1 MiB reads; into head above, head's work per line is the bound)"
  local cat_ms i run ts_ms ts_cpu json_ms json_cpu json_bytes=0
  cat_ms=$(best "$drain" cat "$big")
  printf "%-26s %7s ms  %-12s 1.00 x cat\n" "cat" "$cat_ms" "$(mbs "$cat_ms")"
  for i in "${!BINS[@]}"; do
    run=$(best_run "$drain" "${BINS[$i]}-nostate" --timestamps "$big"); ts_ms=${run% *} ts_cpu=${run#* }
    run=$(READER_OUT=$WORK/drain.out best_run "$drain" "${BINS[$i]}-nostate" --format=json "$big"); json_ms=${run% *} json_cpu=${run#* }
    json_bytes=$(cat "$WORK/drain.out")
    printf "%-26s %7s ms  %-12s %s x cat  cpu %s ms\n" "${NAMES[$i]} --timestamps" "$ts_ms" "$(mbs "$ts_ms")" "$(ratio "$cat_ms" "$ts_ms")" "$ts_cpu"
    printf "%-26s %7s ms  %-12s %s x cat  cpu %s ms (target >= 0.7)\n" "${NAMES[$i]} json" "$json_ms" "$(mbs "$json_ms")" "$(ratio "$cat_ms" "$json_ms")" "$json_cpu"
  done
  # As many bytes as the last JSON run wrote (the time field's width varies: the
  # next run's differ by a few KiB at most).
  local bound_ms
  bound_ms=$(best "$WORK/drain -bytes $json_bytes" dd if=/dev/zero bs=128K count="$json_bytes" iflag=count_bytes status=none)
  printf "%-26s %7s ms  %-12s %s x cat\n" "pipe alone, JSON's bytes" "$bound_ms" "$(mbs "$bound_ms")" "$(ratio "$cat_ms" "$bound_ms")"
  echo "   reader bound: JSON is $(ratio "$json_bytes" "$(stat -c %s "$big")") x the input's bytes; moving them alone into this reader (dd from /dev/zero, no file"
  echo "   read, no encoding) takes ${bound_ms} ms, so no JSON writer gets past $(ratio "$cat_ms" "$bound_ms") x cat here; into head -n (cat ${head_cat_ms} ms), head's work per line caps it lower"
}

mode_checkpoint() {
  local big=$LOGS/big.log
  make_lines "$big" "$SIZE_MB"
  cat "$big" > /dev/null
  local bytes="head -c $(stat -c %s "$big")"
  # With checkpoints, each run starting from an empty state dir.
  local withstate=$WORK/sidetail-state
  printf '#!/bin/sh\nrm -rf %s/state; exec %s --state-dir=%s/state "$@"\n' "$WORK" "$static" "$WORK" > "$withstate"; chmod +x "$withstate"
  # Checkpoint overhead is a few percent, below the spread of single runs here: runs
  # with and without alternate, and the medians of wall and CPU time are compared.
  : > "$WORK/cp"
  for _ in $(seq "${CP_ROUNDS:-9}"); do
    echo "off $(until_out "$bytes" "$bin" "$big")" >> "$WORK/cp"
    echo "on $(until_out "$bytes" "$withstate" "$big")" >> "$WORK/cp"
  done
  local off_wall off_cpu on_wall on_cpu
  off_wall=$(awk '$1 == "off" { print $2 }' "$WORK/cp" | median)
  off_cpu=$(awk '$1 == "off" { print $3 }' "$WORK/cp" | median)
  on_wall=$(awk '$1 == "on" { print $2 }' "$WORK/cp" | median)
  on_cpu=$(awk '$1 == "on" { print $3 }' "$WORK/cp" | median)
  echo "== checkpoint overhead: medians of ${CP_ROUNDS:-9} alternating catch-ups (target <= 5%)"
  printf "%-26s wall %5s ms  cpu %5s ms\n" "checkpoints off" "$off_wall" "$off_cpu"
  printf "%-26s wall %5s ms  cpu %5s ms  (%s x wall, %s x cpu)\n" "checkpoints on" "$on_wall" "$on_cpu" \
    "$(ratio "$on_wall" "$off_wall")" "$(ratio "$on_cpu" "$off_cpu")"
  rm -f "$big"
}

# follow_steady NAME CMD...: runs CMD on a file the appender writes, its stdout into
# drain; once the appender is done and drain has seen every line it wrote, prints
# NAME, the CPU nanoseconds CMD used, the bytes and lines written and the lines CMD
# relayed.
follow_steady() {
  local name=$1; shift
  local f=$LOGS/steady.log fifo=$WORK/steady.fifo target=$WORK/steady.target
  rm -f "$f" "$fifo" "$target" "$WORK/steady.count"; : > "$f"; mkfifo "$fifo"
  "$WORK/drain" -until "$target" < "$fifo" > "$WORK/steady.count" 2>/dev/null & local drain_pid=$!
  "$@" "$f" > "$fifo" 2>/dev/null & local pid=$!
  sleep 0.3 # started and watching
  local t0 lines size
  t0=$(cpu_ns "$pid")
  lines=$("$WORK/appender" -file "$f" -rate "$STEADY_MB" -seconds "$STEADY_SECONDS")
  size=$(stat -c %s "$f")
  echo "$lines" > "$target.tmp"; mv "$target.tmp" "$target"
  # Caught up when drain has printed that it saw every line (10 s guard: a follower
  # that lost some).
  local deadline=$(( $(date +%s) + 10 ))
  while [ ! -s "$WORK/steady.count" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.02; done
  local cpu
  cpu=$(( $(cpu_ns "$pid") - t0 ))
  stop "$pid"; stop "$drain_pid"
  local relayed
  relayed=$(cat "$WORK/steady.count" 2>/dev/null); relayed=${relayed:-0}
  echo "$name $cpu $size $lines $relayed"
}

mode_steady() {
  echo "== steady follow: ${STEADY_MB} MB/s of 100-byte lines in 64 KiB writes for ${STEADY_SECONDS}s, stdout into drain;"
  echo "   CPU-seconds per GB relayed, median of $STEADY_ROUNDS alternating rounds (target: raw <= 1.1 x GNU, json <= 1.6 x GNU)"
  : > "$WORK/steady"
  local r i
  for r in $(seq "$STEADY_ROUNDS"); do
    for i in "${!BINS[@]}"; do
      follow_steady "${NAMES[$i]}_raw" "${BINS[$i]}-nostate" >> "$WORK/steady"
      follow_steady "${NAMES[$i]}_json" "${BINS[$i]}-nostate" --format=json >> "$WORK/steady"
    done
    follow_steady "GNU_tail_-F" tail -n+1 -F >> "$WORK/steady"
    follow_steady "busybox_tail_-F" busybox tail -n+1 -F >> "$WORK/steady"
    follow_steady "Go_floor" "$WORK/floor" >> "$WORK/steady"
    follow_steady "Go_floor_-hop" "$WORK/floor" -hop >> "$WORK/steady"
    echo "   round $r done" >&2
  done
  # CPU-s per GB of each run, then the median per follower.
  awk '{ print $1, ($2 / 1e9) / ($3 / 1e9), ($5 == $4 ? "ok" : "LOST:" $4 - $5) }' "$WORK/steady" > "$WORK/steady.per"
  local gnu name
  gnu=$(awk '$1 == "GNU_tail_-F" { print $2 }' "$WORK/steady.per" | median)
  for name in "${NAMES[@]/%/_raw}" "${NAMES[@]/%/_json}" GNU_tail_-F busybox_tail_-F Go_floor Go_floor_-hop; do
    local m lost
    m=$(awk -v n="$name" '$1 == n { print $2 }' "$WORK/steady.per" | median)
    lost=$(awk -v n="$name" '$1 == n && $3 != "ok" { print $3 }' "$WORK/steady.per" | head -1)
    printf "%-26s %6.2f CPU-s/GB  %s x GNU tail%s\n" "${name//_/ }" "$m" "$(ratio "$m" "$gnu")" "${lost:+  $lost lines}"
  done
}

mode_latency() {
  echo "== latency: write -> stdout at $LATENCY_RATE lines/s, $LATENCY_N lines (target p99 <= 0.5 ms)"
  local lat=$LOGS/lat.log i
  for i in "${!BINS[@]}"; do
    printf "%-26s %s\n" "${NAMES[$i]}" "$("$WORK/latency" -file "$lat" -rate "$LATENCY_RATE" -n "$LATENCY_N" -- "${BINS[$i]}-nostate" "$lat")"
  done
  printf "%-26s %s\n" "GNU tail -F" "$("$WORK/latency" -file "$lat" -rate "$LATENCY_RATE" -n "$LATENCY_N" -- tail -n+1 -F "$lat")"
  # busybox sleeps a second between looks: a few lines show it.
  printf "%-26s %s\n" "busybox tail -F" "$("$WORK/latency" -file "$lat" -rate "$LATENCY_RATE" -n "$(( LATENCY_N / 5 ))" -- busybox tail -n+1 -F "$lat")"
}

mode_maxrate() {
  echo "== latency with --max-rate=$MAX_RATE: write -> stdout at $LATENCY_RATE lines/s, $LATENCY_N lines, $MAXRATE_ROUNDS alternating rounds (target: p99 unchanged)"
  local lat=$LOGS/lat.log r i
  for r in $(seq "$MAXRATE_ROUNDS"); do
    for i in "${!BINS[@]}"; do
      printf "%-34s %s\n" "${NAMES[$i]}" "$("$WORK/latency" -file "$lat" -rate "$LATENCY_RATE" -n "$LATENCY_N" -- "${BINS[$i]}-nostate" "$lat")"
      printf "%-34s %s\n" "${NAMES[$i]} --max-rate=$MAX_RATE" "$("$WORK/latency" -file "$lat" -rate "$LATENCY_RATE" -n "$LATENCY_N" -- "${BINS[$i]}-nostate" --max-rate="$MAX_RATE" "$lat")"
    done
  done | tee "$WORK/maxrate"
  # The median over the rounds of each one's p99.
  local name with
  for name in "${NAMES[@]}"; do
    for with in "" " --max-rate=$MAX_RATE"; do
      printf "%-34s median p99_ms=%s\n" "$name$with" "$(awk -v n="$name$with" '{ k = $0; sub(/ +p50_ms=.*/, "", k) } k == n { sub(/.*p99_ms=/, ""); print $1 + 0 }' "$WORK/maxrate" | median)"
    done
  done
}

# idle_measure NAME SECONDS CMD...: starts CMD (its output to /dev/null), lets it
# settle, then prints its wakeups/s, CPU seconds, RSS and peak RSS over SECONDS.
idle_measure() {
  local name=$1 secs=$2; shift 2
  "$@" > /dev/null 2>&1 & local pid=$!
  sleep 2
  local t0 s0 t1 s1
  t0=$(cpu_ticks $pid); s0=$(switches $pid)
  sleep "$secs"
  t1=$(cpu_ticks $pid); s1=$(switches $pid)
  printf "%-26s wakeups/s %6.2f  cpu_s %5.2f  rss %s  peak %s\n" "$name" \
    "$(awk -v a="$s0" -v b="$s1" -v s="$secs" 'BEGIN { print (b - a) / s }')" \
    "$(awk -v a="$t0" -v b="$t1" -v h="$hz" 'BEGIN { print (b - a) / h }')" \
    "$(mib "$(rss_kib $pid)")" "$(mib "$(hwm_kib $pid)")"
  stop $pid
}

mode_idle() {
  echo "== idle: $IDLE_FILES files for ${IDLE_SECONDS}s (target: 0 wakeups/s from timers, RSS <= 5 MiB)"
  local idle=() i
  for i in $(seq "$IDLE_FILES"); do echo "line $i" > "$LOGS/idle$i.log"; idle+=("$LOGS/idle$i.log"); done
  for i in "${!BINS[@]}"; do
    idle_measure "${NAMES[$i]}" "$IDLE_SECONDS" "${BINS[$i]}" --state-dir= "${idle[@]}"
  done
  idle_measure "GNU tail -F" "$IDLE_SECONDS" tail -n+1 -F "${idle[@]}"
  idle_measure "busybox tail -F" "$IDLE_SECONDS" busybox tail -n+1 -F "${idle[@]}"
}

mode_many() {
  echo "== many: $MANY_FILES idle files for ${MANY_SECONDS}s (target: RSS <= 8 MiB, 0 CPU)"
  local dir=$WORK/many i
  mkdir -p "$dir"
  for i in $(seq "$MANY_FILES"); do echo "line $i" > "$dir/f$i.log"; done
  # GNU tail keeps a descriptor per file, as sidetail does.
  ulimit -n $(( MANY_FILES * 2 + 64 )) 2>/dev/null || true
  for i in "${!BINS[@]}"; do
    idle_measure "${NAMES[$i]}" "$MANY_SECONDS" "${BINS[$i]}" --state-dir= "$dir"/*.log
  done
  idle_measure "GNU tail -F" "$MANY_SECONDS" tail -n+1 -F "$dir"/*.log
  rm -rf "$dir"
}

mode_longline() {
  echo "== one ${LONG_MB} MiB line, --max-line=${LONG_MAX_MB}Mi: peak RSS (target <= 2 x max-line + 1 MiB = $(( 2 * LONG_MAX_MB + 1 )) MiB)"
  local long=$LOGS/long.log fifo=$WORK/fifo i fmt
  { head -c $(( LONG_MB << 20 )) /dev/zero | tr '\0' 'y'; echo; } > "$long"
  local pieces=$(( (LONG_MB + LONG_MAX_MB - 1) / LONG_MAX_MB ))
  for i in "${!BINS[@]}"; do
    for fmt in raw json; do
      rm -f "$fifo"; mkfifo "$fifo"
      "${BINS[$i]}" --state-dir= --max-line="${LONG_MAX_MB}Mi" --format="$fmt" "$long" > "$fifo" 2>/dev/null & local pid=$!
      head -n "$pieces" < "$fifo" > /dev/null
      printf "%-26s peak %s  (%s x max-line)\n" "${NAMES[$i]} $fmt" "$(mib "$(hwm_kib $pid)")" \
        "$(awk -v k="$(hwm_kib $pid)" -v m="$LONG_MAX_MB" 'BEGIN { printf "%.2f", k / 1024 / m }')"
      stop $pid
    done
  done
  rm -f "$long"
}

mode_binary() {
  echo "== binary: CGO_ENABLED=0 -trimpath -ldflags='-s -w' (target <= 6 MiB)"
  local i
  for i in "${!BINS[@]}"; do
    printf "%-26s %s bytes (%s MiB)\n" "${NAMES[$i]}" "$(stat -c %s "${BINS[$i]}")" "$(awk -v s="$(stat -c %s "${BINS[$i]}")" 'BEGIN { printf "%.2f", s / 1048576 }')"
  done
}

mode_rotation() {
  echo "== rotation: a writer at ${ROTATE_RATE:-50000} lines/s for ${ROTATE_SECONDS:-10}s, cut at 1 MiB, checked every 100ms (target: lost 0)"
  "$WORK/rotateloss" -rotator logrotate -rate "${ROTATE_RATE:-50000}" -seconds "${ROTATE_SECONDS:-10}" | sed 's/^logrotate  */logrotate copytruncate /'
  local i
  for i in "${!BINS[@]}"; do
    "$WORK/rotateloss" -rotator sidetail -bin "${BINS[$i]}" -rate "${ROTATE_RATE:-50000}" -seconds "${ROTATE_SECONDS:-10}" | sed "s/^sidetail  */$(printf '%-24s' "${NAMES[$i]} rotate")/"
  done
}

mode_compress() {
  echo "== rotate --compress: random base64 lines at ${COMPRESS_MB} MB/s for ${COMPRESS_SECONDS}s in 64 KiB writes, cut at 1 MiB, checked every 100ms (target: live file bounded)"
  local i rate=$(( COMPRESS_MB * 1000000 / 99 ))
  for i in "${!BINS[@]}"; do
    "$WORK/rotateloss" -rotator sidetail -bin "${BINS[$i]}" -compress -fill base64 -batch 65536 \
      -rate "$rate" -seconds "$COMPRESS_SECONDS" | sed "s/^sidetail  */$(printf '%-24s' "${NAMES[$i]}")/"
  done
  "$WORK/rotateloss" -rotator sidetail -bin "$static" -fill base64 -batch 65536 \
    -rate "$rate" -seconds "$COMPRESS_SECONDS" | sed "s/^sidetail  */$(printf '%-24s' "sidetail uncompressed")/"
}

echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); ${NAMES[*]}"
modes=("$@")
if [ ${#modes[@]} -eq 0 ]; then modes=(catchup checkpoint latency idle longline binary rotation); fi
for m in "${modes[@]}"; do
  case $m in
    issue17) for x in steady latency idle many catchup longline compress binary; do "mode_$x"; done ;;
    steady|latency|maxrate|idle|many|catchup|checkpoint|longline|binary|rotation|compress) "mode_$m" ;;
    *) echo "compare.sh: unknown mode $m (see the comment at the top)" >&2; exit 2 ;;
  esac
done
