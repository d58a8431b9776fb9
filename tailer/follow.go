package tailer

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"time"

	"github.com/sidetail/sidetail/internal/fileid"
)

// retryUnreadable is how often a file that exists but cannot be opened (or is
// still drained by another follower) is retried.
const retryUnreadable = time.Second

// change is what a stat of the path says about the open file.
type change int

const (
	unchanged change = iota
	truncated        // same file, smaller than our offset or refilled past it
	replaced         // the path names another file now
	gone             // the path names nothing
	parked           // not a change: the follower gave up its goroutine (see waker.park)
)

// follower follows one path: the loop that checks the path, then reads, restarts,
// drains or shuts down. Its parts each do one job: pins (files that took the path
// meanwhile), pos (where reading stands), emit (output and multiline records, and
// emit.cp, the checkpoints it tells of every write), cuts (rotation of what went
// out). Only the output, the registry and the pinner's queue are shared with other
// goroutines.
type follower struct {
	path  string
	cfg   *Config
	files *registry
	runs  *workers
	opts  followOpts
	wait  waker
	pins  *pinner
	cuts  *cutter // nil: no rotation
	emit  *emitter
	m     *FileMetrics // nil: no metrics

	cur *openFile
	pos position
	src source // cur at pos, for lr
	lr  *LineReader
	// end stops what start started and reports the follower's end: set by start.
	end func(err error)
	// stopped is when every follower was told to stop, shared.
	stopped *stopClock
}

// followOpts says how a path came to be followed.
type followOpts struct {
	fromTail bool // start the first file at its end (--from=tail, file present at start)
	globbed  bool // found by a glob: stop once the path is gone, the scanner restarts it
}

// start follows the path until ctx is done (then drains) or, for a globbed path,
// until the file is gone and drained, on goroutines of its own, and calls done
// with the output error, if any, when the follower ends. While its file is idle
// the follower holds no goroutine (waker.park): its state is all in its struct,
// and the next wakeup starts a goroutine that goes on where it stopped.
func (f *follower) start(ctx context.Context, w *watcher, done func(error)) {
	stopCP := f.emit.cp.start() // the offset is written until the end: its file closes last
	f.wait.w, f.wait.sub = w, newSubscription(f.pins.pin)
	resume := func() { f.resume(ctx) } // made once: a closure made at each wakeup is an allocation
	f.wait.sub.woken = func() {
		if f.wait.unpark() {
			f.runs.run(resume)
		}
	}
	// The end of ctx is a wakeup: a parked follower goes on to drain and end.
	stopWake := context.AfterFunc(ctx, f.wait.sub.wakeUp)
	f.wait.watch(f.path)
	stopCuts := f.cuts.start()
	f.end = func(err error) {
		f.pins.closeAll()
		stopCuts()
		f.wait.stop()
		stopWake()
		stopCP()
		f.m.Close()
		done(err)
	}
	f.runs.run(func() { f.loop(ctx) })
}

// resume goes on with a parked follower after a wakeup, which it takes.
func (f *follower) resume(ctx context.Context) {
	select {
	case <-f.wait.sub.wake:
	default:
	}
	f.loop(ctx)
}

// loop follows the file being read, then each next one, until the follower ends
// or parks. Once it parked, another goroutine may run the follower: it returns
// without touching it.
func (f *follower) loop(ctx context.Context) {
	for {
		if f.cur == nil {
			if next := f.pins.next(); next != nil {
				f.use(next)
			} else if !f.open(ctx) {
				if f.opts.globbed && ctx.Err() == nil {
					f.emit.cp.remove() // the file is gone and drained
				}
				f.end(nil)
				return
			}
		}
		next, err := f.follow(ctx)
		if next == parked {
			return
		}
		f.files.close(f.cur, f.pos.off)
		f.cur = nil
		// follow reports unchanged only once ctx is done and the file drained.
		if err != nil || next == unchanged {
			f.end(err)
			return
		}
	}
}

