package main

// The end-to-end harness the root package's tests share: the binary built once,
// a running sidetail whose output is read line by line, numbered self-checking
// lines, and writers that rotate the file each way.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/syncbuf"
	"github.com/sidetail/sidetail/internal/testbin"
)

// bin is the sidetail binary built once for the end-to-end tests.
var bin string

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, &bin)) }

// deadline bounds every wait: a hang guard, not a timing assertion.
const deadline = 60 * time.Second

// proc is a running sidetail whose stdout is collected line by line.
type proc struct {
	cmd    *exec.Cmd
	lines  syncbuf.Lines
	stderr syncbuf.Buffer
	eof    chan struct{}
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startWith(t, nil, args...)
}

// startWith starts sidetail after setup (if any) adjusts the command.
func startWith(t *testing.T, setup func(*exec.Cmd), args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), eof: make(chan struct{})}
	if setup != nil {
		setup(p.cmd)
	}
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.eof)
		p.lines.Collect(out, nil)
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

func (p *proc) count() int { return p.lines.Len() }

// seen reports whether a line containing s came out.
func (p *proc) seen(s string) bool {
	return slices.ContainsFunc(p.lines.All(), func(l string) bool { return strings.Contains(l, s) })
}

func (p *proc) output() []string { return p.lines.All() }

// waitLines waits until at least n lines came out.
func (p *proc) waitLines(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, func() bool { return p.count() >= n }, func() string {
		last := map[string]string{}
		for _, l := range p.output() {
			last[strings.SplitN(l, " ", 2)[0]] = l
		}
		return fmt.Sprintf("%d lines of %d; last line of each stream: %q; gaps: %s; stderr:\n%s", p.count(), n, last, gaps(p.output()), p.stderr.String())
	})
}

// gaps describes, per stream, where sequence numbers jump (at most 5 per stream), to
// tell lines lost from lines still to come when a wait times out.
func gaps(lines []string) string {
	next := map[string]int{}
	found := map[string][]string{}
	for _, line := range lines {
		fields := strings.Fields(line)
		for i := 1; i < len(fields); i++ {
			seq, err := strconv.Atoi(fields[i])
			if err != nil {
				continue
			}
			stream := fields[i-1]
			if want := next[stream]; seq != want && len(found[stream]) < 5 {
				found[stream] = append(found[stream], fmt.Sprintf("%d..%d", want, seq-1))
			}
			next[stream] = seq + 1
			break
		}
	}
	return fmt.Sprint(found)
}

// stop sends SIGTERM and returns the exit code once stdout is fully read.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(t)
}

func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.eof:
	case <-time.After(deadline):
		t.Fatalf("sidetail did not exit; stderr:\n%s", p.stderr.String())
	}
	p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode()
}

func waitUntil(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting: %s", what())
		}
		time.Sleep(2 * time.Millisecond) // poll interval of the wait, not synchronisation
	}
}

// lineGen makes numbered, self-checking lines: "<stream> <seq> <filler>\n", where the
// filler is derived from seq so a corrupted or spliced line is recognised.
type lineGen struct {
	stream string
	seq    int
	buf    []byte
}

func filler(seq int) string { return strings.Repeat(string(rune('a'+seq%26)), 20+seq%50) }

func (g *lineGen) next(n int) []byte {
	g.buf = g.buf[:0]
	for range n {
		g.buf = fmt.Appendf(g.buf, "%s %09d %s\n", g.stream, g.seq, filler(g.seq))
		g.seq++
	}
	return g.buf
}

// checkStreams verifies that lines (after stripping prefix) hold, for every stream,
// exactly the sequence 0..want[stream]-1 in order, each line intact.
func checkStreams(t *testing.T, lines []string, prefix func(stream string) string, want map[string]int) {
	t.Helper()
	next := map[string]int{}
	bad := 0
	for i, line := range lines {
		fields := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 3)
		ok := len(fields) == 3
		var stream string
		var seq int
		if ok {
			// With a prefix the stream name follows it.
			for s := range want {
				if p := prefix(s); strings.HasPrefix(line, p) {
					rest := strings.SplitN(strings.TrimSuffix(line[len(p):], "\n"), " ", 3)
					if len(rest) == 3 && rest[0] == s {
						stream, fields = s, rest
					}
				}
			}
			var err error
			seq, err = strconv.Atoi(fields[1])
			ok = stream != "" && err == nil && fields[2] == filler(seq)
		}
		switch {
		case !ok:
			t.Errorf("line %d corrupt: %q", i, line)
		case seq != next[stream]:
			t.Errorf("line %d: stream %s seq %d, want %d (lost or repeated)", i, stream, seq, next[stream])
		}
		if ok {
			next[stream] = seq + 1
		}
		if t.Failed() {
			if bad++; bad > 5 {
				t.FailNow()
			}
		}
	}
	for s, n := range want {
		if next[s] != n {
			t.Errorf("stream %s: got up to %d lines, want %d", s, next[s], n)
		}
	}
}

