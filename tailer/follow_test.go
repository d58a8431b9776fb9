package tailer

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/syncbuf"
	"golang.org/x/sys/unix"
)

// stepped runs one follower on path with inotify off and polling too slow to fire,
// so the test decides when it looks: the follower says each time it is about to
// wait (idle), and step wakes it.
type stepped struct {
	out    *syncbuf.Buffer
	w      *watcher
	dir    string
	idle   chan struct{}
	cancel context.CancelFunc
	done   chan error
	// writes makes step wake the follower as a write does (names in the folder
	// did not change): it then looks for no rename, only at the bytes.
	writes bool
}

func startStepped(t *testing.T, path string, cfg Config) *stepped {
	t.Helper()
	cfg.PollInterval = time.Hour
	cfg.Log = slog.New(slog.DiscardHandler)
	if cfg.MaxLine == 0 {
		cfg.MaxLine = 1 << 20
	}
	s := &stepped{out: &syncbuf.Buffer{}, w: newWatcher(cfg.Log, pollOnly, cfg.PollInterval), dir: filepath.Dir(path),
		idle: make(chan struct{}, 1), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	tl := &tailer{cfg: &cfg, out: NewOutput(s.out), files: newRegistry(), watcher: s.w, bufs: newBufPool(), idle: func() {
		select {
		case s.idle <- struct{}{}:
		default: // the test has not taken the last one yet: one is enough
		}
	}}
	go func() { s.done <- tl.follower(path, "t", followOpts{fromTail: cfg.FromTail}).run(ctx, s.w) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// waitIdle waits until the follower is about to wait for a wakeup: it has done
// everything the file called for.
func (s *stepped) waitIdle(t *testing.T) {
	t.Helper()
	select {
	case <-s.idle:
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("the follower never went idle")
	}
}

// step wakes the follower and waits until it is idle again.
func (s *stepped) step(t *testing.T) {
	t.Helper()
	select {
	case <-s.idle: // an earlier idle: not the one after this wakeup
	default:
	}
	if s.writes {
		s.w.notifyWrite(s.dir, nil)
	} else {
		s.w.notify(s.dir, nil, false)
	}
	s.waitIdle(t)
}

// waitFor steps the follower until the output equals want.
func (s *stepped) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // hang guard
	for s.out.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want %q", s.out.String(), want)
		}
		s.step(t)
	}
}

func (s *stepped) stop(t *testing.T) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		t.Errorf("follower: %v", err)
	}
}

// run follows the path as start does and returns when the follower ends, with
// its output error.
func (f *follower) run(ctx context.Context, w *watcher) error {
	done := make(chan error, 1)
	f.start(ctx, w, func(err error) { done <- err })
	return <-done
}

func write(t *testing.T, path, s string, flag int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// A truncated file is read again from its start: one smaller than our offset, and
// one truncated and refilled past our offset between two looks, which has the same
// identity and is no smaller: only the bytes before our offset tell. Woken by a
// name event the follower stats the path first; woken by a write it only reads,
// and the read checks those bytes in the same call.
//
// Lines that differ only in a counter (fixed-length, as a load generator or a
// metrics logger writes them) must not fool it: the 32 bytes before the offset
// were the same in the old file and the refilled one, and the refill was lost.
func TestFollowTruncated(t *testing.T) {
	for _, writes := range []bool{false, true} {
		t.Run(map[bool]string{false: "name event", true: "write event"}[writes], func(t *testing.T) {
			testFollowTruncated(t, writes)
		})
	}
}

func testFollowTruncated(t *testing.T, writes bool) {
	header := counted("# app v1", 0)
	for _, c := range []struct{ name, old, refill string }{
		{"smaller", "old 1\nold 2\n", "n\n"},
		{"refilled past the offset", "old 1\nold 2\n", "new 1 is longer\nnew 2\n"},
		// The head tells: the refill goes on counting.
		{"refilled with counted lines", countedLines(0, 50), countedLines(50, 150)},
		// The head is the same header; the lines before the offset tell.
		{"refilled under the same header", header + countedLines(0, 49), header + countedLines(100, 199)},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			write(t, path, c.old, os.O_APPEND)
			s := startStepped(t, path, Config{})
			s.writes = writes
			s.waitFor(t, c.old)
			write(t, path, c.refill, os.O_TRUNC)
			s.waitFor(t, c.old+c.refill)
		})
	}
}