// open opens the path, waiting while it is absent or unreadable. It reports false
// when ctx is done first, or when a globbed path is gone.
func (f *follower) open(ctx context.Context) bool {
	var reported error
	for {
		o, err := f.files.open(f.path)
		if err == nil {
			if reported != nil {
				f.cfg.Log.Info("following file", "path", f.path)
			}
			if f.opts.fromTail {
				o.start = o.info.Size()
			}
			f.opts.fromTail = false
			chain := f.emit.cp.resume(o, f.files, f.cuts.removed)
			f.pins.begin(chain)
			f.use(chain[0])
			f.m.Ready()
			return true
		}
		if errors.Is(err, fs.ErrNotExist) && f.opts.globbed {
			return false
		}
		f.reportOpen(err, reported)
		reported = err
		f.opts.fromTail = false // a file that appears later is new: read it from its head
		if ctx.Err() != nil {
			return false
		}
		f.m.Ready() // waited for
		if errors.Is(err, fs.ErrNotExist) {
			// A link may point into another folder now: once it is watched, a
			// look; then its events say when the file appears.
			if !f.wait.watch(f.path) {
				f.wait.wait(ctx, nil, nil)
			}
			continue
		}
		retry := time.NewTimer(retryUnreadable)
		f.wait.wait(ctx, retry.C, nil)
		retry.Stop()
	}
}

// reportOpen logs why the path cannot be opened, once per reason.
func (f *follower) reportOpen(err, before error) {
	switch {
	case errors.Is(err, errBusy):
		// Another follower is still draining this file under another name.
	case errors.Is(err, fs.ErrNotExist):
		if before == nil {
			f.cfg.Log.Info("waiting for file", "path", f.path)
		}
	case before == nil || before.Error() != err.Error():
		f.cfg.Log.Error("cannot read file, retrying every second", "path", f.path, "err", err)
	}
}

// use makes o the file being read, from its start offset.
func (f *follower) use(o *openFile) {
	if f.cuts != nil {
		// Finishing a cut a crash interrupted changes the file's front: before any
		// offset is taken from it. A start past the new end (--from=tail taken
		// before) is the end.
		o.removed = f.cuts.removed(o.info)
		o.head = readHead(o.File)
		if info, err := o.Stat(); err == nil {
			o.info, o.start = info, min(o.start, info.Size())
		}
	}
	// A hole punched by rotation (tmpfs) reads as NULs: start after it.
	o.start = fileid.DataStart(o.File, o.start)
	f.cur = o
	f.wait.watch(f.path) // a link may point into another folder now
	f.wait.linked = fileid.Links(o.info) > 1
	f.pos.at(o.File, o.start)
	f.emit.emitted = o.start
	f.m.Opened()
	f.m.Reading(o.File, f.pos.off, f.emit.emitted)
	f.save()
}

// follow relays the current file until it is replaced or gone (and drained), or ctx
// is done and the file was read to its current EOF; then it reports unchanged. It
// reports parked when the follower parked while the file was idle.
func (f *follower) follow(ctx context.Context) (change, error) {
	for {
		if ctx.Err() != nil {
			return f.shutdown()
		}
		// Check before reading: reading first would take the bytes of a file
		// truncated and refilled past our offset for more of the old content.
		// Where check leaves the mark to the read, the read checks it first.
		c := f.check(f.wait.sub.renamed())
		if c == unchanged {
			n, err := f.readToEOF(true)
			if err != nil {
				return c, err
			}
			if !f.src.refilled {
				p, err := f.rest(ctx, n)
				if err != nil {
					return c, err
				}
				if p {
					return parked, nil
				}
				continue
			}
			c = truncated
		}
		switch c {
		case truncated:
			f.m.Rotation(RotationTruncate)
			f.cfg.Log.Info("file truncated, reading from its start", "path", f.path)
			if err := f.restart(); err != nil {
				return c, err
			}
		default:
			if err := f.drain(ctx, f.pins.replaced(f.cur)); err != nil {
				return c, err
			}
			if ctx.Err() != nil {
				// The app may still be writing to the file it renamed (logrotate's
				// create mode): its last line gets the same wait.
				if _, err := f.awaitLineEnd(); err != nil {
					return c, err
				}
			}
			f.m.Replaced(f.cur.File)
			if f.pins.count() > 0 {
				f.cfg.Log.Info("file rotated, following the new file", "path", f.path)
			}
			return c, f.emit.held(f.lr.Held())
		}
	}
}

