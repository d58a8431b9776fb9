package tailer

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/syncbuf"
)

// watched runs one follower on path with inotify and no timer that could stand in
// for a missing event: polling and the safety poll are an hour apart, so whatever
// it relays, an event brought it.
func watched(t *testing.T, path string) *syncbuf.Buffer {
	t.Helper()
	cfg := &Config{MaxLine: 1 << 20, PollInterval: time.Hour, Log: slog.New(slog.DiscardHandler)}
	w := newWatcher(cfg.Log, inotifyWhereItWorks, cfg.PollInterval)
	if w.in == nil {
		t.Skip("no inotify here")
	}
	w.safety = time.Hour
	out := &syncbuf.Buffer{}
	tl := &tailer{cfg: cfg, out: NewOutput(out), files: newRegistry(), watcher: w, bufs: newBufPool()}
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Go(func() { w.Run(ctx) })
	done.Go(func() {
		if err := tl.follower(path, "t", followOpts{}).run(ctx, w); err != nil {
			t.Errorf("follower: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		done.Wait()
	})
	return out
}

// waitOutput waits until out holds want; the deadline is a hang guard.
func waitOutput(t *testing.T, out *syncbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for out.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want %q", out.String(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// A log folder deleted and made again is watched again: inotify drops a watch
// with its folder, and without a new one nothing but the safety poll would wake
// the follower (files rotated and deleted in between would be lost).
func TestWatchFolderRecreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	path := filepath.Join(dir, "app.log")
	os.Mkdir(dir, 0o755)
	write(t, path, "a\n", os.O_APPEND)
	out := watched(t, path)
	want := "a\n"
	waitOutput(t, out, want)
	for _, line := range []string{"b\n", "c\n"} {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, path, line, os.O_APPEND)
		want += line
		waitOutput(t, out, want)
		// Lines appended later come through the new folder's watch.
		write(t, path, "more\n", os.O_APPEND)
		want += "more\n"
		waitOutput(t, out, want)
	}
}

// A symbolic link into another folder: writes and rotations happen in the
// target's folder, so it is watched and searched for rotated files too.
func TestWatchSymlinkTarget(t *testing.T) {
	top := t.TempDir()
	links, real := filepath.Join(top, "links"), filepath.Join(top, "real")
	os.Mkdir(links, 0o755)
	os.Mkdir(real, 0o755)
	target, path := filepath.Join(real, "app.log"), filepath.Join(links, "app.log")
	write(t, target, "1\n", os.O_APPEND)
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	out := watched(t, path)
	waitOutput(t, out, "1\n")
	write(t, target, "2\n", os.O_APPEND)
	waitOutput(t, out, "1\n2\n")
	// Rename rotation of the target, beside it.
	if err := os.Rename(target, target+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, target, "3\n", os.O_APPEND)
	waitOutput(t, out, "1\n2\n3\n")
}
