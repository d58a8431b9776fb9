package tailer

import (
	"bytes"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sidetail/sidetail/internal/fileid"
)

// markLen bytes just before the offset tell a file truncated and refilled past our
// offset (copytruncate while we slept) from one that only grew. They span whole
// lines of up to about 1 KiB, so lines that differ only in a counter or a time do
// not look alike; a refill byte-identical to what was read cannot be told.
const markLen = 1 << 10

// position is where reading stands in the open file: the offset of the next byte to
// read, and the mark, the last bytes read before it, which must still be there for
// the file to be the one we were reading.
type position struct {
	off  int64
	mark []byte
}

// at places the position at off in file, taking the mark from the bytes before it.
func (p *position) at(file *os.File, off int64) {
	p.off = off
	n := min(off, markLen)
	p.mark = append(p.mark[:0], fileid.ReadAt(file, off-n, int(n))...)
}

// advance moves past recent, the bytes just read.
func (p *position) advance(recent []byte) {
	p.off += int64(len(recent))
	if len(recent) >= markLen {
		recent = recent[len(recent)-markLen:]
		p.mark = p.mark[:0]
	}
	p.mark = append(p.mark, recent...)
	p.keepLast(markLen)
}

// moveDown follows a cut that removed n bytes from the front of file: every offset
// moved down by n. The mark is read again, as far as the file still holds bytes
// before the offset: the rotator may also have blanked the fragment of an archived
// line at the head, below our offset.
func (p *position) moveDown(file *os.File, n int64) {
	p.at(file, p.off-n)
}

// truncated reports whether file, of the given size (-1: not known) and known by
// its head h, no longer holds what we read: it is smaller than our offset, or its
// head or the bytes before the offset changed (truncated and refilled past it while
// we were not looking, or cut below the offset: the mark is then not all there).
func (p *position) truncated(file *openFile, size int64, h head) bool {
	if (size >= 0 && size < p.off) || !h.in(file) {
		return true
	}
	if len(p.mark) == 0 {
		return false
	}
	from := p.off - int64(len(p.mark))
	var now [markLen]byte // on the stack: a check allocates nothing
	n, _ := file.readAt(now[:len(p.mark)], from)
	return !p.still(now[:n], file.File)
}

// still reports whether now, the bytes read where the mark should be, are the mark,
// or differ only by a hole punched over its head, or by rotation's blanks.
func (p *position) still(now []byte, file *os.File) bool {
	return bytes.Equal(now, p.mark) || blankedFront(now, p.mark) || p.punched(file)
}

// blankedFront reports whether now is mark with its front cut by rotation: the
// part of a line a cut left before what went out overwritten by spaces ending in a
// newline, maybe after a hole (NULs), and the rest as it was. A restart meets it
// when SIGKILL came after a cut and before an output write recorded the mark read
// again after it.
func blankedFront(now, mark []byte) bool {
	if len(now) != len(mark) {
		return false
	}
	i := 0
	for i < len(now) && now[i] == 0 {
		i++
	}
	for i < len(now) && now[i] == ' ' {
		i++
	}
	// The blanks end on a line's end: the newline was there before them too.
	return i < len(now) && now[i] == '\n' && mark[i] == '\n' && bytes.Equal(now[i:], mark[i:])
}

// marked reports whether a cut below the offset would show in the mark: there is
// one, or nothing was read. (A hole punched up to the offset leaves none.)
func (p *position) marked() bool { return len(p.mark) > 0 || p.off == 0 }

// punched reports whether the mark differs only because a hole was punched over its
// head (rotation on tmpfs frees what was read, up to a block boundary): then what
// is left of it is still in place, and the mark is cut down to that.
func (p *position) punched(file *os.File) bool {
	from := p.off - int64(len(p.mark))
	// SEEK_DATA moves the descriptor's offset, which reading (pread) does not use.
	data, err := unix.Seek(int(file.Fd()), from, unix.SEEK_DATA)
	if err != nil || data <= from || data > p.off {
		return false
	}
	rest := p.mark[data-from:]
	if !bytes.Equal(fileid.ReadAt(file, data, len(rest)), rest) {
		return false
	}
	p.keepLast(len(rest))
	return true
}

// keepLast keeps only the last n bytes of the mark.
func (p *position) keepLast(n int) {
	if extra := len(p.mark) - n; extra > 0 {
		p.mark = p.mark[:copy(p.mark, p.mark[extra:])]
	}
}

// source is the open file as the line reader reads it. A regular file is read at
// the position's offset, with pread, so the descriptor's own offset plays no part;
// with checkMark, the next read begins at the mark instead and checks it: the check
// that the bytes we read are still there and the read of what follows them are then
// one system call, so no truncation and refill can fall between them, and a wakeup
// costs one call less. Anything else (a FIFO) is read as a stream.
type source struct {
	file      *openFile
	pos       *position
	regular   bool
	checkMark bool
	// refilled is set when a checked read found the mark gone (the file was
	// truncated and refilled past our offset): it then read nothing.
	refilled bool
}

func (s *source) Read(p []byte) (int, error) {
	if !s.regular {
		return s.file.Read(p)
	}
	if s.checkMark && len(s.pos.mark) > 0 && len(p) > 0 {
		s.checkMark = false
		var now [markLen]byte // on the stack, as in truncated
		m := len(s.pos.mark)
		n, err := s.file.readTwo(now[:m], p, s.pos.off-int64(m))
		if n >= m && bytes.Equal(now[:m], s.pos.mark) {
			return n - m, err
		}
		if err != nil {
			return 0, err
		}
		if !s.pos.still(now[:min(n, m)], s.file.File) {
			s.refilled = true
			return 0, nil
		}
		// A hole over the mark's head: what is left of it is in place, read on.
	}
	s.checkMark = false
	return s.file.readAt(p, s.pos.off)
}
