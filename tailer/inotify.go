package tailer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inotify is one inotify instance watching folders, read here rather than through
// fsnotify for what reading costs: fsnotify reads with os.File.Read, a system call
// made through the runtime's syscall entry, and the first such call after the
// process was idle wakes the runtime's monitor thread (sysmon) from its sleep, two
// more thread switches at every wakeup of a followed file; its events then reach
// the watcher through a channel, one more goroutine switch. Here the read is a raw
// system call inside the poller's RawConn.Read, which waits in the runtime's poller
// as os.File.Read does, and each event is handed to the watcher on the reading
// goroutine. (bench/compare.sh steady; see README, Performance.)
type inotify struct {
	file *os.File // the instance, non-blocking, in the runtime's poller
	rc   syscall.RawConn
	fd   int
	buf  []byte
	// closed is set by close: a read's error is then no failure.
	closed atomic.Bool
	// readRaw is readOnce as a func, made once: a method value made at each read
	// would be an allocation, as would the results of a closure over locals.
	readRaw func(fd uintptr) bool
	handle  func(dir string, name []byte, mask uint32) // read's, for readOnce
	errno   syscall.Errno

	mu sync.Mutex
	// dirs holds, for each watch, the names it was added under: adding a folder
	// already watched under another name (a link, a bind mount) returns its watch.
	dirs map[int32][]string
	wds  map[string]int32
	// masks holds the events each name is watched for, and set the events each
	// watch reports as last set: a folder watched as another's parent, then for
	// itself, then as a parent again, must go back to names only, or every write
	// in a folder sidetail does not read would wake it.
	masks map[string]uint32
	set   map[int32]uint32
}

// inotifyMask is what a watched folder reports: names that change (a file made,
// renamed or deleted, the folder itself deleted or moved), writes and attribute
// changes (a file that becomes readable; a hard link removed).
const inotifyMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// guardMask is what a folder's parent reports for it (see watcher.guards): names
// that change, not writes, which may be many in a folder sidetail does not read.
const guardMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// inotifyNames are the events after which a path may name another file, or none.
const inotifyNames = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_IGNORED | unix.IN_UNMOUNT

// inotifyBuf holds a few dozen events of the longest names, hundreds of usual ones.
const inotifyBuf = 16 << 10

func newInotify() (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	in, err := inotifyOn(os.NewFile(uintptr(fd), "inotify"))
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	return in, nil
}

// inotifyOn reads the instance file, non-blocking (tests give a pipe).
func inotifyOn(file *os.File) (*inotify, error) {
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	in := &inotify{file: file, rc: rc, buf: make([]byte, inotifyBuf), dirs: map[int32][]string{}, wds: map[string]int32{},
		masks: map[string]uint32{}, set: map[int32]uint32{}}
	rc.Control(func(fd uintptr) { in.fd = int(fd) })
	in.readRaw = in.readOnce
	return in, nil
}

