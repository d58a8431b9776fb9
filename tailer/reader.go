package tailer

import (
	"bytes"
	"io"
	"sync"
	"unicode/utf8"
)

// readSize is how much one read of a socket stream asks for, and the usual size of
// the segments the encoders take.
const readSize = 16 << 10

// fileReadSize is the read buffer of a followed file: 64 KiB, a common size of
// writes and a pipe's default capacity, plus room for the partial line the last
// read left, so one read takes a 64 KiB append whole. While following a live file
// that is one read and one write per wakeup where 16 KiB took five and four, about
// a tenth of the CPU per GB (bench/compare.sh steady); catching up into a pipe it
// was faster too (494 MiB/s against 410, one run).
const fileReadSize = 68 << 10

// LineReader splits the bytes read from a file into segments ready for output: runs
// of whole lines, or pieces of a line longer than the maximum. It holds a partial last
// line until its newline arrives, so memory stays within max+fileReadSize whatever the
// input.
type LineReader struct {
	readBuf
	max  int
	pool *sync.Pool // nil: buffers are made, not shared
	// clean is how many bytes from r are known to hold no newline, so a long line
	// arriving in small appends is searched once, not again at every read.
	clean int
	// short says the last read returned less than it asked for: in a regular
	// file, that it reached the end.
	short bool
}

// NewLineReader returns a reader that cuts lines longer than max bytes (newline not
// counted) into pieces of at most max bytes.
func NewLineReader(max int) *LineReader {
	if max < 1 {
		max = 1
	}
	return &LineReader{max: max}
}

// Fill does one read from src into the buffer and returns what that read returned.
func (lr *LineReader) Fill(src io.Reader) (int, error) {
	room := lr.room(fileReadSize, lr.max, lr.pool)
	n, err := lr.read(src)
	lr.short = n < room
	return n, err
}

// Next returns the next segment to emit: either a run of whole lines, each ending in
// '\n' and at most max bytes long, or, with partial true, a piece of a longer line
// cut at a UTF-8 boundary. ok is false when only a partial line of at most max bytes
// is left.
func (lr *LineReader) Next() (seg []byte, partial, ok bool) {
	data := lr.buf[lr.r:lr.w]
	last := bytes.LastIndexByte(data[lr.clean:], '\n')
	if last >= 0 {
		last += lr.clean
	} else {
		lr.clean = len(data)
		if len(data) <= lr.max {
			return nil, false, false
		}
		return lr.take(cutPoint(data, lr.max)), true, true
	}
	run := data[:last+1]
	if len(run) <= lr.max+1 {
		return lr.take(len(run)), false, true
	}
	// Some line in the run may be too long: hand out the whole lines before it first.
	end := 0
	for end < len(run) {
		nl := bytes.IndexByte(run[end:], '\n')
		if nl > lr.max {
			break
		}
		end += nl + 1
	}
	if end > 0 {
		return lr.take(end), false, true
	}
	return lr.take(cutPoint(data, lr.max)), true, true
}

// Held returns the partial last line and forgets it: at rotation and shutdown it is
// emitted as it is rather than dropped or joined to another file's bytes.
func (lr *LineReader) Held() []byte {
	return lr.take(lr.w - lr.r)
}

// Recent returns the last n bytes read (n at most what the last read returned).
func (lr *LineReader) Recent(n int) []byte { return lr.buf[lr.w-n : lr.w] }

// Buffered reports how many bytes are held back as a partial line.
func (lr *LineReader) Buffered() int { return lr.w - lr.r }

func (lr *LineReader) take(n int) []byte {
	seg := lr.buf[lr.r : lr.r+n]
	lr.r += n
	lr.clean = max(lr.clean-n, 0)
	return seg
}

// cutPoint returns where to cut data (longer than max) so the piece holds at most max
// bytes and does not end inside a UTF-8 sequence.
func cutPoint(data []byte, max int) int {
	for cut := max; cut > 0 && cut > max-utf8.UTFMax; cut-- {
		if utf8.RuneStart(data[cut]) {
			return cut
		}
	}
	return max // not UTF-8 here (or max below 4): any cut is as good
}

// Release gives an empty buffer of the normal size back to the pool the reader
// takes buffers from (see NewLineReader's caller in this package), so a thousand
// idle files share a few buffers instead of holding 64 KiB each. A partial line or
// a buffer grown for a long one is kept.
func (lr *LineReader) Release() {
	if lr.pool == nil || lr.buf == nil || lr.r != lr.w || len(lr.buf) != fileReadSize {
		return
	}
	lr.pool.Put((*[fileReadSize]byte)(lr.buf)) // a pointer: a slice would be boxed, an allocation per wait
	lr.buf, lr.r, lr.w, lr.clean = nil, 0, 0, 0
}
