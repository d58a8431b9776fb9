package tailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// markLen bytes just before the offset tell a file truncated and refilled past
	// our offset (copytruncate while we slept) from one that only grew.
	markLen = 32
	// headLen bytes at the start identify a file, together with device and inode,
	// so a reused inode is not mistaken for a file already read.
	headLen = 64
	// retryUnreadable is how often a file that exists but cannot be opened is retried.
	retryUnreadable = time.Second
	// safetyPoll catches changes inotify did not report (e.g. a writer in another
	// mount namespace on an overlay lower layer) without costing idle CPU.
	safetyPoll = 5 * time.Second
)

// change is what a stat of the path says about the open file.
type change int

const (
	unchanged change = iota
	truncated        // same file, smaller than our offset or refilled past it
	replaced         // the path names another file now
	gone             // the path names nothing
)

// follower follows one path. It owns its files, buffers and goroutine; only the
// output and the registry are shared.
type follower struct {
	path, tag string
	cfg       *Config
	out       *Output
	files     *registry
	log       *slog.Logger
	fromTail  bool         // start the first file at its end (--from=tail, file present at start)
	globbed   bool         // found by a glob: stop once the path is gone, the scanner restarts it
	cps       *Checkpoints // nil: no checkpoints
	saver     *saver       // writes checkpoints off the reader's goroutine
	resumed   bool         // the checkpoint was looked at

	// emitted is the offset in cur up to which lines reached the output: what a
	// checkpoint may record. Bytes held (a partial line) are not counted.
	emitted int64
	saved   filePoint

	wake <-chan struct{}
	tick *time.Ticker
	// cutTick wakes an idle follower to call Config.Cut; nil when it is not set.
	// nextCut keeps a busy one, which never waits, calling it too.
	cutTick <-chan time.Time
	nextCut time.Time

	// rec joins lines into multiline records; nil when lines go out one by one.
	// emitted then moves only when a record is written.
	rec      *recorder
	recTimer *time.Timer

	cur *openFile
	// pinMu guards pending and newest, shared with the pinning goroutine.
	pinMu sync.Mutex
	// pending holds the files that took the path after cur, opened by watchPath the
	// moment they were seen: a file rotated away and deleted before the reader got
	// to it (a slow stdout, a rotation every few milliseconds) stays readable
	// through our descriptor, so rotation chains lose nothing.
	pending []*openFile
	// newest is the last file known at the path (cur or the last pending); nil
	// while the reader looks for the path itself.
	newest *openFile
	off    int64
	mark   []byte
	lr     *LineReader
	enc    *encoder
	outBuf []byte
}

// openFile is a file we hold open and have claimed in the registry.
type openFile struct {
	*os.File
	info  fs.FileInfo
	key   fileKey
	head  []byte
	start int64
	// replaced is when another file took the path: the settle period runs from
	// then, so a file that was replaced long ago is not waited for again.
	replaced time.Time
}

