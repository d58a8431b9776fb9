package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sidetail/sidetail/internal/syncbuf"
)

// seqs returns the sequence numbers of stream's lines, in output order.
func seqs(lines []string, stream string) []int {
	var out []int
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == stream {
			n, _ := strconv.Atoi(f[1])
			out = append(out, n)
		}
	}
	return out
}

// stopAtLast waits until line last of stream "w" came out of p (who names p in the
// failure), then stops p, which must exit 0.
func stopAtLast(t *testing.T, p *proc, last int, who string) {
	t.Helper()
	waitUntil(t, func() bool {
		s := seqs(p.output(), "w")
		return len(s) > 0 && s[len(s)-1] == last
	}, func() string {
		s := seqs(p.output(), "w")
		return fmt.Sprintf("%s did not reach line %d: %d lines, last %v; gaps: %s; stderr:\n%s",
			who, last, len(s), s[max(0, len(s)-1):], gaps(p.output()), p.stderr.String())
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("%s: exit %d; stderr:\n%s", who, code, p.stderr.String())
	}
}

// writeAcrossRestart writes total lines of stream "w" to path in small writes from a
// goroutine: half of them, then it waits until restarted is closed (the test has
// stopped and restarted sidetail), then the rest. written is closed at the end.
func writeAcrossRestart(t *testing.T, path string, total int) (restarted, written chan struct{}) {
	restarted, written = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(written)
		f := openAppend(t, path)
		defer f.Close()
		g := &lineGen{stream: "w"}
		for g.seq < total {
			if _, err := f.Write(g.next(min(20, total-g.seq))); err != nil {
				t.Error(err)
				return
			}
			if g.seq == total/2 {
				<-restarted
			}
		}
	}()
	return restarted, written
}

// SIGKILL in the middle of a stream, then a restart: nothing lost, and what is
// repeated is one run at the boundary within the batch bound.
func TestCheckpointAfterSIGKILL(t *testing.T) {
	const total = 200_000
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	openAppend(t, path).Close()
	p1 := start(t, path)
	restarted, written := writeAcrossRestart(t, path, total)
	p1.waitLines(t, total/4)
	p1.cmd.Process.Kill()
	p1.wait(t)
	p2 := start(t, path)
	close(restarted)
	<-written
	stopAtLast(t, p2, total-1, "the restarted sidetail")
	first, second := seqs(p1.output(), "w"), seqs(p2.output(), "w")
	for i, n := range first {
		if n != i {
			t.Fatalf("first run: line %d has seq %d", i, n)
		}
	}
	if len(second) == 0 || second[0] > len(first) {
		t.Fatalf("lost lines: first run ended at %d, second began at %v", len(first)-1, second[:min(1, len(second))])
	}
	for i, n := range second {
		if n != second[0]+i {
			t.Fatalf("second run: line %d has seq %d, want %d", i, n, second[0]+i)
		}
	}
	// The bound: the last output write, which in raw mode is at most one read
	// (16 KiB) of whole lines. The offset is recorded after every write, so only a
	// write the kill interrupted, or that went out just before it, is repeated.
	repeated := 0
	for _, l := range p1.output()[second[0]:] {
		repeated += len(l)
	}
	t.Logf("first run %d lines, second from %d: %d repeated (%d bytes)", len(first), second[0], len(first)-second[0], repeated)
	if repeated > 16<<10 {
		t.Fatalf("%d bytes repeated, more than one output write", repeated)
	}
}

// SIGTERM, then a restart, while the writer keeps writing: every line exactly once.
func TestCheckpointAfterSIGTERM(t *testing.T) {
	const total = 100_000
	path := filepath.Join(t.TempDir(), "app.log")
	openAppend(t, path).Close()
	p1 := start(t, path)
	restarted, written := writeAcrossRestart(t, path, total)
	p1.waitLines(t, total/4)
	if code := p1.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	p2 := start(t, path)
	close(restarted)
	<-written
	p2.waitLines(t, total-p1.count())
	if code := p2.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkStreams(t, append(p1.output(), p2.output()...), noPrefix, map[string]int{"w": total})
}

