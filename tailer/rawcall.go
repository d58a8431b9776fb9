package tailer

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls a wakeup of a followed file makes (the read of the inotify
// instance, the look at the head, the read, the write to stdout, the checkpoint's
// offset) are raw: made with RawSyscall, without the runtime's entersyscall. That
// entry wakes the runtime's monitor thread (sysmon) from the sleep it takes while
// the process is idle, and it then polls every 20 µs until the process is idle
// again: two or three more thread switches at every wakeup, which cost more than
// the copying (bench/compare.sh steady). One call made the usual way is enough to
// wake it, so all of them must be raw.
//
// The price: while a raw call runs, its thread keeps the scheduler's processor, and
// with one thread (memory.go) no other goroutine runs until it returns: not the
// signal handler's, not a timer's, not the probes'. So only calls that cannot sleep
// for long are raw:
//   - reads of regular files on the filesystems that keep them in the page cache
//     (pageCached): what was just written is there, and a read that misses it
//     waits for the disk, not for a network, a FUSE daemon or a kernel producer;
//   - writes to stdout's pipe that cannot sleep (quickWriter): the kernel writes
//     what fits (EAGAIN when nothing does), so a pipe fuller than pipe.fits
//     counted (another writer, a packet-mode pipe) cannot hold the process; what
//     is left goes the usual way (Output.sendCareful), which sleeps outside the
//     scheduler's hold;
//   - the ioctl that asks for the pipe's room, and the checkpoint offset's write on
//     such a filesystem.
// Any other call is made the usual way.

// rawPread reads like pread(2).
func rawPread(fd int, p []byte, off int64) (int, error) {
	if bits.UintSize < 64 {
		return unix.Pread(fd, p, off) // where the offset goes differs by architecture
	}
	if len(p) == 0 {
		return 0, nil
	}
	return rawResult(unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(off), 0, 0))
}

// preadTwo reads into a, then b (neither empty), from off, in one preadv call, a
// raw one if raw is set. (unix.Preadv would move a, a buffer on the caller's stack,
// to the heap.)
func preadTwo(fd int, a, b []byte, off int64, raw bool) (int, error) {
	iov := [2]unix.Iovec{{Base: &a[0]}, {Base: &b[0]}}
	iov[0].SetLen(len(a))
	iov[1].SetLen(len(b))
	lo, hi := offsetWords(off)
	if raw {
		return rawResult(unix.RawSyscall6(unix.SYS_PREADV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), 2, lo, hi, 0))
	}
	return rawResult(unix.Syscall6(unix.SYS_PREADV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), 2, lo, hi, 0))
}

// pwriteTwo writes a (not empty), then b, at off, in one pwritev call, a raw one
// if raw is set.
func pwriteTwo(fd int, a, b []byte, off int64, raw bool) (int, error) {
	iov := [2]unix.Iovec{{Base: &a[0]}}
	iov[0].SetLen(len(a))
	n := 1
	if len(b) > 0 {
		iov[1].Base = &b[0]
		iov[1].SetLen(len(b))
		n = 2
	}
	lo, hi := offsetWords(off)
	if raw {
		return rawResult(unix.RawSyscall6(unix.SYS_PWRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n), lo, hi, 0))
	}
	return rawResult(unix.Syscall6(unix.SYS_PWRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n), lo, hi, 0))
}

// quickWriter writes to a pipe with raw system calls that never sleep: where the
// pipe has less room than a write needs, the kernel writes what fits, or fails
// with EAGAIN when nothing does. It uses stdout's own descriptor with RWF_NOWAIT
// where the kernel takes that (pipe(2)'s pipes on recent kernels, what container
// runtimes hand a container), else a descriptor of its own for the same pipe,
// opened non-blocking (named pipes, older kernels; opening the pipe again needs
// the permission to). Where neither works it writes nothing (errNoQuickWrite).
type quickWriter struct {
	fd     int // stdout's descriptor
	own    int // our non-blocking descriptor for the pipe, -1 while there is none; open as long as we run
	nowait bool
}

