package tailer

import (
	"io"
	"sync"
)

// readBuf holds the bytes read but not yet handed out, buf[r:w], for the two
// splitters over it: LineReader (files) and Framer (stream sockets). Both hand out
// a piece once a line or message passes their max, so the buffer never holds
// more than max+1+readSize bytes whatever the input.
type readBuf struct {
	buf  []byte
	r, w int
}

// fill does one read from src into the buffer and returns what that read
// returned. The buffer comes from pool when it has one and is made otherwise.
func (b *readBuf) fill(src io.Reader, max int, pool *sync.Pool) (int, error) {
	if b.r == b.w {
		b.r, b.w = 0, 0
		if len(b.buf) > 2*readSize {
			b.buf = nil // a long line is done: give its memory back
		}
	}
	if b.buf == nil && pool != nil {
		b.buf = pool.Get().(*[readSize]byte)[:]
	}
	if b.buf == nil {
		b.buf = make([]byte, readSize)
	}
	if len(b.buf)-b.w < readSize/2 {
		b.makeRoom(max)
	}
	n, err := src.Read(b.buf[b.w:])
	b.w += n
	return n, err
}

// makeRoom moves the bytes held to the front and, if that frees less than half a
// read, grows the buffer: only a piece shorter than max gets there.
func (b *readBuf) makeRoom(max int) {
	if b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	if len(b.buf)-b.w >= readSize/2 {
		return
	}
	size := 2 * len(b.buf)
	if size > max/4 {
		// Go to the largest size at once from a quarter of it: the smaller
		// buffers before it are garbage the collector may not have taken yet,
		// and their sum stays below half of max, so memory peaks below 1.5
		// times max.
		size = max + 1 + readSize
	}
	if size < b.w+readSize/2 {
		size = b.w + readSize
	}
	grown := make([]byte, size)
	b.w = copy(grown, b.buf[:b.w])
	b.buf = grown
}
