package tailer

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// safetyPoll is how often every follower looks even without an event, for changes
// inotify did not report. One timer serves the whole process, so an idle sidecar
// wakes twice a minute, not once per file every few seconds.
const safetyPoll = 30 * time.Second

// subscription is one follower's (or glob scanner's) interest in directories.
type subscription struct {
	// wake receives a value after anything changes in a subscribed directory; it
	// holds one, so wakeups that come while the follower is busy coalesce.
	wake chan struct{}
	// named is set, before wake, when names may have changed in a subscribed
	// directory (create, rename, delete, a poll, lost events), and taken by the
	// follower's next look: only then can its path name another file, so the
	// wakeups of writes, nearly all of them, need no stat of the path.
	named atomic.Bool
	// pin, if not nil, is called on the watcher's goroutine when names change in
	// the directory (create, rename, delete), before wake: the pinner opens a file
	// that took the path at once, even while the follower is blocked writing,
	// without a goroutine of its own woken by every write.
	pin func()
	// writes, when set, are the names whose writes (and attribute changes) wake:
	// a write to another file of the folder (another app's log, our own stdout
	// when it is a FIFO there) wakes no one else. nil: every write wakes.
	writes atomic.Pointer[[2]string]
	// renames, when set, are the names whose creation, removal or renaming pins
	// and wakes: the path's, and the name a file being drained has now (see
	// waker.renames). A thousand files of one folder rotated at once then cost a
	// stat each, not a thousand: the watcher pins them in turn, and fell seconds
	// behind a rotation, long enough for the next file to be rotated away unseen.
	// nil: every name pins and wakes (a link on the way, a glob's scanner).
	renames atomic.Pointer[[]string]
	// created, if not nil, is given each name created in (or moved into) a
	// subscribed directory, on the watcher's goroutine, before the wakeup; other
	// changes of names then wake s only when they are not known one by one (a
	// folder's own event, lost events, a poll), and set named. A glob's scanner
	// looks at those names, not at the whole folder each time: a thousand files
	// rotated at once made a thousand matches of a folder of thousands.
	created func(name []byte)
	// woken, if not nil, is called after each wakeup is sent: a parked follower
	// has no goroutine to receive it, and woken starts one.
	woken func()
}

// wakeUp sends s a wakeup.
func (s *subscription) wakeUp() {
	notify(s.wake)
	if s.woken != nil {
		s.woken()
	}
}

func newSubscription(pin func()) *subscription {
	s := &subscription{wake: make(chan struct{}, 1), pin: pin}
	s.named.Store(true) // the first look takes nothing for granted
	return s
}

// renamed reports whether names may have changed in the subscribed directories
// since it was last asked.
func (s *subscription) renamed() bool { return s.named.Swap(false) }

// wants reports whether a write to name (nil: not known) wakes s.
func (s *subscription) wants(name []byte) bool {
	only := s.writes.Load()
	return only == nil || name == nil || string(name) == only[0] || string(name) == only[1]
}

// concerns reports whether a change of name (nil: of the folder itself, or not
// known) pins and wakes s.
func (s *subscription) concerns(name []byte) bool {
	only := s.renames.Load()
	if only == nil || name == nil {
		return true
	}
	for _, n := range *only {
		if string(name) == n { // no copy of name
			return true
		}
	}
	return false
}

// noWrites is a writes filter that no name passes: a glob's scanner looks for
// new names only.
var noWrites = &[2]string{}

// watcher wakes followers when anything changes in their directories. One inotify
// instance serves every file: Kubernetes nodes have a per-user limit on instances
// (fs.inotify.max_user_instances, often 128) shared by every pod. Directories
// inotify cannot watch are polled, all with one timer.
type watcher struct {
	log       *slog.Logger
	in        *inotify // nil: inotify unavailable, everyone polls
	pollEvery time.Duration
	safety    time.Duration
	changed   chan struct{} // whether any directory is polled changed

	mu sync.Mutex
	// subs are each directory's subscribers. A list is never changed, only
	// replaced or appended to: events are handed out from it after the lock is
	// let go. Handed out under the lock, a thousand followers ending at once (a
	// glob's files all rotated away) queued for it behind every event, and the
	// events fell seconds behind: long enough for files to come and go unseen.
	subs map[string][]*subscription
	// broken is set when inotify failed after it was set up: every folder is
	// polled from then on.
	broken bool
	// at says, for each subscribed directory, what inotify watches for it: the
	// directory itself; its nearest existing parent while it does not exist, so a
	// folder deleted and made again is watched again as soon as it is back; or ""
	// when it is polled.
	at map[string]string
	// guards says, for each directory inotify watches itself, its parent, which
	// is watched for the directory's name: a folder deleted while a file in it is
	// held open (the drain of a deleted file) reports its own deletion only when
	// the file is closed, a settle period later; its parent reports it at once, and
	// the folder made again in its place, whose files would otherwise come and go
	// unseen meanwhile.
	guards map[string]string
	// watches counts the directories watched through each (the values of at),
	// and children the names of the folders each parent guards: an event in a
	// busy parent about another name is passed over without a look at every
	// subscribed directory.
	watches  map[string]int
	children map[string]map[string]int
	// noGuards is set once inotify's watch limit was reached: parents' watches
	// give way to folders' own (see guard).
	noGuards bool
}

