// Command floor follows one file the least a Go program can: at each inotify event
// in the file's folder it reads what was appended and writes it to stdout, with the
// raw system calls sidetail makes (no truncation or rotation check, no lines, one
// thread). bench/compare.sh steady runs it beside sidetail and GNU tail, so what
// Go's runtime costs a follower (the poller, the scheduler) shows apart from what
// sidetail adds; -hop hands each wakeup to a second goroutine, as sidetail's
// inotify reader hands it to the follower.
//
//	floor [-hop] FILE
package main

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sidetail/sidetail/bench/internal/command"
)

func main() { command.Main("floor", &floor{}) }

// floor is one run's settings, from the flags.
type floor struct{ hop bool }

func (f *floor) Flags(fs *flag.FlagSet) {
	fs.BoolVar(&f.hop, "hop", false, "read the file on a second goroutine, woken through a channel")
}

func (f *floor) Run(args []string) error {
	if len(args) != 1 {
		return command.UsageError("usage: floor [-hop] FILE")
	}
	runtime.GOMAXPROCS(1)
	path := args[0]
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return err
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), unix.IN_MODIFY|unix.IN_CREATE); err != nil {
		return err
	}
	in := os.NewFile(uintptr(fd), "inotify")
	rc, err := in.SyscallConn()
	if err != nil {
		return err
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	r := &reader{fd: int(file.Fd()), buf: make([]byte, 68<<10)}
	events := make([]byte, 16<<10)
	readEvents := func(fd uintptr) bool {
		_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)))
		return e != unix.EAGAIN
	}
	wake := make(chan struct{}, 1)
	if f.hop {
		go func() {
			for range wake {
				r.catchUp()
			}
		}()
	}
	for {
		if err := rc.Read(readEvents); err != nil {
			return err
		}
		if !f.hop {
			r.catchUp()
			continue
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// reader copies a file to stdout from where it stopped.
type reader struct {
	fd  int
	off int64
	buf []byte
}

// catchUp copies what was appended since the last call.
func (r *reader) catchUp() {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(r.fd), uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)), uintptr(r.off), 0, 0)
		if e != 0 || n == 0 {
			return
		}
		r.off += int64(n)
		unix.RawSyscall(unix.SYS_WRITE, 1, uintptr(unsafe.Pointer(&r.buf[0])), n)
		if int(n) < len(r.buf) {
			return
		}
	}
}