// Rotated twice while stopped, logrotate style (app.log → app.log.1 → app.log.2):
// the rest of the old file, including lines written to it after the rename, comes
// first, then the file that was at the path in between, then the new one. The path
// as given, absolute or relative to the working folder.
func TestCheckpointRotatedWhileDown(t *testing.T) {
	for _, relative := range []bool{false, true} {
		t.Run(map[bool]string{false: "absolute", true: "relative"}[relative], func(t *testing.T) {
			testCheckpointRotatedWhileDown(t, relative)
		})
	}
}

func testCheckpointRotatedWhileDown(t *testing.T, relative bool) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	arg, inDir := path, func(*exec.Cmd) {}
	if relative {
		arg, inDir = "app.log", func(c *exec.Cmd) { c.Dir = dir }
	}
	old := openAppend(t, path)
	defer old.Close()
	w := &lineGen{stream: "w"}
	old.Write(w.next(1000))
	p1 := startWith(t, inDir, arg)
	p1.waitLines(t, 1000)
	if code := p1.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	old.Write(w.next(500))
	rename(t, path, path+".1")
	old.Write(w.next(500))
	m := &lineGen{stream: "m"}
	os.WriteFile(path, m.next(300), 0o644)
	rename(t, path+".1", path+".2")
	rename(t, path, path+".1")
	n := &lineGen{stream: "n"}
	os.WriteFile(path, n.next(500), 0o644)

	p2 := startWith(t, inDir, arg)
	p2.waitLines(t, 1800)
	if code := p2.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	all := append(p1.output(), p2.output()...)
	checkStreams(t, all, noPrefix, map[string]int{"w": 2000, "m": 300, "n": 500})
	if got := p2.output(); !strings.HasPrefix(got[999], "w ") || !strings.HasPrefix(got[1000], "m ") || !strings.HasPrefix(got[1300], "n ") {
		t.Fatalf("files out of order: %q, %q, %q", got[999], got[1000], got[1300])
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// stateFile returns the one file matching pattern in the default state dir of the
// files in dir.
func stateFile(t *testing.T, dir, pattern string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, ".sidetail", pattern))
	if len(files) != 1 {
		t.Fatalf("state files %s: %v", pattern, files)
	}
	return files[0]
}

func TestCheckpointCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	g := &lineGen{stream: "w"}
	os.WriteFile(path, g.next(100), 0o644)
	p1 := start(t, path)
	p1.waitLines(t, 100)
	p1.stop(t)
	cp := stateFile(t, dir, "*.json")
	data, _ := os.ReadFile(cp)
	os.WriteFile(cp, data[:len(data)/2], 0o644)

	p2 := start(t, path)
	p2.waitLines(t, 100) // from the head again
	if code := p2.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkStreams(t, p2.output(), noPrefix, map[string]int{"w": 100})
	if !strings.Contains(p2.stderr.String(), "ignoring checkpoint") {
		t.Fatalf("no warning: %s", p2.stderr.String())
	}
}

// A NAME.pos cut short: a warning, and the offset saved with the file (its head
// here) is used, so lines repeat and none is lost.
func TestCheckpointOffsetCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f := openAppend(t, path)
	defer f.Close()
	g := &lineGen{stream: "w"}
	f.Write(g.next(100))
	p1 := start(t, path)
	p1.waitLines(t, 100)
	p1.stop(t)
	if err := os.Truncate(stateFile(t, dir, "*.pos"), 5); err != nil {
		t.Fatal(err)
	}
	f.Write(g.next(10))
	p2 := start(t, path)
	p2.waitLines(t, 110)
	if code := p2.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkStreams(t, p2.output(), noPrefix, map[string]int{"w": 110})
	if !strings.Contains(p2.stderr.String(), "corrupt checkpoint offset") {
		t.Fatalf("no warning: %s", p2.stderr.String())
	}
}

// A state dir that cannot be written: one warning, and the lines still flow.
func TestCheckpointStateDirNotWritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	g := &lineGen{stream: "w"}
	os.WriteFile(path, g.next(10), 0o644)
	p := start(t, "--state-dir=/proc/sidetail-cannot-write-here", path)
	p.waitLines(t, 10)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	checkStreams(t, p.output(), noPrefix, map[string]int{"w": 10})
	if n := strings.Count(p.stderr.String(), "checkpoints off"); n != 1 {
		t.Fatalf("warned %d times: %s", n, p.stderr.String())
	}
}