// watchMode says how a watcher learns of changes.
type watchMode int

const (
	inotifyWhereItWorks watchMode = iota // stat polling only where inotify cannot be used
	pollOnly                             // --poll: never inotify
)

// newWatcher starts an inotify watcher, or a polling-only one when inotify cannot
// be used or mode says so; directories without events are polled every pollEvery.
// Run must be called to deliver events and polls.
func newWatcher(log *slog.Logger, mode watchMode, pollEvery time.Duration) *watcher {
	w := &watcher{log: log, pollEvery: pollEvery, safety: safetyPoll, changed: make(chan struct{}, 1),
		subs: map[string][]*subscription{}, at: map[string]string{}, guards: map[string]string{},
		watches: map[string]int{}, children: map[string]map[string]int{}}
	if mode == pollOnly {
		return w
	}
	in, err := newInotify()
	if err != nil {
		log.Warn("inotify unavailable, polling", "err", err)
		return w
	}
	w.in = in
	return w
}

// Run delivers events and polls until ctx is done. Events are read and handed out
// on a goroutine of their own, which waits in the runtime's poller; this one keeps
// the timer, so an event costs no timer reset, and a stream of them does not put
// off the polls of other folders.
func (w *watcher) Run(ctx context.Context) {
	if w.in != nil {
		var reading sync.WaitGroup
		reading.Go(w.readEvents)
		defer func() {
			w.in.close()
			reading.Wait()
		}()
	}
	timer := time.NewTimer(w.period())
	defer timer.Stop()
	lastSafety := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.changed:
		case now := <-timer.C:
			if now.Sub(lastSafety) >= w.safety {
				lastSafety = now
				w.rewatch()
				w.notifyAll()
			} else {
				w.notifyPolled()
			}
		}
		timer.Reset(w.period()) // since Go 1.23 a Reset timer sends nothing stale
	}
}

// period is how long to sleep: the poll interval while any directory is polled,
// the safety interval otherwise.
func (w *watcher) period() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watching("") {
		return min(w.pollEvery, w.safety)
	}
	return w.safety
}

// readEvents hands out events until the instance is closed. A read that fails
// otherwise (it should not) leaves every folder to polling.
func (w *watcher) readEvents() {
	err := w.in.read(w.event)
	if w.in.isClosed() {
		return
	}
	w.log.Error("inotify failed, polling every folder", "err", err)
	w.mu.Lock()
	w.broken = true
	for dir := range w.at {
		w.place(dir)
	}
	w.mu.Unlock()
	notify(w.changed)
}

// event handles one inotify event in dir, about name in it (nil: dir itself): a
// watched folder that went is watched again once it is back, and the subscribers
// of the folder it happened in are woken. Writes, nearly every event, take no
// allocation.
func (w *watcher) event(dir string, name []byte, mask uint32) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		// Events were dropped: the watches are checked, and everyone looks again.
		w.log.Warn("inotify queue overflowed, waking all files")
		w.rewatch()
		w.notifyAll()
		return
	}
	if mask&inotifyNames == 0 {
		if name == nil {
			dir = filepath.Dir(dir) // an event of the folder itself is one in its parent
		}
		w.notifyWrite(dir, name)
		return
	}
	if name != nil && w.aside(dir, name) {
		return
	}
	path, in := dir, filepath.Dir(dir)
	if name != nil {
		path, in = filepath.Join(dir, string(name)), dir
	}
	created := mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0
	w.mu.Lock()
	var again []string
	for d, at := range w.at {
		switch {
		case at == path:
			// The folder went (or moved): its watch goes with it. Or another took
			// its name (a link switched to a new target): it is watched instead.
			w.setAt(d, "", false)
			again = append(again, d)
			if w.in != nil && mask&unix.IN_MOVE_SELF != 0 {
				w.in.remove(at) // a moved folder keeps its watch, now elsewhere
			}
		case at != d && at != "" && created:
			again = append(again, d) // waiting for it: maybe it is back
		}
	}
	for _, d := range again {
		w.place(d)
	}
	w.mu.Unlock()
	// A subscribed folder that came back or went changed wholesale.
	w.notify(path, nil, false)
	w.notify(in, name, created)
}

