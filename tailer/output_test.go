package tailer

import (
	"bytes"
	"os"
	"testing"

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
