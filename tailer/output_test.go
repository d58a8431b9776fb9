package tailer

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A write the pipe's floor says fits, but that finds the pipe full (another
// writer filled it: stderr on the same pipe, say), is not lost: what the raw
// write could not write (EAGAIN on a non-blocking pipe) goes the usual way, which
// waits for room. Here the usual way is a buffer, so that no reader is needed.
func TestOutputRawWriteFindsPipeFull(t *testing.T) {
	r, w, err := os.Pipe() // non-blocking, in the runtime's poller
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	out := NewOutput(w)
	if out.pipe == nil {
		t.Fatal("the pipe was not seen as one: no raw writes to test")
	}
	if err := out.write([]byte("first\n")); err != nil { // the floor: nearly all free
		t.Fatal(err)
	}
	// Fill the pipe behind the floor's back.
	rc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		for {
			if _, err := unix.Write(int(fd), bytes.Repeat([]byte("x"), 4096)); err != nil {
				return
			}
		}
	})
	var usual bytes.Buffer
	out.w = &usual
	if err := out.write([]byte("last\n")); err != nil {
		t.Fatal(err)
	}
	if usual.String() != "last\n" {
		t.Fatalf("the usual way wrote %q, want the line the full pipe refused", usual.String())
	}
}

// A write that cannot sleep does not, on a pipe or a named pipe whose description
// blocks (as a container's stdout does): it fills the pipe, then fails with
// EAGAIN, and every byte it reported written is in the pipe. A write that slept
// here would hold the test until the watchdog ends it.
func TestQuickWriterNeverSleeps(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(map[bool]string{false: "pipe", true: "named pipe"}[named], func(t *testing.T) {
			r, w := testPipe(t, named)
			rc, err := w.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var q *quickWriter
			rc.Control(func(fd uintptr) {
				err = unix.SetNonblock(int(fd), false)
				q = newQuickWriter(int(fd))
			})
			if err != nil {
				t.Fatal(err)
			}
			watchdog := time.AfterFunc(time.Minute, func() { panic("a quick write slept in a full pipe") })
			defer watchdog.Stop()
			chunk := bytes.Repeat([]byte("q"), 4096)
			written := 0
			for {
				n, err := q.write(chunk)
				written += n
				if err == unix.EAGAIN {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("RWF_NOWAIT taken: %v; a descriptor of our own: %v", q.nowait, q.own >= 0)
			if written < len(chunk) {
				t.Fatalf("wrote %d bytes before EAGAIN, want a pipe's worth", written)
			}
			if _, err := io.ReadFull(r, make([]byte, written)); err != nil {
				t.Fatal(err)
			}
			rrc, err := r.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var left int
			rrc.Control(func(fd uintptr) { left, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
			if err != nil || left != 0 {
				t.Fatalf("%d bytes more in the pipe than reported written (%v)", left, err)
			}
		})
	}
}

// testPipe returns the ends of a pipe, or of a named pipe in a temporary folder.
func testPipe(t *testing.T, named bool) (r, w *os.File) {
	var err error
	if !named {
		r, w, err = os.Pipe()
	} else {
		fifo := filepath.Join(t.TempDir(), "fifo")
		if err = unix.Mkfifo(fifo, 0o600); err == nil {
			r, err = os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
		}
		if err == nil {
			w, err = os.OpenFile(fifo, os.O_WRONLY, 0)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}