// Subscribe makes s receive wakeups for changes in dir.
func (w *watcher) Subscribe(dir string, s *subscription) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Appended in place, past the end of the lists being handed out from.
	w.subs[dir] = append(w.subs[dir], s)
	if _, placed := w.at[dir]; !placed {
		w.place(dir)
	}
}

// Unsubscribe stops deliveries to s for dir.
func (w *watcher) Unsubscribe(dir string, s *subscription) {
	w.mu.Lock()
	defer w.mu.Unlock()
	subs := slices.DeleteFunc(slices.Clone(w.subs[dir]), func(c *subscription) bool { return c == s })
	if len(subs) > 0 {
		w.subs[dir] = subs
		return
	}
	delete(w.subs, dir)
	at, parent := w.at[dir], w.guards[dir]
	w.setAt(dir, "", false)
	w.unguard(dir)
	w.release(at)
	w.release(parent)
	if at == "" {
		notify(w.changed)
	}
}

// place decides how changes in dir are seen: inotify on dir, inotify on its
// nearest existing parent until it exists, or polling. Called with mu held.
func (w *watcher) place(dir string) {
	old, had := w.at[dir]
	at := ""
	if w.in != nil && !w.broken && eventsWork(dir) {
		at = w.watchNearest(dir)
	}
	w.setAt(dir, at, true)
	w.guard(dir, at == dir)
	if had && old != at {
		w.release(old)
	}
	if !had || (old == "") != (at == "") {
		notify(w.changed)
	}
}

// guard watches the parent of dir for dir's name while on (dir is watched
// itself), and stops otherwise (see guards). A parent inotify cannot watch (not
// readable, the watch limit) leaves dir as it was before guards: its folder made
// again is seen when the last file held in the old one is closed. Called with mu
// held.
func (w *watcher) guard(dir string, on bool) {
	old, parent := w.guards[dir], filepath.Dir(dir)
	w.unguard(dir)
	// Added again even when it was: the parent may have been made again too.
	if on && !w.noGuards && parent != dir && (w.watching(parent) || w.in.add(parent, guardMask) == nil) {
		w.guards[dir] = parent
		names := w.children[parent]
		if names == nil {
			names = map[string]int{}
			w.children[parent] = names
		}
		names[filepath.Base(dir)]++
	}
	if old != w.guards[dir] {
		w.release(old)
	}
}

// unguard forgets the guard of dir; the caller releases its watch. Called with
// mu held.
func (w *watcher) unguard(dir string) {
	parent, ok := w.guards[dir]
	if !ok {
		return
	}
	delete(w.guards, dir)
	names, name := w.children[parent], filepath.Base(dir)
	if names[name]--; names[name] == 0 {
		delete(names, name)
	}
	if len(names) == 0 {
		delete(w.children, parent)
	}
}

// dropGuards stops every parent's watch that is not needed otherwise, and
// guards no more, once inotify's watch limit is reached: a folder's own watch
// matters more. It reports whether any went. Called with mu held.
func (w *watcher) dropGuards() bool {
	if w.noGuards {
		return false
	}
	w.noGuards = true
	parents := slices.Collect(maps.Values(w.guards))
	for dir := range w.guards {
		w.unguard(dir)
	}
	for _, p := range parents {
		w.release(p)
	}
	w.log.Warn("inotify watch limit reached: folders' parents are no longer watched, a folder deleted and made again is seen once the last file held in the old one is closed")
	return len(parents) > 0
}

// setAt records that dir is watched through at (see at); with placed false, that
// dir is not placed at all. Called with mu held.
func (w *watcher) setAt(dir, at string, placed bool) {
	if old, had := w.at[dir]; had {
		if w.watches[old]--; w.watches[old] == 0 {
			delete(w.watches, old)
		}
	}
	delete(w.at, dir)
	if placed {
		w.at[dir] = at
		w.watches[at]++
	}
}

