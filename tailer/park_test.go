package tailer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// waitParked waits until f has given up its goroutine while its file is idle; the
// deadline is a hang guard.
func waitParked(t *testing.T, f *follower) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f.wait.park.parked.Load() || followerLoops() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the follower never parked (%d goroutines in its loop)", followerLoops())
		}
		time.Sleep(time.Millisecond)
	}
}

// followerLoops counts the goroutines running a follower's loop.
func followerLoops() int {
	buf := make([]byte, 1<<20)
	return bytes.Count(buf[:runtime.Stack(buf, true)], []byte("tailer.(*follower).loop("))
}

// An idle follower holds no goroutine, and a write wakes it: lines written while
// it was parked come out, and it parks again.
func TestParkedWokenByWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "a\n", os.O_APPEND)
	f, out, _ := watchedFollower(t, path, followOpts{}, 0, nil)
	waitOutput(t, out, "a\n")
	for _, line := range []string{"b\n", "c\n"} {
		waitParked(t, f)
		before := out.String()
		write(t, path, line, os.O_APPEND)
		waitOutput(t, out, before+line)
	}
}

// Writes to the other files of its folder leave a parked follower parked: one busy
// file among many idle ones wakes only its own follower. A write to its file
// wakes it.
func TestParkedIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	path, other := filepath.Join(dir, "app.log"), filepath.Join(dir, "other.log")
	write(t, path, "a\n", os.O_APPEND)
	var looks atomic.Int64
	f, out, _ := watchedFollower(t, path, followOpts{}, 0, func() { looks.Add(1) })
	waitOutput(t, out, "a\n")
	waitParked(t, f)
	before := looks.Load()
	for range 20 {
		write(t, other, "busy\n", os.O_APPEND)
	}
	write(t, path, "b\n", os.O_APPEND)
	waitOutput(t, out, "a\nb\n")
	waitParked(t, f)
	// One look for the write to app.log; a second if its wakeup came while the
	// first was under way.
	if n := looks.Load() - before; n > 2 {
		t.Fatalf("%d looks for 20 writes to another file and one to its own", n)
	}
}

// A rename rotation while parked: the old file's last lines (written after the
// rename, as an app does until it reopens) come out, then the new file's.
func TestParkedRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "1\n", os.O_APPEND)
	f, out, _ := watchedFollower(t, path, followOpts{}, 50*time.Millisecond, nil)
	waitOutput(t, out, "1\n")
	waitParked(t, f)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, path+".1", "2\n", os.O_APPEND)
	write(t, path, "3\n", os.O_APPEND|os.O_CREATE)
	waitOutput(t, out, "1\n2\n3\n")
	waitParked(t, f)
	write(t, path, "4\n", os.O_APPEND)
	waitOutput(t, out, "1\n2\n3\n4\n")
}

// A globbed file written and deleted at once while its follower is parked: the
// last line is read through the open descriptor, and the follower ends.
func TestParkedDeleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "a\n", os.O_APPEND)
	f, out, ended := watchedFollower(t, path, followOpts{globbed: true}, 10*time.Millisecond, nil)
	waitOutput(t, out, "a\n")
	waitParked(t, f)
	write(t, path, "b\n", os.O_APPEND)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("the follower of a deleted file never ended")
	}
	if got := out.String(); got != "a\nb\n" {
		t.Fatalf("output %q, want %q", got, "a\nb\n")
	}
}

// Shutdown while parked: nothing wakes the follower but the end (no events, no
// polls), and it reads what was written meanwhile before it returns.
func TestParkedShutdownDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "a\n", os.O_APPEND)
	s := startStepped(t, path, Config{})
	s.waitFor(t, "a\n")
	waitParked(t, s.f)
	write(t, path, "b\n", os.O_APPEND)
	s.stop(t)
	if got := s.out.String(); got != "a\nb\n" {
		t.Fatalf("output %q, want %q", got, "a\nb\n")
	}
}

// failingWriter fails every write, as stdout does once its reader went away.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, ErrOutputClosed }

// An output error in one file ends the other followers, even those parked on idle
// files: Run returns the error, with the files named or globbed.
func TestParkedEndOnOutputError(t *testing.T) {
	dir := t.TempDir()
	idle, busy := filepath.Join(dir, "idle.log"), filepath.Join(dir, "busy.log")
	write(t, idle, "", os.O_APPEND)
	write(t, busy, "x\n", os.O_APPEND)
	for name, sources := range map[string][]Source{
		"files": {{Path: idle}, {Path: busy}},
		"glob":  {{Path: filepath.Join(dir, "*.log")}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{MaxLine: 1 << 20, PollInterval: time.Hour}
			ended := make(chan error, 1)
			go func() { ended <- Run(context.Background(), cfg, sources, NewOutput(failingWriter{})) }()
			select {
			case err := <-ended:
				if !errors.Is(err, ErrOutputClosed) {
					t.Fatalf("Run returned %v, want the output error", err)
				}
			case <-time.After(10 * time.Second): // hang guard
				t.Fatal("Run never returned after the output failed")
			}
		})
	}
}