// Lines all alike under a banner that differs: only the head tells the refill, so
// the head is looked at on every wakeup (looked at once per 50 ms, refills closer
// than that lost the lines of the one before). Then idle, or renamed away, also
// before the follower woke for the refill: a rename is not taken for a rotation,
// whose drain reads on from our offset, before the file was checked.
func TestFollowRefilledOnlyTheHeadTells(t *testing.T) {
	for _, c := range []struct {
		name           string
		woken, renamed bool // the follower woke for the refill; the file was renamed away
	}{
		{"then idle", true, false},
		{"then renamed away", true, true},
		{"renamed away before a wakeup", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			line := counted("GET /healthz 200", 0)
			old := counted("# app started, run", 1) + strings.Repeat(line, 30)
			refill := counted("# app started, run", 2) + strings.Repeat(line, 60)
			path := filepath.Join(t.TempDir(), "app.log")
			write(t, path, old, os.O_APPEND)
			s := startStepped(t, path, Config{Settle: time.Nanosecond})
			s.writes = true // the worst case: the read checks the mark, not the name
			s.waitFor(t, old)
			write(t, path, refill, os.O_TRUNC)
			if c.woken {
				s.step(t)
			}
			var next string
			if c.renamed {
				next = counted("# app started, run", 3)
				if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
				write(t, path, next, os.O_APPEND)
				s.writes = false
				s.step(t)
			}
			s.waitFor(t, old+refill+next)
		})
	}
}

// counted returns a 100-byte line: text, a counter, and a filler that is the same
// on every line.
func counted(text string, n int) string {
	line := fmt.Sprintf("%s %08d ", text, n)
	return line + strings.Repeat("x", 99-len(line)) + "\n"
}

func countedLines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(counted("line", i))
	}
	return b.String()
}

// A rename rotation drains the old file, including writes made through the old
// descriptor after the rename, before reading the new file from its head.
func TestFollowRenameDrainsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	old, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.WriteString("a1\npartial ")
	s := startStepped(t, path, Config{Settle: time.Hour})
	s.waitFor(t, "a1\n")

	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, path, "b1\n", os.O_APPEND)
	s.step(t)
	old.WriteString("rest\na2\n")
	// Settle is an hour: the follower must still be on the old file.
	s.waitFor(t, "a1\npartial rest\na2\n")
	s.stop(t) // shutdown: drains the old file, then reads the new one
	if got, want := s.out.String(), "a1\npartial rest\na2\nb1\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFollowHeldLineEmittedAtShutdown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "a\nno newline", os.O_APPEND)
	s := startStepped(t, path, Config{})
	s.waitFor(t, "a\n")
	s.stop(t)
	if got := s.out.String(); got != "a\nno newline\n" {
		t.Fatalf("got %q", got)
	}
}

func TestFollowFromTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "before\n", os.O_APPEND)
	s := startStepped(t, path, Config{FromTail: true})
	s.waitIdle(t) // the file is open, at its end
	write(t, path, "after\n", os.O_APPEND)
	s.waitFor(t, "after\n") // "before" is not in it
}

// A cut made through Config.Cut (a collapse, as rotation does on ext4) moves the
// follower's offsets down: nothing is read twice, even when fewer bytes than the
// truncation mark are left before the offset.
func TestFollowCutMovesOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	// The second line straddles the 4 KiB block boundary; only "les\n" is left.
	first := strings.Repeat("x", 4089) + "\n" + "straddles\n"
	write(t, path, first, os.O_APPEND)
	cut := make(chan struct{}) // closed once the collapse was tried
	tried := false             // only the follower's goroutine calls Cut
	s := startStepped(t, path, Config{CutInterval: time.Millisecond,
		Cut: func(path string, reading fs.FileInfo, emitted int64) (int64, error) {
			if tried || emitted < int64(len(first)) {
				return 0, nil
			}
			tried = true
			defer close(cut)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return 0, err
			}
			defer f.Close()
			if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, 4096); err != nil {
				t.Errorf("collapse (this test needs ext4 or xfs): %v", err)
				return 0, err
			}
			return 4096, nil
		}})
	s.waitFor(t, first)
	<-cut
	if data, _ := os.ReadFile(path); string(data) != "les\n" {
		t.Fatalf("after the collapse the file holds %q", data)
	}
	write(t, path, "after\n", os.O_APPEND)
	s.waitFor(t, first+"after\n")
}