// aside reports whether an event in dir about name concerns no one: dir is
// watched only as the parent of subscribed folders (see guards), and name is
// not one of theirs. A parent where files are made and deleted by the thousand
// then costs a lookup per event.
func (w *watcher) aside(dir string, name []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	names, ok := w.children[dir]
	return ok && names[string(name)] == 0 && !w.watching(dir) && w.subs[dir] == nil
}

// rewatch makes the watches match the folders again, where events may have been
// lost (the queue overflowed, or a kernel's bug): a watched folder deleted, or
// deleted and made again, whose events went with the rest would stay unwatched,
// its files seen only at each safety look. Each watched folder is added again:
// the kernel gives the same watch for the same folder, a new one for a folder
// made again. A folder gone, or one watched for a subscribed folder that now
// exists, is placed anew.
func (w *watcher) rewatch() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.in == nil || w.broken {
		return
	}
	for dir, at := range w.at {
		if at != "" && (existingAncestor(dir) != at || w.in.add(at, inotifyMask) != nil) {
			w.place(dir)
		}
	}
}

// watchNearest watches dir, or its nearest existing parent while it does not
// exist, and returns which it watches ("": neither can be). A folder made between
// the look for it and the watch of its parent raises no event there, and would be
// polled only at the safety look from then on: so the look is made again once the
// watch is on, until the two agree. Called with mu held.
func (w *watcher) watchNearest(dir string) string {
	at := existingAncestor(dir)
	for {
		if !w.watching(at) {
			err := w.in.add(at, inotifyMask)
			if errors.Is(err, unix.ENOSPC) && w.dropGuards() {
				continue
			}
			if err != nil {
				// ENOSPC here is the watch limit (fs.inotify.max_user_watches).
				w.log.Warn("cannot watch directory, polling", "dir", at, "err", err)
				return ""
			}
		}
		now := existingAncestor(dir)
		if now == at {
			return at
		}
		w.release(at) // added just now, for nothing
		at = now
	}
}

// watching reports whether some subscribed directory is watched through x (or,
// for x "", polled).
func (w *watcher) watching(x string) bool { return w.watches[x] > 0 }

// guarding reports whether x is watched as the parent of a subscribed directory
// (see guards).
func (w *watcher) guarding(x string) bool { return len(w.children[x]) > 0 }

// release stops watching x when no subscribed directory needs it, or watches it
// for names only when it is needed only as a parent (see guards).
func (w *watcher) release(x string) {
	switch {
	case x == "" || w.watching(x):
	case w.guarding(x):
		_ = w.in.add(x, guardMask) // fails only when x went: its folders' own watches tell
	default:
		w.in.remove(x)
	}
}