var errNoQuickWrite = errors.New("no write that cannot sleep")

func newQuickWriter(fd int) *quickWriter { return &quickWriter{fd: fd, own: -1, nowait: true} }

// write writes what of p fits in the pipe now: EAGAIN when nothing does,
// errNoQuickWrite when neither way is open to it.
func (q *quickWriter) write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if q.nowait {
		iov := unix.Iovec{Base: &p[0]}
		iov.SetLen(len(p))
		lo, hi := offsetWords(-1) // no offset: a pipe has none
		n, err := rawResult(unix.RawSyscall6(unix.SYS_PWRITEV2, uintptr(q.fd), uintptr(unsafe.Pointer(&iov)), 1, lo, hi, unix.RWF_NOWAIT))
		if !nowaitRefused(err) {
			return n, err
		}
		q.nowait = false
		q.own = openNonblocking(q.fd)
	}
	if q.own < 0 {
		return 0, errNoQuickWrite
	}
	return rawResult(unix.RawSyscall(unix.SYS_WRITE, uintptr(q.own), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))))
}

// works reports whether q may write: false once neither way is open to it.
func (q *quickWriter) works() bool { return q.nowait || q.own >= 0 }

// nowaitRefused reports whether err says the kernel does not take RWF_NOWAIT
// writes to this pipe (a named pipe: EOPNOTSUPP), or pwritev2 at all, or a seccomp
// filter refuses it: nothing was written, and no later write will fare better.
func nowaitRefused(err error) bool {
	return err == unix.EOPNOTSUPP || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EPERM
}

// openNonblocking opens the pipe of descriptor fd again, for writing, non-blocking:
// a description of our own, so the flag does not reach the processes that share
// fd's. It returns the new descriptor, or -1.
func openNonblocking(fd int) int {
	own, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Fstat(own, &b) != nil || a.Dev != b.Dev || a.Ino != b.Ino {
		unix.Close(own)
		return -1
	}
	return own
}

// rawQueued returns the bytes queued in the pipe fd (FIONREAD).
func rawQueued(fd int) (int, error) {
	var n int32
	_, err := rawResult(unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCINQ, uintptr(unsafe.Pointer(&n))))
	return int(n), err
}

// rawResult is a system call's result as Go returns one: a count or an error.
func rawResult(r, _ uintptr, errno unix.Errno) (int, error) {
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// offsetWords splits a file offset in the two words preadv takes, low then high,
// whatever the architecture: on 64-bit systems the first holds it whole.
func offsetWords(off int64) (lo, hi uintptr) {
	return uintptr(off), uintptr(uint64(off) >> (bits.UintSize - 1) >> 1)
}

// pageCached reports whether file lies on a filesystem that serves reads of its
// regular files from the page cache, so a read returns without waiting for a
// network, another process or a kernel producer. The list is of those a pod's
// volumes use; any other (network, FUSE, procfs, tracefs ...) is read the usual way.
func pageCached(file *os.File) bool {
	var st unix.Statfs_t
	rc, err := file.SyscallConn()
	if err != nil {
		return false
	}
	cerr := rc.Control(func(fd uintptr) { err = unix.Fstatfs(int(fd), &st) })
	if cerr != nil || err != nil {
		return false
	}
	switch uint32(st.Type) {
	case unix.EXT4_SUPER_MAGIC, // and ext2, ext3
		unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.F2FS_SUPER_MAGIC,
		unix.BCACHEFS_SUPER_MAGIC, zfsMagic,
		unix.TMPFS_MAGIC, unix.RAMFS_MAGIC, // emptyDir with medium: Memory
		unix.OVERLAYFS_SUPER_MAGIC: // a container's own filesystem
		return true
	}
	return false
}

// zfsMagic is OpenZFS's statfs type, which x/sys/unix does not name.
const zfsMagic = 0x2fc12fc1

// retryEINTR makes a read system call again while a signal interrupts it, as os
// does for its own reads, and reports no count with an error.
func retryEINTR(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}
