package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/syncbuf"
)

func TestRotationKinds(t *testing.T) {
	kinds := []string{"rename", "rename-late", "delete", "symlink", "copytruncate"}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			if kind == "symlink" {
				openAppend(t, path+".0").Close()
				if err := os.Symlink("app.log.0", path); err != nil {
					t.Fatal(err)
				}
			}
			p := start(t, path)
			var rotate func(*os.File, int) *os.File
			switch kind {
			case "rename":
				rotate = renameRotation(t, path)
			case "rename-late":
				// The old descriptor gets 500 more lines after the rename, written by
				// the same writer, before it opens the new file.
				g := &lineGen{stream: "w"}
				f := openAppend(t, path)
				f.Write(g.next(1))
				p.waitLines(t, 1) // the path was opened before the first rotation
				late := 0
				for g.seq < stressLines {
					n := min(50, stressLines-g.seq)
					if _, err := f.Write(g.next(n)); err != nil {
						t.Fatal(err)
					}
					switch {
					case late > 0:
						if late -= n; late <= 0 {
							f.Close()
							f = openAppend(t, path)
						}
					case g.seq%stressEvery == 0:
						if err := os.Rename(path, path+".1"); err != nil {
							t.Fatal(err)
						}
						late = 500
					}
				}
				f.Close()
			case "delete":
				rotate = deleteRotation(t, p, path)
			case "symlink":
				rotate = symlinkRotation(t, path)
			case "copytruncate":
				rotate = copytruncateRotation(t, p)
			}
			if rotate != nil {
				writeRotating(t, p, path, "w", stressLines, stressEvery, rotate)
			}
			p.waitLines(t, stressLines)
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
			}
			checkStreams(t, p.output(), noPrefix, map[string]int{"w": stressLines})
		})
	}
}

// Three files at once, rotated three ways, one output: every line whole, tagged, in
// per-file order.
func TestThreeFiles(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]string{}
	var args []string
	for _, s := range []string{"a", "b", "c"} {
		paths[s] = filepath.Join(dir, s+".log")
		args = append(args, s+"x="+paths[s])
	}
	p := start(t, append([]string{"--prefix", "[{tag}] "}, args...)...)
	var wg sync.WaitGroup
	wg.Go(func() { writeRotating(t, p, paths["a"], "a", 210_000, 10_000, renameRotation(t, paths["a"])) })
	wg.Go(func() { writeRotating(t, p, paths["b"], "b", 210_000, 10_000, deleteRotation(t, p, paths["b"])) })
	wg.Go(func() { writeRotating(t, p, paths["c"], "c", 210_000, 1_000_000, nil) })
	wg.Wait()
	p.waitLines(t, 630_000)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkStreams(t, p.output(), func(s string) string { return "[" + s + "x] " }, map[string]int{"a": 210_000, "b": 210_000, "c": 210_000})
}

// Rotations while sidetail is stopped (SIGSTOP: what CPU throttling of a tiny
// limit does for tens of milliseconds): files that were at the path and were rotated
// away unseen are found among the siblings and read in order.
func TestRotationWhileStopped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	g := &lineGen{stream: "w"}
	os.WriteFile(path, g.next(100), 0o644)
	p := start(t, path)
	p.waitLines(t, 100)
	p.cmd.Process.Signal(syscall.SIGSTOP)
	for r := 1; r <= 3; r++ { // logrotate's numbered archives: shift them up
		for j := r - 1; j >= 1; j-- {
			rename(t, fmt.Sprintf("%s.%d", path, j), fmt.Sprintf("%s.%d", path, j+1))
		}
		rename(t, path, path+".1")
		os.WriteFile(path, g.next(100), 0o644)
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.waitLines(t, 400)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkStreams(t, p.output(), noPrefix, map[string]int{"w": 400})
}

func TestSIGTERMDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	f := openAppend(t, path)
	defer f.Close()
	g := &lineGen{stream: "w"}
	f.Write(g.next(1))
	p := start(t, path)
	p.waitLines(t, 1) // sidetail is up and has its signal handler
	if _, err := f.Write(g.next(100_000)); err != nil {
		t.Fatal(err)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
	}
	checkStreams(t, p.output(), noPrefix, map[string]int{"w": 100_001})
}

func TestAbsentAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.log")
	p := start(t, path)
	waitUntil(t, func() bool { return strings.Contains(p.stderr.String(), "waiting for file") },
		func() string { return "no 'waiting for file' on stderr: " + p.stderr.String() })
	writeRotating(t, p, path, "w", 50_000, 10_000, renameRotation(t, path))
	p.waitLines(t, 50_000)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkStreams(t, p.output(), noPrefix, map[string]int{"w": 50_000})
	if n := strings.Count(p.stderr.String(), "waiting for file"); n != 1 {
		t.Errorf("'waiting for file' logged %d times, want once", n)
	}
}

func TestPartialLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f := openAppend(t, path)
	f.WriteString("one\nhal")
	p := start(t, path)
	p.waitLines(t, 1)
	if got := p.output(); len(got) != 1 {
		t.Fatalf("partial line emitted early: %q", got)
	}
	f.WriteString("f\n")
	p.waitLines(t, 2)
	// A partial line at rotation is emitted as it is, then the new file follows.
	f.WriteString("cut at rotation")
	f.Close()
	os.Rename(path, path+".1")
	os.WriteFile(path, []byte("new\nheld at shutdown"), 0o644)
	p.waitLines(t, 4)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := []string{"one\n", "half\n", "cut at rotation\n", "new\n", "held at shutdown\n"}
	if got := p.output(); strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestLongLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.log")
	// 16 MiB with multi-byte runes so some cuts fall inside a rune.
	line := strings.Repeat("abcdefghijklmnopqrstuvwxyz€", (16<<20)/29) + "\n"
	os.WriteFile(path, []byte(line+"after\n"), 0o644)
	for _, format := range []string{"raw", "json"} {
		t.Run(format, func(t *testing.T) {
			p := start(t, "--state-dir=", "--format="+format, path) // each run reads the file anew
			waitUntil(t, func() bool {
				out := p.output()
				return len(out) > 0 && strings.Contains(out[len(out)-1], "after")
			}, func() string { return fmt.Sprintf("%d lines", p.count()) })
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit %d", code)
			}
			out := p.output()
			var joined strings.Builder
			for i, l := range out[:len(out)-1] {
				text := strings.TrimSuffix(l, "\n")
				if format == "json" {
					var obj struct {
						Message string
						Partial bool
					}
					if err := json.Unmarshal([]byte(l), &obj); err != nil {
						t.Fatal(err)
					}
					if obj.Partial != (i < len(out)-2) {
						t.Fatalf("piece %d of %d: partial=%v", i, len(out)-1, obj.Partial)
					}
					text = obj.Message
				}
				if len(text) > 1<<20 {
					t.Fatalf("piece %d is %d bytes, max 1Mi", i, len(text))
				}
				if !strings.HasPrefix(line[joined.Len():], text) || !utf8Valid(text) {
					t.Fatalf("piece %d does not continue the line or splits a rune", i)
				}
				joined.WriteString(text)
			}
			if joined.String()+"\n" != line {
				t.Fatalf("pieces join to %d bytes, want %d", joined.Len(), len(line)-1)
			}
			if len(out) < 17 {
				t.Fatalf("%d pieces, want at least 16", len(out)-1)
			}
		})
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestJSONOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	os.WriteFile(path, []byte("hello \"x\"\n\xffbad\n"), 0o644)
	p := start(t, "--format=json", "web="+path)
	p.waitLines(t, 2)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var objs []map[string]any
	for _, l := range p.output() {
		var o map[string]any
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		objs = append(objs, o)
	}
	if objs[0]["message"] != `hello "x"` || objs[0]["tag"] != "web" || objs[0]["file"] != path {
		t.Errorf("got %v", objs[0])
	}
	if objs[1]["message"] != "\uFFFDbad" {
		t.Errorf("invalid UTF-8 not replaced: %v", objs[1]["message"])
	}
	if _, err := time.Parse(time.RFC3339Nano, objs[0]["time"].(string)); err != nil {
		t.Errorf("time: %v", err)
	}
}

func TestGlob(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.log")
	os.WriteFile(a, []byte("a 000000000 "+filler(0)+"\n"), 0o644)
	// The glob matches the rotated names too: they must not be read twice.
	p := start(t, filepath.Join(dir, "*"))
	p.waitLines(t, 1)
	b := filepath.Join(dir, "b.log")
	writeRotating(t, p, b, "b", 30_000, 10_000, renameRotation(t, b))
	p.waitLines(t, 30_001)
	os.Remove(a) // vanished: drained, then dropped
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkStreams(t, p.output(), noPrefix, map[string]int{"a": 1, "b": 30_000})
}

// A reader of our stdout that goes away ends sidetail with exit 1 and one line,
// whether it follows a file or a glob (whose scanner must stop its followers).
func TestStdoutClosed(t *testing.T) {
	for _, glob := range []bool{false, true} {
		t.Run(map[bool]string{false: "file", true: "glob"}[glob], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			os.WriteFile(path, []byte("x\n"), 0o644)
			arg := path
			if glob {
				arg = filepath.Join(filepath.Dir(path), "*.log")
			}
			stdoutClosed(t, path, exec.Command(bin, "--state-dir=", arg))
		})
	}
}

