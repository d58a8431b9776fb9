package tailer

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// watcher wakes followers when anything changes in their directories. One inotify
// instance serves every file: Kubernetes nodes have a per-user limit on instances
// (fs.inotify.max_user_instances, often 128) shared by every pod.
type watcher struct {
	log *slog.Logger

	mu    sync.Mutex
	fs    *fsnotify.Watcher // nil: inotify unavailable, everyone polls
	dirs  map[string][]chan struct{}
	added map[string]bool // dirs inotify watches
}

// watchMode says how a watcher learns of changes.
type watchMode int

const (
	inotifyWhereItWorks watchMode = iota // stat polling only where inotify cannot be used
	pollOnly                             // --poll: never inotify
)

// newWatcher starts an inotify watcher, or a polling-only one when inotify cannot
// be used or mode says so. Run must be called to deliver events.
func newWatcher(log *slog.Logger, mode watchMode) *watcher {
	w := &watcher{log: log, dirs: map[string][]chan struct{}{}, added: map[string]bool{}}
	if mode == pollOnly {
		return w
	}
	fs, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("inotify unavailable, polling", "err", err)
		return w
	}
	w.fs = fs
	return w
}

// Run delivers events until ctx is done.
func (w *watcher) Run(ctx context.Context) {
	if w.fs == nil {
		<-ctx.Done()
		return
	}
	defer w.fs.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			w.wake(filepath.Dir(ev.Name))
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// An overflow means events were dropped: everyone looks again.
			w.log.Warn("inotify error, waking all files", "err", err)
			w.wakeAll()
		}
	}
}

// Subscribe returns a channel that receives a value after something changes in dir,
// and whether inotify watches dir; when it does not, the caller must poll.
func (w *watcher) Subscribe(dir string) (wake chan struct{}, watched bool) {
	wake = make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dirs[dir] = append(w.dirs[dir], wake)
	if w.fs == nil {
		return wake, false
	}
	if !w.added[dir] {
		if !eventsWork(dir) {
			return wake, false
		}
		if err := w.fs.Add(dir); err != nil {
			// ENOSPC here is the watch limit (fs.inotify.max_user_watches).
			w.log.Warn("cannot watch directory, polling", "dir", dir, "err", err)
			return wake, false
		}
		w.added[dir] = true
	}
	return wake, true
}

// Unsubscribe stops deliveries to wake.
func (w *watcher) Unsubscribe(dir string, wake chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	subs := w.dirs[dir]
	for i, c := range subs {
		if c == wake {
			subs = append(subs[:i], subs[i+1:]...)
			break
		}
	}
	if len(subs) > 0 {
		w.dirs[dir] = subs
		return
	}
	delete(w.dirs, dir)
	if w.added[dir] {
		delete(w.added, dir)
		_ = w.fs.Remove(dir) // the directory may be gone already
	}
}

func (w *watcher) wake(dir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.dirs[dir] {
		notify(c)
	}
}

func (w *watcher) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, subs := range w.dirs {
		for _, c := range subs {
			notify(c)
		}
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // a wakeup is already pending
	}
}

// gpfsMagic is IBM Spectrum Scale's statfs type, which x/sys/unix does not name.
const gpfsMagic = 0x47504653

// eventsWork reports whether inotify sees changes made in dir. On network and FUSE
// filesystems, writes from other hosts or the FUSE daemon raise no events.
func eventsWork(dir string) bool {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return true // the directory may not exist yet; fsnotify.Add will say
	}
	switch uint32(st.Type) {
	case unix.NFS_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.SMB_SUPER_MAGIC,
		unix.FUSE_SUPER_MAGIC,
		unix.V9FS_MAGIC, // e.g. WSL, some VM shares
		gpfsMagic:
		return false
	}
	return true
}

// waker is what an idle follower waits for: a change in its directory, the safety
// tick (changes inotify did not report), or a timer of the caller's.
type waker struct {
	events <-chan struct{}
	tick   *time.Ticker
	// idle, in tests, is told each time the follower is about to wait, so a test
	// can step it: wait until it is idle, change the file, wake it.
	idle func()
}

// wait returns on the first of ctx done, a directory event, the tick, a or b (nil
// channels never fire).
func (w *waker) wait(ctx context.Context, a, b <-chan time.Time) {
	if w.idle != nil {
		w.idle()
	}
	select {
	case <-ctx.Done():
	case <-w.events:
	case <-w.tick.C:
	case <-a:
	case <-b:
	}
}