func noPrefix(string) string { return "" }

func openAppend(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// writeRotating writes total lines of stream to path as fast as it can, in writes of
// up to 64 lines, calling rotate after every `every` lines. rotate returns the file
// to write to next. The first line is written alone and waited for in p's output: a
// file rotated away before sidetail first opened the path was never sidetail's to
// read (as for tail -F), and a slow start under -race must not look like a loss.
// It may run on its own goroutine: it reports with t.Error, never t.Fatal.
func writeRotating(t *testing.T, p *proc, path, stream string, total, every int, rotate func(f *os.File, n int) *os.File) {
	t.Helper()
	g := &lineGen{stream: stream}
	f := openAppend(t, path)
	if _, err := f.Write(g.next(1)); err != nil {
		t.Error(err)
		return
	}
	first := fmt.Sprintf("%s %09d ", stream, 0)
	for end := time.Now().Add(deadline); !p.seen(first); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(end) {
			t.Errorf("%s: first line never came out", path)
			return
		}
	}
	begin := time.Now()
	rotations := 0
	for g.seq < total {
		n := min(64, total-g.seq, every-g.seq%every)
		if _, err := f.Write(g.next(n)); err != nil {
			t.Error(err)
			return
		}
		if g.seq%every == 0 && g.seq < total {
			f = rotate(f, g.seq)
			rotations++
		}
	}
	f.Close()
	t.Logf("%s: %d lines, %d rotations, %.0f lines/s", stream, total, rotations, float64(total)/time.Since(begin).Seconds())
}

// Rotation kinds, each as the writer side does it.

func renameRotation(t *testing.T, path string) func(*os.File, int) *os.File {
	return func(f *os.File, _ int) *os.File {
		f.Close()
		if err := os.Rename(path, path+".1"); err != nil {
			t.Error(err)
		}
		return openAppend(t, path)
	}
}

// deleteRotation deletes the file once sidetail holds it open: a file deleted
// before anyone opened it is gone for every reader, and a loaded machine can keep
// sidetail from opening a new file before the writer has filled it.
func deleteRotation(t *testing.T, p *proc, path string) func(*os.File, int) *os.File {
	return func(f *os.File, _ int) *os.File {
		info, err := f.Stat()
		if err != nil {
			t.Error(err)
		}
		f.Close()
		// Polled with t.Error, not waitUntil: writers run on goroutines of their own.
		for end := time.Now().Add(deadline); !holds(p.cmd.Process.Pid, info); time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Errorf("sidetail did not open %s: %s", path, p.stderr.String())
				break
			}
		}
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
		return openAppend(t, path)
	}
}

func symlinkRotation(t *testing.T, path string) func(*os.File, int) *os.File {
	return func(f *os.File, n int) *os.File {
		target := fmt.Sprintf("%s.%d", path, n)
		next := openAppend(t, target)
		tmp := path + ".tmp"
		if err := os.Symlink(filepath.Base(target), tmp); err != nil {
			t.Error(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Error(err)
		}
		f.Close()
		return next
	}
}

// copytruncateRotation truncates in place. Bytes written between a reader's last read
// and the truncate are gone from the file for any reader, so the writer waits until
// sidetail has shown every line so far, as logrotate's copy step would have read them.
func copytruncateRotation(t *testing.T, p *proc) func(*os.File, int) *os.File {
	return func(f *os.File, n int) *os.File {
		p.waitLines(t, n)
		if err := f.Truncate(0); err != nil {
			t.Error(err)
		}
		return f
	}
}

const (
	stressLines = 420_000
	stressEvery = 20_000 // 20 rotations (at 20k, 40k, … 400k)
)

// publicTempDir is a new folder every user may enter but only root may write, for
// tests that run sidetail as nobody: t.TempDir's parent is private to root.
func publicTempDir(t *testing.T, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	return dir
}

func startAs(t *testing.T, uid uint32, args ...string) *proc {
	t.Helper()
	return startWith(t, func(c *exec.Cmd) {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}, args...)
}

// tmpfsDir is a folder of the test's on /dev/shm (tmpfs, where cuts punch holes
// instead of collapsing), removed at its end.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	return tempDirIn(t, "/dev/shm")
}

// tempDirIn returns a fresh folder in parent ("": the default temporary folder),
// removed when the test ends: t.TempDir, on the filesystem parent is on (/dev/shm:
// tmpfs).
func tempDirIn(t *testing.T, parent string) string {
	t.Helper()
	dir, err := os.MkdirTemp(parent, "sidetail-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