func stdoutClosed(t *testing.T, path string, cmd *exec.Cmd) {
	r, w, _ := os.Pipe()
	var stderr syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	if line != "x\n" {
		t.Fatalf("got %q", line)
	}
	r.Close()
	f := openAppend(t, path)
	g := &lineGen{stream: "w"}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitUntil(t, func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			f.Write(g.next(1))
			return false
		}
	}, func() string { return "sidetail kept running with stdout closed" })
	f.Close()
	<-done
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if msg := strings.TrimSpace(stderr.String()); !strings.Contains(msg, "stdout closed") || strings.Count(msg, "\n") != 0 {
		t.Fatalf("stderr %q, want one line saying stdout closed", msg)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel() // exit codes and messages only: nothing here needs the CPU to itself
	dir := t.TempDir()
	stateFile := filepath.Join(dir, "state")
	os.WriteFile(stateFile, nil, 0o644)
	log, link := filepath.Join(dir, "app.log"), filepath.Join(dir, "link.log")
	os.WriteFile(log, nil, 0o644)
	os.Symlink(log, link)
	tests := []struct {
		args []string
		want string // the flag or path the message must name
	}{
		{[]string{"--bogus", "x"}, "--bogus"},
		{[]string{"--max-line=12Q", "x"}, "--max-line"},
		{[]string{"--max-line=0", "x"}, "--max-line"},
		{[]string{"--drain-timeout=soon", "x"}, "--drain-timeout"},
		{[]string{"--format=xml", "x"}, "--format"},
		{[]string{"--prefix={nope}", "x"}, "--prefix"},
		{[]string{"--format=json", "--prefix=[{tag}]", "x"}, "--prefix"},
		{[]string{}, "PATH"},
		{[]string{filepath.Join(dir, "[a")}, filepath.Join(dir, "[a")},
		{[]string{dir}, dir},
		{[]string{"--state-dir=" + stateFile, "x"}, "--state-dir"},
		{[]string{"--multiline-start=(", "x"}, "--multiline-start"},
		{[]string{"--multiline-start=web=^a", "app=x"}, "--multiline-start"},
		{[]string{"--multiline-start=^a", "--multiline-timeout=0s", "x"}, "--multiline-timeout"},
		{[]string{"rotate", "--max-size=1Ki", log}, "--max-size"},
		{[]string{"rotate", "--max-size=ten", log}, "--max-size"},
		{[]string{"rotate", "--max-files=0", log}, "--max-files"},
		{[]string{"rotate", "--max-age=soon", log}, "--max-age"},
		{[]string{"rotate", "--method=rename", log}, "--method"},
		{[]string{"rotate", link}, link},
		{[]string{"rotate", "--archive-dir=" + filepath.Join(dir, "nope"), log}, "--archive-dir"},
		{[]string{"rotate", filepath.Join(dir, "*.log")}, "glob"},
		{[]string{"rotate"}, "PATH"},
		{[]string{"--rotate-max-size=1Ki", log}, "--rotate-max-size"},
		{[]string{"--rotate-compress", log}, "--rotate-max-size"},
		{[]string{"--rotate-max-size=1Mi", filepath.Join(dir, "*.log")}, "glob"},
		{[]string{"--rotate-max-size=1Mi", "--rotate-archive-dir=" + stateFile, log}, "--rotate-archive-dir"},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, tt.args...)
		out, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		msg := strings.TrimSpace(string(out))
		if err == nil || code != 2 || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
			t.Errorf("sidetail %q: exit %d, output %q; want exit 2 and one line naming %s", tt.args, code, msg, tt.want)
		}
	}
}

// A file that exists but cannot be read is reported once and followed as soon as it
// becomes readable, while other files keep flowing.
func TestUnreadableFile(t *testing.T) {
	dir := publicTempDir(t, "sidetail-perm")
	locked, open := filepath.Join(dir, "locked.log"), filepath.Join(dir, "open.log")
	os.WriteFile(locked, []byte("locked 000000000 "+filler(0)+"\n"), 0o000)
	os.WriteFile(open, []byte("open 000000000 "+filler(0)+"\n"), 0o644)
	var p *proc
	args := []string{locked, open}
	if os.Geteuid() == 0 {
		// Root reads anything: run as nobody so the permission bits count.
		p = startAs(t, 65534, args...)
	} else {
		p = start(t, args...)
	}
	p.waitLines(t, 1)
	waitUntil(t, func() bool { return strings.Contains(p.stderr.String(), "cannot read file") },
		func() string { return "no error on stderr: " + p.stderr.String() })
	os.Chmod(locked, 0o644)
	p.waitLines(t, 2)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := strings.Count(p.stderr.String(), "cannot read file"); n != 1 {
		t.Errorf("error logged %d times, want once:\n%s", n, p.stderr.String())
	}
	checkStreams(t, p.output(), noPrefix, map[string]int{"locked": 1, "open": 1})
}

func TestVersionAndHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"version"}, streams{&out, &errOut}); code != 0 || !strings.HasPrefix(out.String(), "sidetail ") {
		t.Fatalf("version: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"--help"}, streams{&out, &errOut}); code != 0 || !strings.Contains(out.String(), "Usage: sidetail") {
		t.Fatalf("--help: exit %d, %q", code, out.String())
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{{"1Mi", 1 << 20}, {"512Ki", 512 << 10}, {"10M", 10e6}, {"4096", 4096}} {
		if got, err := ParseSize(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "Mi", "-1", "1.5Mi", "1Qi", "99999999999Ti"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
}

func TestParseSource(t *testing.T) {
	src, err := parseSource("web=/var/log/a=b.log")
	if err != nil || src.Tag != "web" || src.Path != "/var/log/a=b.log" {
		t.Errorf("parseSource: %+v %v", src, err)
	}
	if src, _ := parseSource("/var/log/a=b.log"); src.Tag != "" || src.Path != "/var/log/a=b.log" {
		t.Errorf("a path with '=' taken for a tag: %+v", src)
	}
}

func TestPathsFromEnv(t *testing.T) {
	var out, errOut bytes.Buffer
	t.Setenv("SIDETAIL_PATHS", "a=/x/a.log,/x/b.log")
	t.Setenv("SIDETAIL_FORMAT", "json")
	var cli CLI
	parser := newParser(&cli, streams{&out, &errOut})
	if _, err := parser.Parse([]string{}); err != nil {
		t.Fatal(err)
	}
	if got := cli.Tail.sources; len(got) != 2 || got[0].Tag != "a" || got[1].Path != "/x/b.log" || cli.Tail.Format != "json" {
		t.Fatalf("env: %+v format %q", got, cli.Tail.Format)
	}
}

// --max-rate paces the output: a 2 MiB file at 512 KiB/s, after a bucket of one
// second's worth, takes 3 s, every line there. (The 16 MiB at 1 MiB/s
// scaled down: same shape, a fifth of the time.)
func TestMaxRate(t *testing.T) {
	t.Parallel() // 16 s of mostly waiting
	const rate, size = 1 << 20, 16 << 20
	path := filepath.Join(t.TempDir(), "app.log")
	g := &lineGen{stream: "w"}
	var data []byte
	for len(data) < size {
		data = append(data, g.next(100)...)
	}
	os.WriteFile(path, data, 0o644)
	begin := time.Now()
	p := start(t, "--state-dir=", "--max-rate=1Mi", path)
	p.waitLines(t, g.seq)
	took := time.Since(begin)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkStreams(t, p.output(), noPrefix, map[string]int{"w": g.seq})
	// The bucket starts full with one second's worth; the rest comes at the rate.
	want := time.Duration(float64(len(data)-rate) / rate * float64(time.Second))
	t.Logf("%d bytes at --max-rate=1Mi took %s (want %s to 17s)", len(data), took.Round(time.Millisecond), want)
	if took < want || took > 17*time.Second {
		t.Fatalf("took %s, want %s to 17s", took, want)
	}
}

// While stdout is blocked, every file that takes the path is held open, deleted or
// not; with --max-pinned-bytes the oldest deleted ones are given up past the bound,
// each logged with its unread bytes, and every other file is relayed whole.
func TestPinnedBound(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	const perFile, rotations = 2000, 50
	g := &lineGen{stream: "w"}
	os.WriteFile(path, g.next(perFile), 0o644)
	cmd := exec.Command(bin, "--state-dir=", "--settle=0", "--max-pinned-bytes=512Ki", path)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReaderSize(r, 1<<20)
	if _, err := out.ReadString('\n'); err != nil { // it is reading; the pipe then fills
		t.Fatal(err)
	}
	for range rotations {
		rename(t, path, path+".1") // the previous .1 is deleted: only held open
		os.WriteFile(path, g.next(perFile), 0o644)
		info, _ := os.Stat(path)
		waitUntil(t, func() bool { return holds(cmd.Process.Pid, info) },
			func() string { return "sidetail did not open the new file: " + stderr.String() })
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var lines []string
	for {
		line, err := out.ReadString('\n')
		if err != nil {
			break
		}
		lines = append(lines, line)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v; stderr:\n%s", err, stderr.String())
	}
	// Reports are rate-limited; each carries the totals, and the last says all.
	totals := regexp.MustCompile(`given_up_files=(\d+)`).FindAllStringSubmatch(stderr.String(), -1)
	if len(totals) == 0 || !strings.Contains(stderr.String(), "held_bytes=") {
		t.Fatalf("nothing given up or reported past --max-pinned-bytes; stderr:\n%s", stderr.String())
	}
	gaveUp, _ := strconv.Atoi(totals[len(totals)-1][1])
	// The files relayed (the first line was read above): whole, in order; the
	// missing ones are the ones given up.
	s := append([]int{0}, seqs(lines, "w")...)
	whole, missing := 0, 0
	for i := 0; i < len(s); {
		if s[i]%perFile != 0 {
			t.Fatalf("output line %d: seq %d does not begin a file", i, s[i])
		}
		for j := range perFile {
			if i+j >= len(s) || s[i+j] != s[i]+j {
				t.Fatalf("file of seq %d not relayed whole", s[i])
			}
		}
		if i > 0 {
			missing += (s[i] - s[i-1] - 1) / perFile
		}
		whole++
		i += perFile
	}
	t.Logf("%d files relayed whole, %d given up (%d logged)", whole, missing, gaveUp)
	if missing != gaveUp || whole+missing != rotations+1 {
		t.Fatalf("%d files relayed and %d missing of %d; %d logged as given up", whole, missing, rotations+1, gaveUp)
	}
}

// holds reports whether the process pid has the file open.
func holds(pid int, file os.FileInfo) bool {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if info, err := os.Stat(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && os.SameFile(info, file) {
			return true
		}
	}
	return false
}

// TestOneThread: the tail command runs Go code on one thread unless GOMAXPROCS is
// set, as the runtime's own metric shows.
func TestOneThread(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(log, []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ env, want string }{{"", "1"}, {"GOMAXPROCS=2", "2"}} {
		addr := "127.0.0.1:" + freePort(t)
		p := startWith(t, func(cmd *exec.Cmd) {
			cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
			if tc.env != "" {
				cmd.Env = append(cmd.Env, tc.env)
			}
		}, "--metrics-addr="+addr, "--state-dir=", log)
		p.waitLines(t, 1)
		_, body := get("http://" + addr + "/metrics")
		if got, _ := metric(body, "go_sched_gomaxprocs_threads"); strconv.FormatFloat(got, 'f', -1, 64) != tc.want {
			t.Errorf("env %q: go_sched_gomaxprocs_threads %v, want %s", tc.env, got, tc.want)
		}
		p.stop(t)
	}
}

// Under inotify's watch limit, folders' own watches come before their parents'
// (a parent is watched only so that a folder deleted and made again is seen
// sooner): with room for one watch per folder and a few more, every folder is
// watched, none polled. Forty folders, each under a parent of its own, as
// Kubernetes lays out /var/log/pods, in a user namespace whose limit is 50.
func TestWatchLimitFoldersFirst(t *testing.T) {
	top := t.TempDir()
	var paths []string
	for i := range 40 {
		dir := filepath.Join(top, fmt.Sprintf("pod%d", i), "c")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Join(dir, "app.log"))
		if err := os.WriteFile(paths[i], fmt.Appendf(nil, "first %d\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := startWith(t, func(c *exec.Cmd) {
		c.Path = "/bin/sh"
		c.Args = append([]string{"sh", "-c", `echo 50 > /proc/sys/user/max_inotify_watches && exec "$0" "$@"`, bin, "--state-dir="}, paths...)
		c.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		}
	})
	ended := func() bool {
		select {
		case <-p.eof:
			return true
		default:
			return false
		}
	}
	waitUntil(t, func() bool { return p.count() >= 40 || ended() }, func() string {
		return fmt.Sprintf("%d lines; stderr: %s", p.count(), p.stderr.String())
	})
	p.stop(t) // stderr is all there once it exited
	stderr := p.stderr.String()
	if p.count() < 40 && strings.Contains(stderr, "max_inotify_watches") {
		t.Skipf("no user namespace with its own inotify limit here: %s", stderr)
	}
	if strings.Contains(stderr, "cannot watch") || !strings.Contains(stderr, "watch limit reached") {
		t.Errorf("stderr %q: want every folder watched, its parent's watch given up", stderr)
	}
}
