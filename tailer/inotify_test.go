package tailer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// event is one inotify event as eachEvent hands it out.
type event struct {
	wd   int32
	mask uint32
	name string
}

// encodeEvents lays events out as the kernel does: a header, then the name padded
// with NULs to pad bytes more (the kernel pads to a multiple of the header's size).
func encodeEvents(events []event, pad int) []byte {
	var b []byte
	for _, e := range events {
		size := 0
		if e.name != "" {
			size = len(e.name) + pad
		}
		b = binary.NativeEndian.AppendUint32(b, uint32(e.wd))
		b = binary.NativeEndian.AppendUint32(b, e.mask)
		b = binary.NativeEndian.AppendUint32(b, 0) // cookie
		b = binary.NativeEndian.AppendUint32(b, uint32(size))
		b = append(b, e.name...)
		b = append(b, make([]byte, size-len(e.name))...)
	}
	return b
}

func parseEvents(b []byte) []event {
	var got []event
	eachEvent(b, func(wd int32, mask uint32, name []byte) {
		got = append(got, event{wd, mask, string(name)})
	})
	return got
}

func TestEachEvent(t *testing.T) {
	events := []event{
		{1, unix.IN_MODIFY, "app.log"},
		{1, unix.IN_DELETE_SELF, ""},
		{-1, unix.IN_Q_OVERFLOW, ""},
		{7, unix.IN_CREATE, "a-name-of-exactly-32-bytes-long."},
	}
	whole := encodeEvents(events, 9)
	if got := parseEvents(whole); !slices.Equal(got, events) {
		t.Fatalf("got %v, want %v", got, events)
	}
	// A buffer that ends inside an event (in its header, or in its name) yields the
	// whole events before it only.
	last := len(encodeEvents(events[:3], 9))
	for cut := last; cut < len(whole); cut++ {
		if got := parseEvents(whole[:cut]); !slices.Equal(got, events[:3]) {
			t.Fatalf("cut at %d: got %v", cut, got)
		}
	}
}

// FuzzInotifyEvents: any bytes parse without a panic into events whose names hold
// no trailing NUL, and those events, laid out again, parse the same.
func FuzzInotifyEvents(f *testing.F) {
	f.Add(encodeEvents([]event{{1, unix.IN_MODIFY, "app.log"}, {2, unix.IN_IGNORED, ""}}, 9))
	f.Add([]byte{1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := parseEvents(b)
		for _, e := range got {
			if bytes.HasSuffix([]byte(e.name), []byte{0}) {
				t.Fatalf("name %q ends in NUL", e.name)
			}
		}
		if again := parseEvents(encodeEvents(got, 3)); !slices.Equal(again, got) {
			t.Fatalf("laid out again: %v, want %v", again, got)
		}
	})
}

// woken waits for a wakeup of s; the deadline is a hang guard.
func woken(t *testing.T, s *subscription, what string) {
	t.Helper()
	select {
	case <-s.wake:
	case <-time.After(10 * time.Second):
		t.Fatalf("no wakeup: %s", what)
	}
}

// A folder watched under two names (a bind mount here; a link to a folder is
// watched at its target) is one inotify watch: its events wake the subscribers of
// both names, and unsubscribing one name keeps the watch for the other.
func TestInotifyFolderUnderTwoNames(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a bind mount needs root")
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	os.Mkdir(a, 0o755)
	os.Mkdir(b, 0o755)
	if err := unix.Mount(a, b, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(b, 0) })

	w := newWatcher(slog.New(slog.DiscardHandler), inotifyWhereItWorks, time.Hour)
	if w.in == nil {
		t.Skip("no inotify here")
	}
	w.safety = time.Hour
	sa, sb := newSubscription(nil), newSubscription(nil)
	w.Subscribe(a, sa)
	w.Subscribe(b, sb)
	done := runWatcher(t, w)
	defer done()

	write(t, filepath.Join(a, "x.log"), "1\n", os.O_APPEND)
	woken(t, sa, "name a")
	woken(t, sb, "name b")

	// Events are handed out in order: once one in another folder came, the
	// write's are all through, and a wakeup left over from them can be dropped.
	other := t.TempDir()
	so := newSubscription(nil)
	w.Subscribe(other, so)
	write(t, filepath.Join(other, "x.log"), "\n", os.O_APPEND)
	woken(t, so, "other folder")
	select {
	case <-sa.wake:
	default:
	}
	w.Unsubscribe(b, sb)
	write(t, filepath.Join(b, "x.log"), "2\n", os.O_APPEND)
	woken(t, sa, "name a, after b went")
}