// run follows the path until ctx is done (then drains) or, for a globbed path, until
// the file is gone and drained. It returns only output errors.
func (f *follower) run(ctx context.Context, w *Watcher) error {
	if f.cps != nil {
		// Deferred first so it runs last: the final checkpoint is on disk when
		// run returns.
		f.saver = &saver{wake: make(chan struct{}, 1)}
		done := make(chan struct{})
		var saving sync.WaitGroup
		saving.Go(func() { f.saver.run(done) })
		defer func() {
			close(done)
			saving.Wait()
		}()
	}
	dir := filepath.Dir(f.path)
	wake, watched := w.Subscribe(dir)
	defer w.Unsubscribe(dir, wake)
	f.wake = wake
	interval := safetyPoll
	if !watched {
		interval = f.cfg.PollInterval
	}
	f.tick = time.NewTicker(interval)
	defer f.tick.Stop()
	if f.cfg.Cut != nil && !f.globbed {
		cut := time.NewTicker(f.cfg.CutInterval)
		defer cut.Stop()
		f.cutTick = cut.C
	}
	maxLine := f.cfg.MaxLine
	if f.rec != nil {
		maxLine = min(maxLine, f.rec.max)
		f.recTimer = time.NewTimer(0)
		f.recTimer.Stop()
	}
	f.lr = NewLineReader(maxLine)

	pinWake, _ := w.Subscribe(dir)
	defer w.Unsubscribe(dir, pinWake)
	var pinner sync.WaitGroup
	pinCtx, stopPinning := context.WithCancel(ctx)
	pinner.Go(func() { f.watchPath(pinCtx, pinWake, interval) })
	defer func() {
		stopPinning()
		pinner.Wait()
		for _, p := range f.pending {
			f.release(p, p.start)
		}
	}()

	for {
		if next := f.nextPending(); next != nil {
			f.use(next)
		} else if !f.open(ctx) {
			if f.globbed && f.cps != nil && ctx.Err() == nil {
				f.saver.put(func() { f.cps.remove(f.path) }) // the file is gone and drained
			}
			return nil
		}
		next, err := f.follow(ctx)
		f.release(f.cur, f.off)
		f.cur = nil
		// follow reports unchanged only once ctx is done and the file drained.
		if err != nil || next == unchanged {
			return err
		}
	}
}

// open opens the path, waiting while it is absent or unreadable. It reports false
// when ctx is done first, or when a globbed path is gone.
func (f *follower) open(ctx context.Context) bool {
	var reported error
	for {
		o, err := f.openPath()
		if err == nil {
			if reported != nil {
				f.log.Info("following file", "path", f.path)
			}
			if f.fromTail {
				o.start = o.info.Size()
			}
			f.fromTail = false
			chain := f.resume(o)
			f.pinMu.Lock()
			f.pending = append(f.pending, chain[1:]...)
			f.newest = chain[len(chain)-1]
			f.pinMu.Unlock()
			f.use(chain[0])
			return true
		}
		if errors.Is(err, errBusy) {
			// Another follower is still draining this file under another name.
		} else if errors.Is(err, fs.ErrNotExist) {
			if f.globbed {
				return false
			}
			if reported == nil {
				f.log.Info("waiting for file", "path", f.path)
			}
		} else if reported == nil || reported.Error() != err.Error() {
			f.log.Error("cannot read file, retrying every second", "path", f.path, "err", err)
		}
		reported = err
		f.fromTail = false // a file that appears later is new: read it from its head
		if ctx.Err() != nil {
			return false
		}
		retry := time.NewTimer(retryUnreadable)
		select {
		case <-ctx.Done():
		case <-f.wake:
		case <-f.tick.C:
		case <-retry.C:
		}
		retry.Stop()
	}
}

var errBusy = errors.New("file is being read by another follower")

// openPath opens the file the path names now and claims it.
func (f *follower) openPath() (*openFile, error) { return f.openName(f.path) }