// rest follows a read of n bytes that found the file unchanged: a cut if one is
// due, an expired record, then the wait for the next wakeup. When nothing but a
// wakeup can end the wait, the follower parks instead, and rest reports parked.
func (f *follower) rest(ctx context.Context, n int64) (parked bool, err error) {
	f.cut()
	if n == 0 {
		// Nothing new: a record left open by the last burst may be due.
		if err := f.emit.expireRecord(); err != nil {
			return false, err
		}
	}
	// Bytes written after our last read raise an event, which is pending by now:
	// wait returns at once for them (park does not park).
	f.wait.steady()
	expiry, cut := f.emit.recordExpiry(), f.cuts.C()
	if expiry == nil && cut == nil {
		return f.wait.park(ctx), nil
	}
	f.wait.wait(ctx, expiry, cut)
	return false, nil
}

// cut lets Config.Cut remove what went out from the front of the file, when its
// interval has passed, and moves the offsets down by what it removed.
func (f *follower) cut() {
	removed, ok := f.cuts.cut(f.cur.info, f.emit.emitted)
	if !ok {
		return
	}
	// The rotator may have blanked the fragment of an archived line left at the
	// head, below our offset and maybe within our mark: the head and the mark are
	// what is there now.
	f.cur.head = readHead(f.cur.File)
	f.pos.moveDown(f.cur.File, removed)
	f.emit.emitted -= removed
	if removed <= 0 {
		return
	}
	f.cur.removed += removed
	f.m.Reading(f.cur.File, f.pos.off, f.emit.emitted)
	f.save() // the last one points into bytes that are gone
}

// shutdown reads what was written before the signal: the current file to EOF, from
// its start if it was truncated (before or during the wait for a line's end), then
// (through run) every file that replaced it, so a rotation just before SIGTERM
// loses nothing.
func (f *follower) shutdown() (change, error) {
	c := f.check(true)
	for {
		if c == truncated {
			f.m.Rotation(RotationTruncate)
			f.cfg.Log.Info("file truncated, reading from its start", "path", f.path)
			if err := f.restart(); err != nil {
				return c, err
			}
		}
		if _, err := f.readToEOF(true); err != nil {
			return c, err
		}
		refilled := f.src.refilled
		if !refilled {
			var err error
			if refilled, err = f.awaitLineEnd(); err != nil {
				return c, err
			}
		}
		if !refilled {
			break
		}
		c = truncated
	}
	f.pins.pin()
	if f.pins.count() > 0 {
		c = replaced
	} else {
		c = unchanged
	}
	return c, f.emit.held(f.lr.Held())
}

// awaitLineEnd waits for the rest of the line the file ends in the middle of at
// shutdown, so that it goes out whole: written as a piece, a restart would begin
// with the rest of it, a line of its own. Every file's wait ends
// Config.LineEndWait after the signal (a file replaced by another, or read after a
// backlog, waits less or not at all): then what has not come goes out as it is,
// never dropped. The wait is for that line only: lines after it may end in a piece
// too. refilled reports that the file was truncated meanwhile.
func (f *follower) awaitLineEnd() (refilled bool, err error) {
	if f.lr.Buffered() == 0 || f.cfg.LineEndWait <= 0 || !f.cur.info.Mode().IsRegular() {
		return false, nil
	}
	deadline := f.stopped.at().Add(f.cfg.LineEndWait)
	left := time.Until(deadline)
	if left <= 0 {
		return false, nil
	}
	f.cfg.Log.Info("file ends in the middle of a line: waiting for its end", "path", f.path, "max", left.Round(time.Millisecond))
	timer := time.NewTimer(left)
	defer timer.Stop()
	// The line's bytes so far end at held: it is whole once the reader holds no
	// byte before that (what it holds is the last line's piece).
	held := f.pos.off
	for f.pos.off-int64(f.lr.Buffered()) < held && time.Now().Before(deadline) {
		// ctx is done: only a write to the file or the timer ends the wait; the
		// timer fires at the deadline or after it.
		f.wait.wait(context.Background(), timer.C, nil)
		if _, err := f.readToEOF(true); err != nil || f.src.refilled {
			return f.src.refilled, err
		}
	}
	return false, nil
}

// stopClock says when the followers were told to stop: their waits at shutdown
// share one deadline from then.
type stopClock struct{ nanos atomic.Int64 }

// stop records now as the time to stop, unless one was recorded.
func (s *stopClock) stop() { s.nanos.CompareAndSwap(0, time.Now().UnixNano()) }

// at returns the time to stop; a follower that asks first (its context's end
// told it before stop ran) records it.
func (s *stopClock) at() time.Time {
	s.stop()
	return time.Unix(0, s.nanos.Load())
}