// A hole punched over what was read (rotation on tmpfs, or by sidetail rotate
// beside another reader) is not a truncation, even when it reaches into the
// bytes just before the offset.
func TestFollowPunchedBehindOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	first := strings.Repeat("x", 4089) + "\n" + "straddles\n"
	write(t, path, first, os.O_APPEND)
	s := startStepped(t, path, Config{})
	s.waitFor(t, first)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 4096); err != nil {
		t.Fatal(err)
	}
	write(t, path, "after\n", os.O_APPEND)
	s.waitFor(t, first+"after\n")
}

// BenchmarkCatchUp reads a 64 MiB file of 100-byte lines to its end, as a sidecar
// starting on a full log does, without and with checkpoints.
// Compare the two with benchstat: the checkpoint target is at most 5% slower.
func BenchmarkCatchUp(b *testing.B) {
	path := filepath.Join(b.TempDir(), "app.log")
	line := strings.Repeat("x", 99) + "\n"
	if err := os.WriteFile(path, []byte(strings.Repeat(line, 64<<20/100)), 0o644); err != nil {
		b.Fatal(err)
	}
	info, _ := os.Stat(path)
	for _, mode := range []string{"off", "on"} {
		b.Run("checkpoints="+mode, func(b *testing.B) {
			cfg := Config{MaxLine: 1 << 20, Log: slog.New(slog.DiscardHandler), PollInterval: time.Hour}
			b.SetBytes(info.Size())
			if mode == "on" {
				cps, err := OpenCheckpoints(filepath.Join(b.TempDir(), "state"))
				if err != nil {
					b.Fatal(err)
				}
				cfg.Checkpoints = cps
			}
			for b.Loop() {
				if mode == "on" {
					b.StopTimer()
					cfg.Checkpoints.remove(path) // each round reads the file anew
					b.StartTimer()
				}
				// A done context makes the follower read to EOF and return.
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				w := newWatcher(cfg.Log, pollOnly, cfg.PollInterval)
				tl := &tailer{cfg: &cfg, out: NewOutput(io.Discard), files: newRegistry(), watcher: w, bufs: newBufPool()}
				if err := tl.follower(path, "t", followOpts{}).run(ctx, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A crash between a collapse and the checkpoint after it (tail+rotate): the restart
// finds a checkpoint from before the collapse. With lines that all look alike the
// file's head still matches it, so only the rotator's total of removed bytes can tell
// how far to move the offset down: nothing is repeated or skipped, no fragment.
func TestResumeAfterUncheckpointedCut(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	same := strings.Repeat(strings.Repeat("x", 99)+"\n", 100)
	write(t, path, same, os.O_APPEND)
	cps, err := OpenCheckpoints(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	var removed atomic.Int64 // what the rotator's state says it ever collapsed
	cfg := Config{Checkpoints: cps, CutInterval: time.Hour,
		Cut:     func(string, fs.FileInfo, int64) (int64, error) { return 0, nil },
		Removed: func(string, fs.FileInfo) (int64, error) { return removed.Load(), nil }}
	s := startStepped(t, path, cfg)
	s.waitFor(t, same)
	s.stop(t)

	// The cut the killed sidetail made and never checkpointed: 4 KiB off the front.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, 4096); err != nil {
		t.Skipf("collapse (ext4 or xfs) unavailable here: %v", err)
	}
	f.Close()
	removed.Store(4096)
	more := countedLines(0, 50)
	write(t, path, more, os.O_APPEND)

	s = startStepped(t, path, cfg)
	s.waitFor(t, more)
}

// Reading a file appended to leaves its access time alone: with relatime each read
// after a write would write the inode.
func TestReadKeepsAccessTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &fs); err != nil || fs.Flags&unix.ST_NOATIME != 0 {
		t.Skipf("the temp folder's filesystem keeps no access times (%v)", err)
	}
	write(t, path, "one\n", 0)
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(path, old, time.Time{}); err != nil { // older than the mtime: relatime would update it
		t.Fatal(err)
	}
	s := startStepped(t, path, Config{})
	s.waitIdle(t)
	write(t, path, "two\n", os.O_APPEND)
	s.step(t)
	if got := s.out.String(); got != "one\ntwo\n" {
		t.Fatalf("output %q", got)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if at := time.Unix(st.Atim.Unix()); !at.Equal(old) {
		t.Fatalf("access time %v, want %v", at, old)
	}
}