// openName opens the file at name (the path, or a sibling it was rotated to) and
// claims it.
func (f *follower) openName(name string) (*openFile, error) {
	file, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	info, err := file.Stat()
	if err == nil && info.IsDir() {
		err = fmt.Errorf("%s is a directory", name)
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	o := &openFile{File: file, info: info, key: keyOf(file, info), head: readHead(file)}
	start, ok := f.files.claim(o.key, o.head, info.Size())
	if !ok {
		file.Close()
		return nil, errBusy
	}
	o.start = start
	return o, nil
}

// resume returns the files to read, oldest first, given o, the file at the path
// now: where the checkpoint says reading stopped, possibly in a file rotated to
// another name while we were down, then every file after it. Without a usable
// checkpoint it is just o.
func (f *follower) resume(o *openFile) []*openFile {
	if f.cps == nil || f.resumed {
		return []*openFile{o}
	}
	f.resumed = true
	cp, found, err := f.cps.load(f.path)
	if err != nil {
		f.log.Warn("ignoring checkpoint, reading from the head", "path", f.path, "err", err)
		o.start = 0
		return []*openFile{o}
	}
	if !found {
		return []*openFile{o}
	}
	var chain []*openFile
	for _, p := range cp.Files {
		got := o
		if !p.matches(o) {
			got = nil
			if name := findSibling(filepath.Dir(f.path), p); name != "" {
				if s, err := f.openName(name); err == nil {
					if p.matches(s) {
						got = s
					} else {
						f.release(s, s.start)
					}
				}
			}
		}
		if got == nil {
			f.log.Warn("checkpointed file is gone or changed, skipping it", "path", f.path, "inode", p.Ino)
			continue
		}
		got.start = p.Offset
		chain = append(chain, got)
		if got == o {
			return chain
		}
	}
	o.start = 0
	if len(chain) == 0 {
		f.log.Warn("checkpoint matches no file, reading from the head", "path", f.path)
		return []*openFile{o}
	}
	f.log.Info("resuming in a file rotated while stopped", "path", f.path, "file", chain[0].Name())
	// Files rotated in and out while we were down, and not yet checkpointed as
	// pinned, come between the last checkpointed file and the path's file.
	chain = append(chain, f.rotatedBetween(chain[len(chain)-1].key, o.key)...)
	return append(chain, o)
}

// use makes o the file being read, from its start offset.
func (f *follower) use(o *openFile) {
	// A hole punched by rotation (tmpfs) reads as NULs: start after it.
	if d, err := unix.Seek(int(o.Fd()), o.start, unix.SEEK_DATA); err == nil && d > o.start {
		o.start = d
	}
	if _, err := o.Seek(o.start, io.SeekStart); err != nil {
		o.start = 0 // cannot happen on a regular file; reading it all loses nothing
	}
	f.cur, f.off, f.emitted = o, o.start, o.start
	f.checkpoint(true)
	f.mark = f.mark[:0]
	if o.start > 0 {
		f.mark = readAt(o.File, o.start-min(o.start, markLen), int(min(o.start, markLen)))
	}
	f.enc = newEncoder(f.cfg.Format, f.tag, f.path)
}

// release records where reading stopped and closes the file.
func (f *follower) release(o *openFile, off int64) {
	deleted := false
	if info, err := o.Stat(); err == nil {
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			deleted = st.Nlink == 0
		}
	}
	f.files.release(o.key, o.head, off, deleted)
	o.Close()
}

// follow relays the current file until it is replaced or gone (and drained), or ctx
// is done and the file was read to its current EOF; then it reports unchanged.
func (f *follower) follow(ctx context.Context) (change, error) {
	for {
		if ctx.Err() != nil {
			return f.shutdown()
		}
		// Check before reading: reading first would take the bytes of a file
		// truncated and refilled past our offset for more of the old content.
		switch c := f.check(); c {
		case unchanged:
			n, err := f.readToEOF()
			if err != nil {
				return c, err
			}
			f.cut()
			if n > 0 {
				continue // look again before waiting: more may have come
			}
			if err := f.expireRecord(); err != nil {
				return c, err
			}
			f.checkpoint(true)
			select {
			case <-ctx.Done():
			case <-f.wake:
			case <-f.tick.C:
			case <-f.recordExpiry():
			case <-f.cutTick:
			}
		case truncated:
			f.log.Info("file truncated, reading from its start", "path", f.path)
			if err := f.restart(); err != nil {
				return c, err
			}
		default:
			f.pinMu.Lock()
			if f.cur.replaced.IsZero() {
				f.cur.replaced = time.Now()
			}
			f.pinMu.Unlock()
			if err := f.drain(ctx); err != nil {
				return c, err
			}
			if f.pendingCount() > 0 {
				f.log.Info("file rotated, following the new file", "path", f.path)
			}
			return c, f.emitHeld()
		}
	}
}

