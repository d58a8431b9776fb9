package tailer

import (
	"math/bits"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls a wakeup of a followed file makes (the read of the inotify
// instance, the look at the head, the read, the write to stdout, the checkpoint's
// word) are raw: made with RawSyscall, without the runtime's entersyscall. That
// entry wakes the runtime's monitor thread (sysmon) from the sleep it takes while
// the process is idle, and it then polls every 20 µs until the process is idle
// again: two or three more thread switches at every wakeup, which cost more than
// the copying (bench/compare.sh steady). One call made the usual way is enough to
// wake it, so all of them must be raw.
//
// The price: while a raw call runs, its thread keeps the scheduler's processor, and
// with one thread (memory.go) no other goroutine runs until it returns. So only
// calls that cannot sleep for long are raw: reads of regular files on local
// filesystems (what was just written is in the page cache; a read that misses it
// waits for the disk, not for a network or a FUSE daemon), a write to stdout's pipe
// that fits in the room it has (pipe.fits), the ioctl that asks for that room, and
// the checkpoint word's write on a local filesystem. Any other call is made the
// usual way.

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

// rawPwrite writes like pwrite(2).
func rawPwrite(fd int, p []byte, off int64) (int, error) {
	if bits.UintSize < 64 {
		return unix.Pwrite(fd, p, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	return rawResult(unix.RawSyscall6(unix.SYS_PWRITE64, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(off), 0, 0))
}

// rawWrite writes like write(2).
func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return rawResult(unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))))
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

// localFile reports whether file lies on a filesystem whose reads return without
// waiting for a network or another process (see remoteFS).
func localFile(file *os.File) bool {
	var st unix.Statfs_t
	rc, err := file.SyscallConn()
	if err != nil {
		return false
	}
	cerr := rc.Control(func(fd uintptr) { err = unix.Fstatfs(int(fd), &st) })
	return cerr == nil && err == nil && !remoteFS(uint32(st.Type))
}

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