// A state dir that exists but cannot be written (a read-only mount, another
// user's folder): its checkpoint is still read, so a restart resumes instead of
// repeating everything.
func TestCheckpointStateDirReadOnly(t *testing.T) {
	dir := publicTempDir(t, "sidetail-ro")
	path, state := filepath.Join(dir, "app.log"), filepath.Join(dir, "state")
	g := &lineGen{stream: "w"}
	os.WriteFile(path, g.next(10), 0o644)
	p := start(t, "--state-dir="+state, path)
	p.waitLines(t, 10)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	f := openAppend(t, path)
	f.Write(g.next(5))
	f.Close()
	if os.Geteuid() == 0 {
		// Root writes anywhere: run as nobody, to whom the state dir is read-only.
		p = startAs(t, 65534, "--state-dir="+state, path)
	} else {
		os.Chmod(state, 0o555)
		p = start(t, "--state-dir="+state, path)
	}
	p.waitLines(t, 5)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got := seqs(p.output(), "w"); len(got) != 5 || got[0] != 10 {
		t.Fatalf("second run relayed %v, want 10..14", got)
	}
	if n := strings.Count(p.stderr.String(), "checkpoints read-only"); n != 1 {
		t.Fatalf("warned %d times: %s", n, p.stderr.String())
	}
}

// SIGKILL at random moments while a fast writer appends, on ext4 and tmpfs: with
// the writer rotating by rename, and with sidetail cutting what it wrote out of the
// file (--rotate-*: collapse on ext4, punch on tmpfs), whose checkpoint and cut are
// one protocol. Across the runs every line comes out, whole and in order, and a
// restart repeats at most the one output write (16 KiB) the kill interrupted or
// followed.
func TestCheckpointRandomKills(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	for _, c := range []struct {
		name, parent string
		renameEvery  int
		args         []string
	}{
		{"ext4", "", 20_000, nil},
		{"tmpfs", "/dev/shm", 20_000, nil},
		{"rotate/ext4", "", 0, []string{"--rotate-max-size=64Ki", "--rotate-check-interval=5ms", "--rotate-max-files=1000"}},
		{"rotate/tmpfs", "/dev/shm", 0, []string{"--rotate-max-size=64Ki", "--rotate-check-interval=5ms", "--rotate-max-files=1000"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := tempDirIn(t, c.parent)
			path := filepath.Join(dir, "app.log")
			args := append(c.args, path)
			// A file rotated away before sidetail first opened the path was never
			// its to read: the writer starts once the first line is out.
			g := &lineGen{stream: "w"}
			os.WriteFile(path, g.next(1), 0o644)
			p := start(t, args...)
			p.waitLines(t, 1)
			stop, total := writeFast(t, path, g, 20_000, c.renameEvery)
			var runs [][]string
			for i := range 15 {
				if i > 0 {
					p = start(t, args...)
				}
				p.waitLines(t, 1+rng.IntN(2_000))
				p.cmd.Process.Kill()
				p.wait(t)
				runs = append(runs, p.output())
			}
			close(stop)
			want := <-total
			// One line after the writer stopped: the last killed run may have
			// written all it wrote, and the last run must have a line to wait for.
			f := openAppend(t, path)
			f.Write(g.next(1))
			f.Close()
			want++
			p = start(t, args...)
			stopAtLast(t, p, want-1, "the last run")
			checkRuns(t, append(runs, p.output()), want)
		})
	}
}