// cut lets Config.Cut remove what went out from the front of the file, when its
// interval has passed, and moves the offsets down by what it removed.
func (f *follower) cut() {
	if f.cutTick == nil || time.Now().Before(f.nextCut) {
		return
	}
	f.nextCut = time.Now().Add(f.cfg.CutInterval)
	removed, err := f.cfg.Cut(f.path, f.cur.info, f.emitted)
	if err != nil {
		f.log.Error("cannot rotate file, retrying", "path", f.path, "err", err)
	}
	if removed <= 0 {
		return
	}
	f.off -= removed
	f.emitted -= removed
	// The mark's head may have been cut: keep what is left of it, or check would
	// read before offset 0 and take the file for truncated.
	if extra := int64(len(f.mark)) - f.off; extra > 0 {
		f.mark = f.mark[:copy(f.mark, f.mark[extra:])]
	}
	if _, err := f.cur.Seek(f.off, io.SeekStart); err != nil {
		f.log.Error("cannot seek after rotation", "path", f.path, "err", err)
	}
	f.cur.head = readHead(f.cur.File)
	f.saved = filePoint{} // the old checkpoint points into bytes that are gone
	f.checkpoint(true)
}

// shutdown reads what was written before the signal: the current file to EOF, from
// its start if it was truncated, then (through run) every file that replaced it, so
// a rotation just before SIGTERM loses nothing.
func (f *follower) shutdown() (change, error) {
	c := f.check()
	if c == truncated {
		if err := f.restart(); err != nil {
			return c, err
		}
	}
	if _, err := f.readToEOF(); err != nil {
		return c, err
	}
	f.pin()
	if f.pendingCount() > 0 {
		c = replaced
	} else {
		c = unchanged
	}
	err := f.emitHeld()
	if err == nil {
		f.checkpoint(true)
	}
	return c, err
}

// restart goes back to offset 0 of a truncated file.
func (f *follower) restart() error {
	if err := f.emitHeld(); err != nil {
		return err
	}
	if _, err := f.cur.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek %s: %w", f.path, err)
	}
	f.off, f.emitted = 0, 0
	f.mark = f.mark[:0]
	f.cur.head = readHead(f.cur.File)
	return nil
}

// drain reads a replaced or deleted file until it has been quiet for the settle
// period since it was replaced: logrotate's create mode renames first and signals the
// app later, and the app keeps writing to the renamed file until it reopens. Files
// that take the path meanwhile are pinned.
func (f *follower) drain(ctx context.Context) error {
	f.pinMu.Lock()
	quietUntil := f.cur.replaced.Add(f.cfg.Settle)
	f.pinMu.Unlock()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for caughtUp := false; ; caughtUp = true {
		n, err := f.readToEOF()
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
		select {
		case <-ctx.Done():
		case <-f.wake:
		case <-f.tick.C:
		case <-timer.C:
		}
	}
}

// maxPending bounds the files held open for a reader that fell behind rotation (a
// slow stdout). Each costs a descriptor, and its disk space until we are done with
// it; Go raises the soft descriptor limit to the hard one (1M under containerd).
const maxPending = 1024

// watchPath pins every file that takes the path, as soon as a wakeup says the
// directory changed, until ctx is done.
func (f *follower) watchPath(ctx context.Context, wake <-chan struct{}, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		f.pin()
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}