// runWatcher runs w.Run until the returned func is called, which waits for it.
func runWatcher(t *testing.T, w *watcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Go(func() { w.Run(ctx) })
	return func() {
		cancel()
		running.Wait()
	}
}

// When reading the instance fails (it should not), every folder is polled from
// then on. A pipe stands in for the instance here: its end is a read of nothing.
func TestInotifyFailureFallsBackToPolling(t *testing.T) {
	const pollEvery = 7 * time.Minute
	w := newWatcher(slog.New(slog.DiscardHandler), inotifyWhereItWorks, pollEvery)
	if w.in == nil {
		t.Skip("no inotify here")
	}
	w.safety = time.Hour
	w.in.close()
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if w.in, err = inotifyOn(r); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w.mu.Lock()
	w.setAt(dir, dir, true) // as if inotify watched it
	w.mu.Unlock()
	s := newSubscription(nil)
	w.Subscribe(dir, s)
	done := runWatcher(t, w)
	defer done()

	wr.Close() // the read returns nothing: a failure
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		polled := w.broken && w.at[dir] == ""
		w.mu.Unlock()
		if polled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still waiting for inotify after it failed")
		}
		time.Sleep(time.Millisecond)
	}
	if got := w.period(); got != pollEvery {
		t.Fatalf("period %v, want the poll interval", got)
	}
}

// An overflowed queue wakes every subscriber, and each looks at its path again.
func TestInotifyOverflowWakesAll(t *testing.T) {
	w := newWatcher(slog.New(slog.DiscardHandler), pollOnly, time.Hour)
	s1, s2 := newSubscription(nil), newSubscription(nil)
	w.Subscribe(t.TempDir(), s1)
	w.Subscribe(t.TempDir(), s2)
	for _, s := range []*subscription{s1, s2} {
		s.renamed() // taken
	}
	w.event("", nil, unix.IN_Q_OVERFLOW)
	for i, s := range []*subscription{s1, s2} {
		woken(t, s, "overflow")
		if !s.renamed() {
			t.Fatalf("subscriber %d not told that names may have changed", i)
		}
	}
}

// Events lost to a full queue may include a watched folder's deletion: the folder,
// made again meanwhile, is then watched again at the overflow, not left to the
// safety look. Here the events are read and dropped before the watcher runs, and
// the overflow is handed to it as the kernel's reader would.
func TestInotifyOverflowWatchesAgain(t *testing.T) {
	w := newWatcher(slog.New(slog.DiscardHandler), inotifyWhereItWorks, time.Hour)
	if w.in == nil {
		t.Skip("no inotify here")
	}
	w.safety = time.Hour
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSubscription(nil)
	w.Subscribe(dir, s)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rc, err := w.in.file.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0
	rc.Control(func(fd uintptr) {
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(int(fd), buf)
			if err != nil || n <= 0 {
				return
			}
			dropped += n
		}
	})
	if dropped == 0 {
		t.Fatal("no events to lose: the folder's deletion raised none")
	}
	w.event("", nil, unix.IN_Q_OVERFLOW)
	woken(t, s, "the overflow")
	done := runWatcher(t, w)
	defer done()
	write(t, filepath.Join(dir, "x.log"), "1\n", os.O_APPEND)
	woken(t, s, "a write in the folder made again")
}

// More events than one read takes, queued before the reader looks: every one is
// handed out, not only the first read's (the poller is told only of new events).
func TestInotifyBacklogLargerThanARead(t *testing.T) {
	in, err := newInotify()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := in.add(dir, inotifyMask); err != nil {
		t.Fatal(err)
	}
	const files = 2000 // about 64 KiB of events: four reads' worth
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.log", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	created := map[string]bool{} // on the reading goroutine only
	all := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- in.read(func(_ string, name []byte, mask uint32) {
			if mask&unix.IN_CREATE != 0 && !created[string(name)] {
				if created[string(name)] = true; len(created) == files {
					close(all)
				}
			}
		})
	}()
	select {
	case <-all:
	case <-time.After(10 * time.Second): // hang guard
		t.Fatal("not every creation was handed out")
	}
	in.close()
	<-done
}
