package tailer

import (
	"bytes"
	"regexp"
	"time"
)

// Multiline joins lines into records (stack traces): a line matching the start
// pattern opens a record, the lines after it that do not match belong to it.
type Multiline struct {
	// Start maps a tag to its pattern; the "" entry applies to every other tag.
	Start map[string]*regexp.Regexp
	// Timeout ends a record when no line came for this long, so the last record
	// of a burst is not held until the next one.
	Timeout time.Duration
	// MaxRecord bounds a record's bytes (without its final newline); a longer one
	// is written in pieces.
	MaxRecord int
}

// pattern returns the start pattern for tag, or nil when its lines are not joined.
func (m *Multiline) pattern(tag string) *regexp.Regexp {
	if m == nil {
		return nil
	}
	if re, ok := m.Start[tag]; ok {
		return re
	}
	return m.Start[""]
}

// recorder collects one file's lines into records. It keeps the bytes exactly as
// read, so the length of a flushed record is also how far the checkpoint may move.
type recorder struct {
	start *regexp.Regexp
	max   int
	buf   []byte    // the record so far: lines as read
	cut   bool      // buf ends in a piece of a line cut at the maximum line length
	first time.Time // when its first line was read
	last  time.Time // when its last line was read
}

// add appends seg (a run of lines, or with partial true one piece of a cut line)
// read at now, calling flush with every record it completes. Only the last line of
// seg may lack its newline: a partial line emitted at rotation or shutdown.
func (r *recorder) add(seg []byte, partial bool, now time.Time, flush func() error) error {
	for len(seg) > 0 {
		line := seg
		if nl := bytes.IndexByte(seg, '\n'); nl >= 0 && !partial {
			line = seg[:nl+1]
		}
		seg = seg[len(line):]
		if len(r.buf) > 0 {
			// A piece of a cut line continues the line before it whatever it holds.
			starts := !r.cut && r.start.Match(bytes.TrimSuffix(line, []byte{'\n'}))
			// The bound is on the message, as for --max-line: the final newline
			// is not counted.
			size := len(r.buf) + len(line)
			if line[len(line)-1] == '\n' {
				size--
			}
			if starts || size > r.max {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if len(r.buf) == 0 {
			r.first = now
		}
		r.buf = append(r.buf, line...)
		r.cut = partial
		r.last = now
	}
	return nil
}

// take returns the record, and whether it ends in a piece of a cut line, and
// starts a new one.
func (r *recorder) take() (rec []byte, cut bool) {
	rec, cut = r.buf, r.cut
	r.buf, r.cut = r.buf[:0], false
	if cap(rec) > 2*readSize {
		r.buf = nil // a large record is done: give its memory back
	}
	return rec, cut
}