// pin opens the file the path names, if it is not the newest one known, and
// queues it for the reader.
func (f *follower) pin() {
	f.pinMu.Lock()
	defer f.pinMu.Unlock()
	last := f.newest
	if last == nil {
		return // the reader is opening the path itself
	}
	info, err := os.Stat(f.path)
	if err != nil || os.SameFile(info, last.info) {
		return
	}
	if len(f.pending) >= maxPending {
		f.log.Error("reader behind rotation, not holding more files", "path", f.path, "held", len(f.pending))
		return
	}
	o, err := f.openPath()
	if err != nil {
		return // absent again, busy or unreadable: the next look tries again
	}
	if os.SameFile(o.info, last.info) {
		f.release(o, o.start) // replaced back between our stat and open
		return
	}
	now := time.Now()
	if last.replaced.IsZero() {
		last.replaced = now
	}
	missed := f.rotatedBetween(last.key, o.key)
	if len(missed) > 0 {
		f.log.Warn("found files rotated away unseen, reading them first", "path", f.path, "files", len(missed))
	}
	for _, m := range missed {
		m.replaced = now
	}
	f.pending = append(append(f.pending, missed...), o)
	f.newest = o
}

// nextPending takes the oldest pinned file, or says the reader must open the path.
func (f *follower) nextPending() *openFile {
	f.pinMu.Lock()
	defer f.pinMu.Unlock()
	if len(f.pending) == 0 {
		f.newest = nil
		return nil
	}
	next := f.pending[0]
	f.pending = f.pending[1:]
	return next
}

func (f *follower) pendingCount() int {
	f.pinMu.Lock()
	defer f.pinMu.Unlock()
	return len(f.pending)
}

// check stats the path and compares it with the current file.
func (f *follower) check() change {
	info, err := os.Stat(f.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return gone
		}
		// A permission change on a directory: keep reading what is open.
		f.log.Warn("cannot stat file", "path", f.path, "err", err)
		return unchanged
	}
	if !os.SameFile(info, f.cur.info) {
		// Pin it now rather than wait for the pinning goroutine's wakeup: the new
		// file may be rotated away again before that comes.
		f.pin()
		return replaced
	}
	if f.pendingCount() > 0 {
		return replaced
	}
	if info.Size() < f.off {
		return truncated
	}
	if len(f.mark) > 0 && !bytes.Equal(readAt(f.cur.File, f.off-int64(len(f.mark)), len(f.mark)), f.mark) && !f.markPunched() {
		return truncated
	}
	return unchanged
}

// markPunched reports whether the mark differs only because a hole was punched
// over its head (rotation on tmpfs frees what was read, up to a block boundary):
// then what is left of it is still in place, and the mark is cut down to that.
func (f *follower) markPunched() bool {
	from := f.off - int64(len(f.mark))
	data, err := unix.Seek(int(f.cur.Fd()), from, unix.SEEK_DATA)
	if _, serr := f.cur.Seek(f.off, io.SeekStart); serr != nil || err != nil || data <= from || data > f.off {
		return false
	}
	rest := f.mark[data-from:]
	if !bytes.Equal(readAt(f.cur.File, data, len(rest)), rest) {
		return false
	}
	f.mark = f.mark[:copy(f.mark, rest)]
	return true
}

// readToEOF reads and emits until EOF and returns how many bytes it read. Read
// errors end the read (the next wakeup tries again); only output errors are returned.
func (f *follower) readToEOF() (int64, error) {
	var total int64
	for {
		n, err := f.lr.Fill(f.cur)
		if n > 0 {
			total += int64(n)
			f.off += int64(n)
			f.remember(f.lr.Recent(n))
			if err := f.emit(); err != nil {
				return total, err
			}
		}
		if err != nil || n == 0 {
			if err != nil && err != io.EOF {
				f.log.Warn("read error, retrying", "path", f.path, "err", err)
			}
			return total, nil
		}
	}
}

// remember keeps the last markLen bytes read, for check.
func (f *follower) remember(p []byte) {
	if len(p) >= markLen {
		f.mark = append(f.mark[:0], p[len(p)-markLen:]...)
		return
	}
	f.mark = append(f.mark, p...)
	if extra := len(f.mark) - markLen; extra > 0 {
		f.mark = f.mark[:copy(f.mark, f.mark[extra:])]
	}
}