// writeFast appends g's lines to path with O_APPEND at about rate lines/s, renaming
// the file away every renameEvery lines (the rotated files stay; 0: never), until
// stop is closed; then it sends how many it wrote.
func writeFast(t *testing.T, path string, g *lineGen, rate, renameEvery int) (stop chan struct{}, total chan int) {
	stop, total = make(chan struct{}), make(chan int, 1)
	go func() {
		f := openAppend(t, path)
		began := time.Now()
		for {
			select {
			case <-stop:
				f.Close()
				total <- g.seq
				return
			default:
			}
			if _, err := f.Write(g.next(50)); err != nil {
				t.Error(err)
			}
			if renameEvery > 0 && g.seq%renameEvery < 50 {
				f.Close()
				rename(t, path, fmt.Sprintf("%s.%d", path, g.seq/renameEvery))
				f = openAppend(t, path)
			}
			// Pacing, not synchronisation: the writer keeps to its rate.
			if ahead := time.Duration(g.seq)*time.Second/time.Duration(rate) - time.Since(began); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}()
	return stop, total
}

// checkRuns checks the outputs of successive runs of one file's follower: each run
// whole lines in sequence, each the next after the last, or up to 16 KiB of the
// last run's lines again; the last run ends at want-1.
func checkRuns(t *testing.T, runs [][]string, want int) {
	t.Helper()
	next, worst := 0, 0
	var last []string
	for i, run := range runs {
		s := seqs(run, "w")
		if len(s) != len(run) {
			for j, l := range run {
				if f := strings.Fields(l); len(f) < 2 || f[0] != "w" {
					t.Errorf("run %d: line %d of %d is not the writer's: %q", i, j, len(run), l)
				}
			}
			t.FailNow()
		}
		for j, l := range run {
			if f := strings.Fields(l); len(f) != 3 || f[2] != filler(s[j]) {
				t.Fatalf("run %d: line %d is a fragment: %q", i, j, l)
			}
		}
		if len(s) == 0 {
			continue
		}
		if s[0] > next {
			t.Fatalf("run %d begins at line %d, the run before ended at %d: lost", i, s[0], next-1)
		}
		repeated := 0
		for _, l := range last[len(last)-(next-s[0]):] {
			repeated += len(l)
		}
		worst = max(worst, repeated)
		if repeated > 16<<10 {
			t.Fatalf("run %d repeats %d lines (%d bytes): more than one output write", i, next-s[0], repeated)
		}
		for j, n := range s {
			if n != s[0]+j {
				t.Fatalf("run %d: line %d has seq %d, want %d", i, j, n, s[0]+j)
			}
		}
		next, last = s[len(s)-1]+1, run
	}
	if next != want {
		t.Fatalf("the runs end at line %d, the writer wrote %d", next-1, want)
	}
	t.Logf("%d runs, %d lines; at most %d bytes repeated by a restart", len(runs), want, worst)
}

// TestKillWhileOutputWaits: SIGKILL while a write waits for room in a full stdout
// pipe leaves no line cut in two there. The file holds more than the pipe, the
// pipe is never read until sidetail is dead; with checkpoints (16 KiB writes) and
// without (a whole read per write), and with the writes to stdout measured for
// /metrics.
func TestKillWhileOutputWaits(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--state-dir="}, {"--state-dir=" + t.TempDir()}, {"--state-dir=", "--metrics-addr=127.0.0.1:0"}} {
		stateDir := strings.Join(args, " ")
		path := filepath.Join(t.TempDir(), "app.log")
		g := &lineGen{stream: "w"}
		if err := os.WriteFile(path, g.next(100_000), 0o644); err != nil { // 5.6 MB
			t.Fatal(err)
		}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, append(args, path)...)
		cmd.Stdout = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		waitUntil(t, func() bool { return waitsOnPipe(cmd.Process.Pid) },
			func() string { return stateDir + ": sidetail never waited in a write to its full stdout" })
		cmd.Process.Kill()
		cmd.Wait()
		out, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(out, []byte("\n")) {
			t.Errorf("%s: the pipe ends inside a line: %q", stateDir, out[max(0, len(out)-60):])
		}
		for i, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			if f := strings.Fields(l); len(f) != 3 || f[2] != filler(i) {
				t.Fatalf("%s: line %d is not whole: %q", stateDir, i, l)
			}
		}
	}
}

// SIGTERM ends sidetail within --drain-timeout even when its stdout is fuller than
// it counted: another writer on the same pipe filled it. sidetail's write then
// finds no room and waits the usual way, which lets the signal and the timer run;
// a write that slept inside a raw system call held the only thread, and the
// process hung until someone read the pipe.
func TestTermWhileOthersFillStdout(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The other writer opens the pipe again: a description of its own, non-blocking,
	// so filling the pipe leaves sidetail's as it is.
	other, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", w.Fd()), os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var stderr syncbuf.Buffer
	cmd := exec.Command(bin, "--state-dir=", "--drain-timeout=1s", path)
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	w.Close()
	// Once the first line is out, sidetail has counted the pipe's room.
	if line, _ := bufio.NewReader(r).ReadString('\n'); line != "first\n" {
		t.Fatalf("got %q", line)
	}
	rc, err := other.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	filled := 0
	rc.Control(func(fd uintptr) {
		for {
			n, err := unix.Write(int(fd), bytes.Repeat([]byte("o"), 4096))
			if err != nil {
				return
			}
			filled += n
		}
	})
	f := openAppend(t, path)
	f.WriteString("second\n")
	f.Close()
	waitUntil(t, func() bool { return waitsOnPipe(cmd.Process.Pid) },
		func() string { return "sidetail never waited in a write to its full stdout" })
	code := termWithin(t, cmd, fmt.Sprintf("--drain-timeout=1s while its stdout held %d bytes of another writer's", filled))
	if code != 1 || !strings.Contains(stderr.String(), "--drain-timeout") {
		t.Fatalf("exit %d, want 1 and a line on --drain-timeout; stderr:\n%s", code, stderr.String())
	}
}