// existingAncestor returns dir if it exists, else its nearest existing parent.
func existingAncestor(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// notify wakes the subscribers of dir concerned by the change of name in it (nil:
// all of them), pinning first; created says the name came into dir.
func (w *watcher) notify(dir string, name []byte, created bool) {
	for _, s := range w.subscribed(dir) {
		switch {
		case s.created != nil && name != nil:
			if created {
				s.created(name)
				s.wakeUp()
			}
		case s.concerns(name):
			wake(s)
		}
	}
}

// notifyWrite wakes the subscribers of dir that want the write to name in it.
func (w *watcher) notifyWrite(dir string, name []byte) {
	for _, s := range w.subscribed(dir) {
		if s.wants(name) {
			s.wakeUp()
		}
	}
}

// subscribed returns the subscribers of dir, a list no one changes (see subs).
func (w *watcher) subscribed(dir string) []*subscription {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.subs[dir]
}

// notifyPolled wakes the subscribers of the polled directories.
func (w *watcher) notifyPolled() {
	wakeAll(w.subscribers(func(at string) bool { return at == "" }))
}

// notifyAll wakes every subscriber: the safety poll, or events were lost.
func (w *watcher) notifyAll() { wakeAll(w.subscribers(func(string) bool { return true })) }

// subscribers returns the subscriptions of the directories whose watch (see at)
// passes keep.
func (w *watcher) subscribers(keep func(at string) bool) []*subscription {
	w.mu.Lock()
	defer w.mu.Unlock()
	var subs []*subscription
	for dir, at := range w.at {
		if keep(at) {
			subs = append(subs, w.subs[dir]...)
		}
	}
	return subs
}

// wakeAll pins and wakes subs, outside the lock: a pin opens files and may
// subscribe to a link target's folder.
func wakeAll(subs []*subscription) {
	for _, s := range subs {
		wake(s)
	}
}

// wake tells s that names may have changed: it pins, then wakes.
func wake(s *subscription) {
	s.named.Store(true)
	if s.pin != nil {
		s.pin()
	}
	s.wakeUp()
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
// filesystems (remoteFS), writes from other hosts or the FUSE daemon raise no
// events; on overlayfs, writes to a file still in a lower layer (or made through
// another mount of that layer) raise none either.
func eventsWork(dir string) bool {
	var st unix.Statfs_t
	if unix.Statfs(existingAncestor(dir), &st) != nil {
		return true
	}
	return !remoteFS(uint32(st.Type)) && uint32(st.Type) != unix.OVERLAYFS_SUPER_MAGIC
}

// remoteFS reports whether the filesystem of statfs type t is served over a network
// or by another process: its reads may wait on them.
func remoteFS(t uint32) bool {
	switch t {
	case unix.NFS_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.SMB_SUPER_MAGIC,
		unix.FUSE_SUPER_MAGIC,
		unix.V9FS_MAGIC, // e.g. WSL, some VM shares
		gpfsMagic:
		return true
	}
	return false
}

// waker is what an idle follower waits for: a change in the folders it watches
// (the path's, and its link target's when that is elsewhere), or a timer of the
// caller's.
type waker struct {
	w    *watcher
	sub  *subscription
	dirs []string
	// idle, in tests, is told each time the follower is about to wait, so a test
	// can step it: wait until it is idle, change the file, wake it.
	idle func()
	// lr gives its read buffer back while the follower waits: idle files hold none.
	lr *LineReader
	// names are the base names of the path and of its link target: the writes
	// that concern the file being read (see steady). Replaced, never changed: the
	// watcher reads them.
	names *[2]string
	// renames is the path's name when no symbolic link is involved in it (the
	// changes of names that concern it, see subscription.renames); nil when one
	// is: a link anywhere on the way (a chain, a folder inside the target) can
	// change what the path names.
	renames *[]string
	// linked says the file being read has other hard links, as of the last look
	// (see steady).
	linked bool
	// parked is set while the follower is parked (see park); whoever takes it
	// goes on with the follower.
	parked atomic.Bool
}

// watch subscribes to the folders of path and, when it is a symbolic link, of its
// target: rotation of the target happens there, and so do its writes' events. It
// reports whether it subscribed to other folders than before: what happened in
// them before is not known.
func (k *waker) watch(path string) bool {
	dirs := []string{filepath.Dir(path)}
	names := [2]string{filepath.Base(path), filepath.Base(path)}
	links := linkParents(dirs[0])
	link, err := isLink(path)
	plain := len(links) == 0 && (err == nil && !link || errors.Is(err, fs.ErrNotExist))
	// With no link on the way, the path is its own target: the resolution's
	// stats would only be garbage, left between the long-lived objects of each
	// follower started (1.3 MiB of heap spans kept for 1000 files). A ".." after a
	// link is the link target's parent: resolved, not cleaned away.
	if !plain || climbs(path) {
		if target, err := filepath.EvalSymlinks(path); err == nil || dangling(path, &target) {
			names[1] = filepath.Base(target)
			if filepath.Dir(target) != dirs[0] {
				dirs = append(dirs, filepath.Dir(target))
			}
		}
	}
	for _, d := range links {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	if k.names == nil || *k.names != names {
		k.names = &names
	}
	if !plain {
		k.renames = nil
	} else if k.renames == nil || (*k.renames)[0] != names[0] {
		k.renames = &[]string{names[0]}
	}
	k.sub.renames.Store(k.renames)
	if slices.Equal(dirs, k.dirs) {
		return false
	}
	k.stop()
	for _, d := range dirs {
		k.w.Subscribe(d, k.sub)
	}
	k.dirs = dirs
	return true
}

// dangling reports whether path is a symbolic link to a file not there (yet),
// and sets target to where that file will be, through the links among its
// folders: the folder it appears in must be watched, or only the safety poll
// would see it come (a folder link switched to a release without the file yet).
func dangling(path string, target *string) bool {
	to, err := os.Readlink(path)
	if err != nil {
		return false
	}
	if !filepath.IsAbs(to) {
		to = filepath.Join(filepath.Dir(path), to)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(to))
	if err != nil {
		return false
	}
	*target = filepath.Join(dir, filepath.Base(to))
	return true
}

// linkParents returns the folders that hold a symbolic link among the folders of
// dir, dir included: switching such a link ("current" to a new release) changes
// what the path names, and raises its event in the folder holding the link, not in
// the one it pointed to.
func linkParents(dir string) []string {
	var parents []string
	for d := dir; ; {
		parent := filepath.Dir(d)
		if parent == d {
			return parents
		}
		if link, _ := isLink(d); link {
			parents = append(parents, parent)
		}
		d = parent
	}
}

func (k *waker) stop() {
	for _, d := range k.dirs {
		k.w.Unsubscribe(d, k.sub)
	}
	k.dirs = nil
}

// steady makes only writes to the file being read (under the path's name or its
// link target's) wake the follower, with the changes of the path's names: while
// it follows a file that is there. A file with other hard links may be written
// under another name: every write and change of names in the folder wakes its
// follower. (A link made after the last look is seen at the next one, the safety
// look at the latest: late, never lost.)
func (k *waker) steady() {
	if k.linked {
		k.between()
		k.sub.renames.Store(nil)
		return
	}
	k.sub.writes.Store(k.names)
	k.sub.renames.Store(k.renames)
}

// between makes every write wake the follower, with the changes of the path's
// names: between a drain and the first look at the next file, which steady
// narrows.
func (k *waker) between() {
	k.sub.writes.Store(nil)
	k.sub.renames.Store(k.renames)
}

// draining makes the writes to file, rotated away, wake the follower while it
// drains it, and its renames too: under the name it has now, which only the
// kernel knows (a rotation renamed it within the folder), asked again at each
// look. Every write in the folder woke each draining follower before: a thousand
// files rotated at once made that a million wakeups, and the events of the next
// rotation came too late. A file deleted, or moved to another folder, raises no
// event in ours (nor one whose name was taken while it lives on under another
// link): the drain's timer reads it.
func (k *waker) draining(file *os.File) {
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(file.Fd())))
	if err != nil || strings.HasSuffix(link, " (deleted)") {
		k.sub.writes.Store(noWrites)
		return
	}
	name := filepath.Base(link)
	if w := k.sub.writes.Load(); w == nil || w[0] != name {
		k.sub.writes.Store(&[2]string{name, name})
		if k.renames != nil {
			k.sub.renames.Store(&[]string{(*k.renames)[0], name})
		}
	}
}

// park gives up the follower's goroutine until the next wakeup, where wait would
// wait for one alone: a goroutine blocked in a wait keeps its stack (4 KiB or
// more), which for a thousand idle files is most of the sidecar's memory. It
// reports whether the follower parked: the caller's goroutine must then end
// without touching it. false means a wakeup came meanwhile: go on here.
//
// The follower marks itself parked and then looks for a wakeup; a waker sends
// its wakeup and then takes the mark (unpark). Whichever order they run in, one
// sees the other, and the mark is taken once: one goroutine goes on.
func (k *waker) park(ctx context.Context) bool {
	if k.idle != nil {
		k.idle()
	}
	k.lr.Release()
	if ctx.Err() != nil {
		return false // its end was sent as a wakeup, maybe taken already: go on to drain
	}
	k.parked.Store(true)
	select {
	case <-k.sub.wake:
		return !k.parked.CompareAndSwap(true, false)
	default:
		return true
	}
}

// unpark takes the mark of a parked follower and reports whether it did: the
// caller then starts the goroutine that goes on.
func (k *waker) unpark() bool { return k.parked.CompareAndSwap(true, false) }

// wait returns on the first of ctx done, a wakeup, a or b (nil channels never fire).
// The end of ctx sends a wakeup (see follower.start), so a wait for one alone (a
// path not there yet) is a receive: a select costs several times more.
func (k *waker) wait(ctx context.Context, a, b <-chan time.Time) {
	if k.idle != nil {
		k.idle()
	}
	k.lr.Release()
	if a == nil && b == nil {
		if ctx.Err() == nil {
			<-k.sub.wake
		}
		return
	}
	select {
	case <-ctx.Done():
	case <-k.sub.wake:
	case <-a:
	case <-b:
	}
}

// climbs reports whether path has a ".." element.
func climbs(path string) bool {
	for e := range strings.SplitSeq(path, string(filepath.Separator)) {
		if e == ".." {
			return true
		}
	}
	return false
}

// isLink reports whether path is a symbolic link, as os.Lstat would, without the
// FileInfo it allocates.
func isLink(path string) (bool, error) {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	for err == unix.EINTR {
		err = unix.Lstat(path, &st)
	}
	if err != nil {
		return false, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	return st.Mode&unix.S_IFMT == unix.S_IFLNK, nil
}