// emit writes every segment the reader has ready. In raw mode without a prefix, runs
// of whole lines go out straight from the read buffer: one write, no copy.
func (f *follower) emit() error {
	now := time.Now()
	for {
		seg, partial, ok := f.lr.Next()
		if !ok {
			return nil
		}
		if f.rec != nil {
			if err := f.rec.add(seg, partial, now, f.flushRecord); err != nil {
				return err
			}
			continue
		}
		if f.enc.plain && !partial {
			if err := f.out.write(seg); err != nil {
				return err
			}
		} else {
			var err error
			if f.outBuf, err = f.enc.writeSegment(f.out, f.outBuf, seg, partial, now); err != nil {
				return err
			}
		}
		f.emitted += int64(len(seg))
		f.checkpoint(false)
	}
}

// emitHeld writes the partial last line as it is, at rotation and shutdown, so it is
// neither dropped nor glued to the next file's first line.
func (f *follower) emitHeld() error {
	held := f.lr.Held()
	if f.rec != nil {
		if err := f.rec.add(held, false, time.Now(), f.flushRecord); err != nil {
			return err
		}
		return f.flushRecord()
	}
	if len(held) == 0 {
		return nil
	}
	var err error
	if f.outBuf, err = f.enc.writeSegment(f.out, f.outBuf, held, false, time.Now()); err != nil {
		return err
	}
	f.emitted += int64(len(held))
	return nil
}

// flushRecord writes the multiline record collected so far, as one write.
func (f *follower) flushRecord() error {
	rec, cut := f.rec.take()
	if len(rec) == 0 {
		return nil
	}
	var err error
	if f.outBuf, err = f.enc.writeRecord(f.out, f.outBuf, rec, cut, f.rec.first); err != nil {
		return err
	}
	f.emitted += int64(len(rec))
	f.checkpoint(false)
	return nil
}

// expireRecord writes a record no line has been added to for the multiline
// timeout: the last trace of a burst is not held back until the next one.
func (f *follower) expireRecord() error {
	if f.rec == nil || len(f.rec.buf) == 0 || time.Since(f.rec.last) < f.cfg.Multiline.Timeout {
		return nil
	}
	return f.flushRecord()
}

// recordExpiry returns a channel that fires when the pending record times out, or
// nil (never fires) when no record is pending.
func (f *follower) recordExpiry() <-chan time.Time {
	if f.rec == nil || len(f.rec.buf) == 0 {
		return nil
	}
	f.recTimer.Reset(time.Until(f.rec.last.Add(f.cfg.Multiline.Timeout)))
	return f.recTimer.C
}

// checkpoint saves how far the output got, when it changed and either the reader
// caught up (idle) or saveBytes were written since the last one.
func (f *follower) checkpoint(idle bool) {
	if f.cps == nil || f.cur == nil {
		return
	}
	cur := filePoint{Dev: f.cur.key.dev, Ino: f.cur.key.ino, Born: f.cur.key.born, Head: f.cur.head, Offset: f.emitted}
	if cur.Offset == f.saved.Offset && cur.key() == f.saved.key() {
		return
	}
	if !idle && cur.key() == f.saved.key() && cur.Offset-f.saved.Offset < saveBytes {
		return
	}
	cp := checkpoint{Path: f.path, Files: []filePoint{cur}}
	f.pinMu.Lock()
	for _, p := range f.pending {
		cp.Files = append(cp.Files, filePoint{Dev: p.key.dev, Ino: p.key.ino, Born: p.key.born, Head: p.head, Offset: p.start})
	}
	f.pinMu.Unlock()
	f.saver.put(func() {
		if err := f.cps.save(cp); err != nil {
			f.log.Warn("cannot save checkpoint", "path", f.path, "err", err)
		}
	})
	f.saved = cur
}

func readHead(file *os.File) []byte { return readAt(file, 0, headLen) }

// readAt returns up to n bytes at off, fewer at EOF.
func readAt(file *os.File, off int64, n int) []byte {
	b := make([]byte, n)
	got, _ := file.ReadAt(b, off)
	return b[:got]
}