// SIGTERM ends sidetail within --drain-timeout when stdout and stderr are one pipe
// that nobody reads (2>&1 into a stuck reader): the line that says the drain timed
// out cannot wait on that pipe either.
func TestTermWhileSharedStdoutStuck(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	g := &lineGen{stream: "w"}
	if err := os.WriteFile(path, g.next(100_000), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(bin, "--state-dir=", "--drain-timeout=1s", path)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	w.Close()
	waitUntil(t, func() bool { return waitsOnPipe(cmd.Process.Pid) },
		func() string { return "sidetail never waited in a write to its full stdout" })
	if code := termWithin(t, cmd, "--drain-timeout=1s, its stdout and stderr one stuck pipe"); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
}

// termWithin sends cmd SIGTERM and returns its exit code once it ended; the test
// fails if it did not end within the deadline (what: the case, for the message).
func termWithin(t *testing.T, cmd *exec.Cmd, what string) int {
	t.Helper()
	cmd.Process.Signal(unix.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatalf("sidetail did not end on SIGTERM with %s", what)
	}
	return cmd.ProcessState.ExitCode()
}

// waitsOnPipe reports whether process pid sleeps in a write to its stdout, a pipe:
// a thread's current system call is write on descriptor 1, and it sleeps in the
// kernel's pipe write (its wait channel).
func waitsOnPipe(pid int) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, task := range tasks {
		call, err1 := os.ReadFile(task + "/syscall")
		wchan, err2 := os.ReadFile(task + "/wchan")
		if err1 == nil && err2 == nil && strings.HasPrefix(string(call), fmt.Sprintf("%d 0x1 ", unix.SYS_WRITE)) && strings.Contains(string(wchan), "pipe_write") {
			return true
		}
	}
	return false
}

// SIGTERM while a file renamed away is drained (logrotate's create mode: the app
// still writes to it until it reopens), and it ends in the middle of a line: that
// line gets the wait too, and goes out whole before the new file's lines.
func TestTermWhileDrainingRenamedHalfLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	app := openAppend(t, path)
	defer app.Close()
	app.WriteString("one\ntwo, a piece")
	p := start(t, "--settle=1h", path)
	p.waitLines(t, 1)
	rename(t, path, path+".1")
	os.WriteFile(path, []byte("new\n"), 0o644)
	p.cmd.Process.Signal(unix.SIGTERM)
	waitUntil(t, func() bool { return strings.Contains(p.stderr.String(), "middle of a line") }, p.stderr.String)
	app.WriteString(" and its end\n")
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
	}
	if got, want := p.output(), []string{"one\n", "two, a piece and its end\n", "new\n"}; !slices.Equal(got, want) {
		t.Fatalf("output %q, want %q", got, want)
	}
}

// Files rotated away, each ending in the middle of a line, are drained at SIGTERM
// one after another: their waits for a line's end share one deadline from the
// signal, so the drain ends within --drain-timeout.
func TestTermWaitsOnceForLineEnds(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	os.WriteFile(path, []byte("first\n"), 0o644)
	p1 := start(t, path)
	p1.waitLines(t, 1)
	if code := p1.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// Rotated while down, each file ending in a piece of a line.
	for i := range 4 {
		write := openAppend(t, path)
		fmt.Fprintf(write, "file %d line\nfile %d piece", i, i)
		write.Close()
		rename(t, path, fmt.Sprintf("%s.%d", path, 4-i))
	}
	os.WriteFile(path, []byte("current line\ncurrent piece"), 0o644)
	// A long settle holds the follower on each rotated file until the signal; four
	// waits of a quarter of the drain timeout each would take all of it.
	p2 := start(t, "--settle=1h", "--drain-timeout=2s", path)
	p2.waitLines(t, 1)
	began := time.Now()
	if code := p2.stop(t); code != 0 {
		t.Fatalf("exit %d after %v; stderr:\n%s", code, time.Since(began), p2.stderr.String())
	}
	want := []string{"file 0 line\n", "file 0 piece\n", "file 1 line\n", "file 1 piece\n", "file 2 line\n", "file 2 piece\n",
		"file 3 line\n", "file 3 piece\n", "current line\n", "current piece\n"}
	if got := p2.output(); !slices.Equal(got, want) {
		t.Fatalf("output %q, want %q", got, want)
	}
}