// add watches dir for the events of mask, instead of those it was watched for
// under that name before; a watch that serves other names too (links, bind
// mounts) reports what each of them wants.
func (in *inotify) add(dir string, mask uint32) error {
	// Added to what the watch reports, so that another name's events do not
	// stop for a moment; narrowed after, when that reports more than wanted.
	wd, err := unix.InotifyAddWatch(in.fd, dir, mask|unix.IN_MASK_ADD)
	if err != nil {
		return fmt.Errorf("inotify_add_watch %s: %w", dir, err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if old, ok := in.wds[dir]; ok && old != int32(wd) && in.forget(dir, old) {
		// Another folder under that name now (made again, or a link switched): the
		// old one's watch goes (EINVAL: the kernel dropped it already).
		_, _ = unix.InotifyRmWatch(in.fd, uint32(old))
	}
	if _, ok := in.wds[dir]; !ok {
		in.dirs[int32(wd)] = append(in.dirs[int32(wd)], dir)
	}
	in.wds[dir] = int32(wd)
	in.narrow(dir, int32(wd), mask)
	return nil
}

// narrow records that name dir of watch wd wants the events of mask, and sets
// the watch to report what its names want, when it reports more: the add that
// called it added mask to what it reported. Called with mu held.
func (in *inotify) narrow(dir string, wd int32, mask uint32) {
	in.masks[dir] = mask
	want := in.wanted(wd)
	if in.set[wd]|mask == want {
		in.set[wd] = want
		return
	}
	again, err := unix.InotifyAddWatch(in.fd, dir, want)
	switch {
	case err != nil: // dir went meanwhile: its watch went with it
	case int32(again) != wd:
		// dir names another folder since the add (the watcher places a dir whose
		// folder changed on the event that raises): that one reports what its own
		// names want, or goes when it has none.
		if other := in.wanted(int32(again)); other != 0 {
			_, _ = unix.InotifyAddWatch(in.fd, dir, other)
		} else {
			_, _ = unix.InotifyRmWatch(in.fd, uint32(again))
		}
	default:
		in.set[wd] = want
	}
}

// wanted returns the events the names of watch wd want. Called with mu held.
func (in *inotify) wanted(wd int32) uint32 {
	var want uint32
	for _, d := range in.dirs[wd] {
		want |= in.masks[d]
	}
	return want
}

// remove stops watching dir; the watch goes when no other name holds it. A folder
// already gone took its watch with it.
func (in *inotify) remove(dir string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	wd, ok := in.wds[dir]
	if !ok {
		return
	}
	if in.forget(dir, wd) {
		_, _ = unix.InotifyRmWatch(in.fd, uint32(wd)) // EINVAL: the kernel dropped it already
	}
}

// forget drops the name dir of watch wd and reports whether that was its last.
// Called with mu held. The names are copied, never changed in place: read hands
// them out without a copy.
func (in *inotify) forget(dir string, wd int32) bool {
	delete(in.wds, dir)
	delete(in.masks, dir)
	var names []string
	for _, d := range in.dirs[wd] {
		if d != dir {
			names = append(names, d)
		}
	}
	if len(names) > 0 {
		in.dirs[wd] = names
		return false
	}
	delete(in.dirs, wd)
	delete(in.set, wd)
	return true
}

// close ends the instance: a read waiting in the poller returns an error, and
// isClosed tells it from a failure.
func (in *inotify) close() error {
	in.closed.Store(true)
	return in.file.Close()
}

func (in *inotify) isClosed() bool { return in.closed.Load() }

// read waits for events and hands each to handle, with the folder it happened in
// (each name the folder was added under) and the name in it (nil: the folder
// itself, or mask IN_Q_OVERFLOW: events were lost). It returns only errors: when
// the instance is closed or fails.
//
// Events are handled inside one RawConn.Read, which then waits in the poller
// again: a new Read would forget a readiness the poller saw before it began, so it
// would have to read before waiting, a read that finds nothing after nearly every
// batch (one system call in six while a file streams). The poller is
// edge-triggered: it is told of events that come after a read, not of those a
// read left, so a read that may have left some (its buffer had no room for one
// more) is followed by another before the wait.
func (in *inotify) read(handle func(dir string, name []byte, mask uint32)) error {
	in.handle = handle
	if err := in.rc.Read(in.readRaw); err != nil {
		return fmt.Errorf("read inotify: %w", err)
	}
	if in.errno != 0 {
		return fmt.Errorf("read inotify: %w", in.errno)
	}
	return errors.New("read inotify: end of file")
}

// maxEvent is the largest event the kernel hands out: a header and a name.
const maxEvent = unix.SizeofInotifyEvent + unix.NAME_MAX + 1

// readOnce reads the instance, fd, into buf and hands out the events it read, until
// the kernel holds none, for RawConn.Read: false waits in the poller; true, a
// failure (errno) or the end of the file, ends the read.
func (in *inotify) readOnce(fd uintptr) bool {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&in.buf[0])), uintptr(len(in.buf)))
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return false
		case e != 0 || r == 0:
			in.errno = e
			return true
		}
		in.dispatch(in.buf[:r])
		if len(in.buf)-int(r) >= maxEvent {
			return false // any event left would have fit: there was none
		}
	}
}

// dispatch hands each event in b to the handler.
func (in *inotify) dispatch(b []byte) {
	eachEvent(b, func(wd int32, mask uint32, name []byte) {
		if mask&unix.IN_Q_OVERFLOW != 0 {
			in.handle("", nil, mask)
			return
		}
		for _, dir := range in.watched(wd, mask) {
			in.handle(dir, name, mask)
		}
	})
}

// watched returns the names of watch wd, which the kernel ends after IN_IGNORED
// (its folder deleted, or unmounted): it is forgotten then.
func (in *inotify) watched(wd int32, mask uint32) []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	names := in.dirs[wd]
	if mask&unix.IN_IGNORED != 0 {
		delete(in.dirs, wd)
		delete(in.set, wd)
		for _, d := range names {
			if in.wds[d] == wd {
				delete(in.wds, d)
				delete(in.masks, d)
			}
		}
	}
	return names
}

// eachEvent calls f for each whole event in b, as read from an inotify instance:
// its watch, mask and name without the padding (nil when it has none). What does
// not hold a whole event is left.
func eachEvent(b []byte, f func(wd int32, mask uint32, name []byte)) {
	for len(b) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(b[0:]))
		mask := binary.NativeEndian.Uint32(b[4:])
		size := binary.NativeEndian.Uint32(b[12:])
		b = b[unix.SizeofInotifyEvent:]
		if uint64(size) > uint64(len(b)) {
			return
		}
		name := b[:size]
		b = b[size:]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		if len(name) == 0 {
			name = nil
		}
		f(wd, mask, name)
	}
}