// restart goes back to offset 0 of a truncated file.
func (f *follower) restart() error {
	if err := f.emit.held(f.lr.Held()); err != nil {
		return err
	}
	f.pos.at(f.cur.File, 0)
	f.emit.emitted = 0
	f.m.Reading(f.cur.File, 0, 0)
	f.cur.head = readHead(f.cur.File)
	f.save()
	return nil
}

// drain reads a replaced or deleted file until it has been quiet for the settle
// period since it was replaced: logrotate's create mode renames first and signals the
// app later, and the app keeps writing to the renamed file until it reopens. Files
// that take the path meanwhile are pinned.
func (f *follower) drain(ctx context.Context, replaced time.Time) error {
	defer f.wait.between() // until the next file's first look: see steady
	quietUntil := replaced.Add(f.cfg.Settle)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for caughtUp := false; ; caughtUp = true {
		f.wait.draining(f.cur.File) // before the read: a write after it must wake us
		n, err := f.readToEOF(false)
		if err != nil {
			return err
		}
		now := time.Now()
		// Bytes found once we had reached EOF come from a writer still holding the
		// file: wait for it to go quiet. The first read only catches up.
		if n > 0 && caughtUp {
			quietUntil = now.Add(f.cfg.Settle)
		}
		if ctx.Err() != nil || !now.Before(quietUntil) {
			return nil
		}
		timer.Reset(quietUntil.Sub(now))
		f.wait.wait(ctx, timer.C, nil)
	}
}

// check compares the path with the current file, statting it when names may have
// changed (renamed); otherwise the path still names the file, and only truncation
// is looked for.
func (f *follower) check(renamed bool) change {
	if !renamed && f.pos.marked() {
		if f.pins.count() > 0 {
			return replaced
		}
		// The size is not known: a file cut below our offset shows in the mark,
		// which is then not all there; the read that follows checks it.
		if !f.cur.head.in(f.cur) {
			return truncated
		}
		return unchanged
	}
	// Before a change of names is taken for a rotation: the file may have been
	// truncated and refilled first, and the drain that follows reads on from our
	// offset. (Its size is not known here: a cut shows in the mark.)
	if f.pos.truncated(f.cur, -1, f.cur.head) {
		return truncated
	}
	info, err := os.Stat(f.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return gone
		}
		// A permission change on a directory: keep reading what is open.
		f.cfg.Log.Warn("cannot stat file", "path", f.path, "err", err)
		return unchanged
	}
	if !os.SameFile(info, f.cur.info) {
		// Pin it now rather than wait for the pinning goroutine's wakeup: the new
		// file may be rotated away again before that comes.
		f.pins.pin()
		return replaced
	}
	f.wait.linked = fileid.Links(info) > 1
	if f.pins.count() > 0 {
		return replaced
	}
	if info.Size() < f.pos.off { // head and mark were checked above
		return truncated
	}
	return unchanged
}

// readToEOF reads and emits until EOF and returns how many bytes it read. Read
// errors end the read (the next wakeup tries again); only output errors are returned.
// A short read of a regular file is its end: bytes written after it raise an event
// that wakes the next wait, so the read that would return 0 is not made. With
// checkMark the first read checks the mark, and reads nothing if it is gone
// (f.src.refilled).
func (f *follower) readToEOF(checkMark bool) (int64, error) {
	var total int64
	regular := f.cur.info.Mode().IsRegular()
	f.src = source{file: f.cur, pos: &f.pos, regular: regular, checkMark: checkMark}
	for {
		n, err := f.lr.Fill(&f.src)
		if n > 0 {
			total += int64(n)
			f.m.Read(n)
			f.cur.grow(f.pos.off, f.lr.Recent(n))
			f.pos.advance(f.lr.Recent(n))
			if err := f.emit.lines(f.lr); err != nil {
				return total, err
			}
		}
		if err != nil || n == 0 || (regular && f.lr.short) {
			if err != nil && err != io.EOF {
				f.cfg.Log.Warn("read error, retrying", "path", f.path, "err", err)
			}
			return total, nil
		}
	}
}

// save records the file being read and how far its output got, with the files
// pinned behind it: after a switch, a truncation or a cut.
func (f *follower) save() {
	if f.emit.cp != nil {
		f.emit.cp.save(pointOf(f.cur, f.emit.emitted), f.emit.mark(nil), f.pins)
	}
}