// SIGTERM while the file ends in the middle of a line: the drain waits a little for
// its end, so the line goes out whole and a restart begins at the next one. A line
// whose end does not come in that time goes out as it is, and is not lost.
func TestTermWhileLineHalfWritten(t *testing.T) {
	for _, c := range []struct {
		name    string
		endsIn  bool // the line's end is written while sidetail waits for it
		refill  bool // the file is truncated and refilled instead
		drainTO string
	}{
		{"end comes", true, false, "--drain-timeout=60s"},
		{"end never comes", false, false, "--drain-timeout=400ms"},
		{"truncated and refilled meanwhile", false, true, "--drain-timeout=60s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			f := openAppend(t, path)
			defer f.Close()
			w := &lineGen{stream: "w"}
			lines := bytes.Clone(w.next(11)) // next reuses its buffer
			cut := len(lines) - 30           // inside line 10
			f.Write(lines[:cut])
			p1 := start(t, c.drainTO, path)
			p1.waitLines(t, 10)
			p1.cmd.Process.Signal(unix.SIGTERM)
			waitUntil(t, func() bool { return strings.Contains(p1.stderr.String(), "middle of a line") }, p1.stderr.String)
			if c.endsIn {
				f.Write(lines[cut:])
			}
			refill := &lineGen{stream: "r"}
			if c.refill {
				// Past the old offset: read on from there, the piece would be glued
				// to a line of the refill, and the refill's head lost.
				if err := f.Truncate(0); err != nil {
					t.Fatal(err)
				}
				f.Write(refill.next(30))
			}
			if code := p1.wait(t); code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, p1.stderr.String())
			}
			if c.refill {
				// The piece alone, then the refill from its head, once: in this run
				// if its write came before the truncation was seen, else after a
				// restart.
				got := p1.output()
				if !p1.seen("r 000000029 ") {
					p2 := start(t, path)
					waitUntil(t, func() bool { return p2.seen("r 000000029 ") }, p2.stderr.String)
					if code := p2.stop(t); code != 0 {
						t.Fatalf("exit %d", code)
					}
					got = append(got, p2.output()...)
				}
				piece := string(lines[bytes.LastIndexByte(lines[:cut], '\n')+1:cut]) + "\n"
				if len(got) != 41 || got[10] != piece {
					t.Fatalf("%d lines, line 10 %q; want 41, the piece %q", len(got), got[min(10, len(got)-1)], piece)
				}
				checkStreams(t, slices.Delete(got, 10, 11), noPrefix, map[string]int{"w": 10, "r": 30})
				return
			}
			if !c.endsIn {
				f.Write(lines[cut:])
			}
			f.Write(w.next(10))
			p2 := start(t, path)
			p2.waitLines(t, 10)
			if code := p2.stop(t); code != 0 {
				t.Fatalf("exit %d", code)
			}
			all := append(p1.output(), p2.output()...)
			if c.endsIn {
				checkStreams(t, all, noPrefix, map[string]int{"w": 21})
				return
			}
			// The piece, then its rest as a line of its own: every byte once.
			piece, rest := string(lines[bytes.LastIndexByte(lines[:cut], '\n')+1:cut])+"\n", string(lines[cut:])
			if all[10] != piece || all[11] != rest {
				t.Fatalf("lines 10 and 11: %q, %q; want %q, %q", all[10], all[11], piece, rest)
			}
			checkStreams(t, slices.Replace(all, 10, 12, piece[:len(piece)-1]+rest), noPrefix, map[string]int{"w": 21})
		})
	}
}
