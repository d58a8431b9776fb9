package tailer

import (
	"bytes"
	"time"
)

// emitter turns one file's lines into output: it encodes them (raw, prefix or JSON),
// joins multiline records, writes whole runs of lines, and counts how far into the
// file the output got: emitted, the offset a checkpoint may record. Bytes held back
// (a partial line, a record still open) are not counted until they are written.
type emitter struct {
	out     *Output
	enc     *encoder
	buf     []byte
	emitted int64
	// read is the follower's position, ahead of emitted by what is held back: the
	// bytes it keeps before its offset give a checkpoint its mark.
	read *position
	cp   *checkpointer // told after every write, and saved through by the follower; nil: off
	m    *FileMetrics
	long bool // the last segment was a piece of a line cut at --max-line

	// rec joins lines into multiline records; nil when lines go out one by one.
	rec      *recorder
	recTimer *time.Timer
	timeout  time.Duration
}

func newEmitter(cfg *Config, out *Output, cp *checkpointer, read *position, tag, path string) *emitter {
	e := &emitter{out: out, cp: cp, read: read, enc: newEncoder(cfg.Format, tag, path)}
	if re := cfg.Multiline.pattern(tag); re != nil {
		e.rec = &recorder{start: re, max: cfg.Multiline.MaxRecord}
		e.timeout = cfg.Multiline.Timeout
		e.recTimer = time.NewTimer(0)
		e.recTimer.Stop()
	}
	return e
}

// maxLine is the longest piece the line reader may hand over: a record's bound
// applies to its lines too.
func (e *emitter) maxLine(maxLine int) int {
	if e.rec != nil {
		return min(maxLine, e.rec.max)
	}
	return maxLine
}

// written records that the file's next bytes, p, went out: killed right after, a
// restart repeats nothing; killed during the write, it repeats this one at most.
// Every write ends here.
func (e *emitter) written(p []byte) {
	e.emitted += int64(len(p))
	if e.cp != nil {
		e.cp.wrote(e.emitted, e.mark(p))
	}
}

// mark returns the file's last bytes before emitted, up to markLen, as far as they
// are at hand without a read: those the read position keeps before its offset, or
// the end of p, the bytes just written, whichever is longer. No copy of them is
// kept: with a thousand files that was a KiB each.
func (e *emitter) mark(p []byte) []byte {
	if len(p) >= markLen {
		return p[len(p)-markLen:]
	}
	if held := e.read.off - e.emitted; held >= 0 && held <= int64(len(e.read.mark)) {
		if end := int64(len(e.read.mark)) - held; end >= int64(len(p)) {
			return e.read.mark[:end]
		}
	}
	return p
}

// lines writes every segment the reader has ready. In raw mode without a prefix,
// runs of whole lines go out straight from the read buffer: one write, no copy.
func (e *emitter) lines(lr *LineReader) error {
	now := time.Now()
	wrote := false
	for {
		seg, partial, ok := lr.Next()
		if !ok {
			if wrote {
				// From the read to the last write: one more clock read per
				// batch, where timing each write would take two.
				e.m.OutputWait(now)
			}
			return nil
		}
		if e.rec != nil {
			if err := e.rec.add(seg, partial, now, e.flushRecord); err != nil {
				return err
			}
			continue
		}
		if partial && !e.long {
			e.m.LongLineCut()
		}
		e.long = partial
		for len(seg) > 0 {
			part := e.batch(seg, partial)
			var err error
			if e.enc.plain && !partial {
				err = e.out.write(part)
			} else {
				e.buf, err = e.enc.writeSegment(e.out, e.buf, part, partial, now)
			}
			if err != nil {
				return err
			}
			e.written(part)
			e.m.Emitted(part)
			seg = seg[len(part):]
		}
		wrote = true
	}
}

// batch returns how much of seg to write at once: all of it, or with checkpoints
// on, the whole lines of its first readSize bytes (a longer first line whole), so
// a restart after SIGKILL repeats at most that much whatever the read size.
func (e *emitter) batch(seg []byte, partial bool) []byte {
	if e.cp == nil || partial || len(seg) <= readSize {
		return seg
	}
	if nl := bytes.LastIndexByte(seg[:readSize], '\n'); nl >= 0 {
		return seg[:nl+1]
	}
	if nl := bytes.IndexByte(seg[readSize:], '\n'); nl >= 0 {
		return seg[:readSize+nl+1]
	}
	return seg
}

// held writes a partial last line as it is, at rotation and shutdown, so it is
// neither dropped nor glued to the next file's first line; an open record goes
// out with it.
func (e *emitter) held(line []byte) error {
	if e.rec != nil {
		if err := e.rec.add(line, false, time.Now(), e.flushRecord); err != nil {
			return err
		}
		return e.flushRecord()
	}
	if len(line) == 0 {
		return nil
	}
	var err error
	now := time.Now()
	e.buf, err = e.enc.writeSegment(e.out, e.buf, line, false, now)
	e.m.OutputWait(now)
	if err != nil {
		return err
	}
	e.written(line)
	e.m.EmittedLast(line)
	return nil
}

// flushRecord writes the multiline record collected so far, as one write (or one
// run of pieces under one hold of the output, for a long one).
func (e *emitter) flushRecord() error {
	rec, cut := e.rec.take()
	if len(rec) == 0 {
		return nil
	}
	var err error
	start := e.m.Clock()
	e.buf, err = e.enc.writeRecord(e.out, e.buf, rec, cut, e.rec.first)
	e.m.OutputWait(start)
	if err != nil {
		return err
	}
	e.written(rec)
	if cut {
		e.m.Emitted(rec) // its last line goes on in the next record
	} else {
		e.m.EmittedLast(rec)
	}
	e.m.Record(cut)
	return nil
}

// expireRecord writes a record no line has been added to for the multiline
// timeout: the last trace of a burst is not held back until the next one.
func (e *emitter) expireRecord() error {
	if e.rec == nil || len(e.rec.buf) == 0 || time.Since(e.rec.last) < e.timeout {
		return nil
	}
	return e.flushRecord()
}

// recordExpiry returns a channel that fires when the open record times out, or nil
// (never fires) when no record is open.
func (e *emitter) recordExpiry() <-chan time.Time {
	if e.rec == nil || len(e.rec.buf) == 0 {
		return nil
	}
	e.recTimer.Reset(time.Until(e.rec.last.Add(e.timeout)))
	return e.recTimer.C
}
