package tailer

import (
	"io"
	"sync"
)

// readBuf holds the bytes read but not yet handed out, buf[r:w], for the two
// splitters over it: LineReader (files, reads of fileReadSize) and Framer (stream
// sockets, reads of readSize). Both hand out a piece once a line or message passes
// their max, so the buffer never holds more than max+1+unit bytes whatever the
// input, unit being the splitter's read size.
type readBuf struct {
	buf  []byte
	r, w int
}

// room makes room for the next read of about unit bytes and returns how much
// there is. The buffer comes from pool when it has one (a pool of
// *[fileReadSize]byte: only files share buffers) and is made otherwise.
func (b *readBuf) room(unit, max int, pool *sync.Pool) int {
	if b.r == b.w {
		b.r, b.w = 0, 0
		if len(b.buf) > unit {
			b.buf = nil // a long line is done: give its memory back
		}
	}
	if b.buf == nil && pool != nil {
		b.buf = pool.Get().(*[fileReadSize]byte)[:]
	}
	if b.buf == nil {
		b.buf = make([]byte, unit)
	}
	if len(b.buf)-b.w < unit/2 {
		b.makeRoom(unit, max)
	}
	return len(b.buf) - b.w
}

// read does one read from src into the room made and returns what it returned.
func (b *readBuf) read(src io.Reader) (int, error) {
	n, err := src.Read(b.buf[b.w:])
	b.w += n
	return n, err
}

// makeRoom moves the bytes held to the front and, if that frees less than half a
// read, grows the buffer: only a piece shorter than max gets there.
func (b *readBuf) makeRoom(unit, max int) {
	if b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	if len(b.buf)-b.w >= unit/2 {
		return
	}
	size := 2 * len(b.buf)
	if size > max/4 {
		// Go to the largest size at once from a quarter of it: the smaller
		// buffers before it are garbage the collector may not have taken yet,
		// and their sum stays below half of max, so memory peaks below 1.5
		// times max.
		size = max + 1 + unit
	}
	if size < b.w+unit/2 {
		size = b.w + unit
	}
	grown := make([]byte, size)
	b.w = copy(grown, b.buf[:b.w])
	b.buf = grown
}
