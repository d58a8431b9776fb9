package tailer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sidetail/sidetail/internal/fileid"
)

// headLen bytes at the start identify a file, together with device and inode, so a
// reused inode is not mistaken for a file already read.
const headLen = 64

// head is the first bytes of a file as we saw them: the file is still the one we
// knew if its head now starts with them (it may have grown from fewer).
type head []byte

func readHead(file *os.File) head { return fileid.ReadAt(file, 0, headLen) }

// of reports whether now, a file's current head, is still this one.
func (h head) of(now head) bool { return bytes.HasPrefix(now, h) }

// in reports whether file still starts with h. A hole punched over the start (what
// rotation frees on tmpfs) is no change: only the bytes of h after it must match.
func (h head) in(file *openFile) bool {
	var buf [headLen]byte // on the stack: a look at every wakeup allocates nothing
	n, _ := file.readAt(buf[:len(h)], 0)
	now := head(buf[:n])
	if h.of(now) {
		return true
	}
	d := fileid.DataStart(file.File, 0)
	if d >= int64(len(h)) {
		return d > 0 // all of it punched, unless the file is simply shorter
	}
	return d > 0 && int64(len(now)) >= int64(len(h)) && bytes.Equal(now[d:len(h)], h[d:])
}

// grow extends a head shorter than headLen with p, the bytes read at off: a file
// opened nearly empty gets the head it is known by as it fills.
func (o *openFile) grow(off int64, p []byte) {
	n := int64(len(o.head))
	if n >= headLen || off > n || off+int64(len(p)) <= n {
		return
	}
	o.head = append(o.head, p[n-off:min(headLen, off+int64(len(p)))-off]...)
}

// openFile is a file we hold open and have claimed in the registry.
type openFile struct {
	*os.File
	info  fs.FileInfo
	key   fileid.Key
	head  head
	start int64 // where reading begins: 0, a checkpoint's offset, or where we left it
	// removed is how many bytes rotation has cut from the front of the file, in
	// all: offsets saved before a cut are that much too high after it.
	removed int64
	// replaced is when another file took the path: the settle period runs from
	// then, so a file that was replaced long ago is not waited for again. The
	// pinner's lock guards it.
	replaced time.Time
	// raw says reads are raw system calls (rawcall.go): a regular file on a
	// filesystem that keeps it in the page cache.
	raw bool
}

// readAt reads like pread(2) at off: a short read is the file's end.
func (o *openFile) readAt(p []byte, off int64) (int, error) {
	fd := int(o.Fd())
	if o.raw {
		return retryEINTR(func() (int, error) { return rawPread(fd, p, off) })
	}
	return retryEINTR(func() (int, error) { return unix.Pread(fd, p, off) })
}

// readTwo reads into a, then b (neither empty), from off, in one system call, and
// returns how many bytes it read in all: no change to the file falls between them.
func (o *openFile) readTwo(a, b []byte, off int64) (int, error) {
	fd := int(o.Fd())
	return retryEINTR(func() (int, error) { return preadTwo(fd, a, b, off, o.raw) })
}

var errBusy = errors.New("file is being read by another follower")

// registry knows which files are being read and where reading stopped for files that
// were let go, so a rotated file found again under its new name (app.log.1 matching
// the same glob) continues where it was left instead of being read twice.
type registry struct {
	mu     sync.Mutex
	active map[fileid.Key]bool
	left   map[fileid.Key]leftAt
}

type leftAt struct {
	head head
	off  int64
}

// maxLeft bounds the memory of files let go; losing an entry only means a file
// seen again under another name is read from its head.
const maxLeft = 1024

func newRegistry() *registry {
	return &registry{active: map[fileid.Key]bool{}, left: map[fileid.Key]leftAt{}}
}

// open opens the file at name (a followed path, or a sibling it was rotated to)
// and claims it. It returns errBusy while another follower reads that file.
func (r *registry) open(name string) (*openFile, error) {
	file, err := openNoAtime(name)
	if err != nil {
		return nil, err
	}
	info, err := file.Stat()
	if err == nil && info.IsDir() {
		err = fmt.Errorf("%s is a directory", name)
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	o := &openFile{File: file, info: info, key: fileid.Of(file, info), head: readHead(file),
		raw: info.Mode().IsRegular() && pageCached(file)}
	start, ok := r.claim(o.key, o.head, info.Size())
	if !ok {
		file.Close()
		return nil, errBusy
	}
	o.start = start
	return o, nil
}

// openNoAtime opens name for reading without updating its access time, where we
// may (the file is ours, or we have CAP_FOWNER): with relatime, a file appended to
// all the time has its access time updated at every read, a write of its inode at
// every wakeup (touch_atime, 3 % of following a live file's CPU).
func openNoAtime(name string) (*os.File, error) {
	file, err := os.OpenFile(name, os.O_RDONLY|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		return os.Open(name)
	}
	return file, err
}

// claim marks a file as being read and returns where to start. ok is false while
// another follower reads it.
func (r *registry) claim(key fileid.Key, h head, size int64) (start int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active[key] {
		return 0, false
	}
	r.active[key] = true
	if l, found := r.left[key]; found {
		delete(r.left, key)
		// The inode may have been reused by a new file: trust it only if the head
		// bytes we saw are still there and nothing was cut from it.
		if l.off <= size && l.head.of(h) {
			return l.off, true
		}
	}
	return 0, true
}

// close records where reading of o stopped and closes it. A deleted file cannot be
// found again, so it is forgotten: its inode number may go to a new file.
func (r *registry) close(o *openFile, off int64) {
	deleted := false
	if info, err := o.Stat(); err == nil {
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			deleted = st.Nlink == 0
		}
	}
	defer o.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.active, o.key)
	if deleted {
		return
	}
	if len(r.left) >= maxLeft {
		for k := range r.left {
			delete(r.left, k)
			break
		}
	}
	r.left[o.key] = leftAt{head: o.head, off: off}
}
