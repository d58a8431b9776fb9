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
	"syscall"
	"time"
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

// follower follows one path. It owns its file, buffers and goroutine; only the
// output is shared.
type follower struct {
	path, tag string
	cfg       *Config
	out       *Output
	files     *registry
	log       *slog.Logger
	fromTail  bool // start the first file at its end (--from=tail, file present at start)
	globbed   bool // found by a glob: stop once the path is gone, the scanner restarts it

	wake <-chan struct{}
	tick *time.Ticker

	file   *os.File
	info   fs.FileInfo
	key    fileKey
	head   []byte
	off    int64
	mark   []byte
	lr     *LineReader
	enc    *encoder
	outBuf []byte
}

// run follows the path until ctx is done (then drains) or, for a globbed path, until
// the file is gone and drained. It returns only output errors.
func (f *follower) run(ctx context.Context, w *Watcher) error {
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
	f.lr = NewLineReader(f.cfg.MaxLine)

	for {
		if !f.open(ctx) {
			return nil
		}
		next, err := f.follow(ctx)
		f.close()
		// follow reports unchanged only once ctx is done and the file drained.
		if err != nil || next == unchanged || next == gone && f.globbed {
			return err
		}
	}
}

// open opens the path, waiting while it is absent or unreadable. It reports false
// when ctx is done first, or when a globbed path is gone.
func (f *follower) open(ctx context.Context) bool {
	var reported error
	for {
		err := f.tryOpen()
		if err == nil {
			if reported != nil {
				f.log.Info("following file", "path", f.path)
			}
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
		if ctx.Err() != nil {
			// One last look: a file created just before the signal is read too.
			return f.tryOpen() == nil
		}
	}
}

var errBusy = errors.New("file is being read by another follower")

func (f *follower) tryOpen() error {
	file, err := os.Open(f.path)
	if err != nil {
		return err
	}
	info, err := file.Stat()
	if err == nil && info.IsDir() {
		err = fmt.Errorf("%s is a directory", f.path)
	}
	if err != nil {
		file.Close()
		return err
	}
	key := keyOf(file, info)
	head := readHead(file)
	start, ok := f.files.claim(key, head, info.Size())
	if !ok {
		file.Close()
		return errBusy
	}
	if f.fromTail {
		start = info.Size()
		f.fromTail = false
	}
	if _, err := file.Seek(start, io.SeekStart); err != nil {
		f.files.release(key, head, 0, false)
		file.Close()
		return fmt.Errorf("seek %s: %w", f.path, err)
	}
	f.file, f.info, f.key, f.head, f.off = file, info, key, head, start
	f.mark = f.mark[:0]
	if start > 0 {
		f.mark = readAt(file, start-min(start, markLen), int(min(start, markLen)))
	}
	f.enc = newEncoder(f.cfg.Format, f.tag, f.path)
	return nil
}

func (f *follower) close() {
	deleted := false
	if info, err := f.file.Stat(); err == nil {
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			deleted = st.Nlink == 0
		}
	}
	f.files.release(f.key, f.head, f.off, deleted)
	f.file.Close()
	f.file = nil
}

// follow relays the open file until it is replaced or gone (and drained), or ctx is
// done and the file was read to its current EOF; then it reports unchanged.
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
			if n > 0 {
				continue // look again before waiting: more may have come
			}
			select {
			case <-ctx.Done():
			case <-f.wake:
			case <-f.tick.C:
			}
		case truncated:
			f.log.Info("file truncated, reading from its start", "path", f.path)
			if err := f.restart(); err != nil {
				return c, err
			}
		default:
			if err := f.drain(ctx); err != nil {
				return c, err
			}
			if c == replaced {
				f.log.Info("file rotated, following the new file", "path", f.path)
			}
			return c, f.emitHeld()
		}
	}
}

// shutdown reads what was written before the signal: the open file to EOF, from
// its start if it was truncated. A file that replaced it is reported so run reads
// it too: a rotation just before SIGTERM loses nothing.
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
	if c != replaced {
		c = unchanged
	}
	return c, f.emitHeld()
}

// restart goes back to offset 0 of a truncated file.
func (f *follower) restart() error {
	if err := f.emitHeld(); err != nil {
		return err
	}
	if _, err := f.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek %s: %w", f.path, err)
	}
	f.off = 0
	f.mark = f.mark[:0]
	f.head = readHead(f.file)
	return nil
}

// drain reads a replaced or deleted file until it has been quiet for the settle
// period: logrotate's create mode renames first and signals the app later, and the
// app keeps writing to the renamed file until it reopens.
func (f *follower) drain(ctx context.Context) error {
	quiet := time.NewTimer(f.cfg.Settle)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			_, err := f.readToEOF()
			return err
		case <-f.wake:
		case <-f.tick.C:
		case <-quiet.C:
			n, err := f.readToEOF()
			if n == 0 || err != nil {
				return err
			}
			quiet.Reset(f.cfg.Settle)
			continue
		}
		n, err := f.readToEOF()
		if err != nil {
			return err
		}
		if n > 0 {
			quiet.Reset(f.cfg.Settle)
		}
	}
}

// check stats the path and compares it with the open file.
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
	if !os.SameFile(info, f.info) {
		return replaced
	}
	if info.Size() < f.off {
		return truncated
	}
	if len(f.mark) > 0 && !bytes.Equal(readAt(f.file, f.off-int64(len(f.mark)), len(f.mark)), f.mark) {
		return truncated
	}
	return unchanged
}

// readToEOF reads and emits until EOF and returns how many bytes it read. Read
// errors end the read (the next wakeup tries again); only output errors are returned.
func (f *follower) readToEOF() (int64, error) {
	var total int64
	for {
		n, err := f.lr.Fill(f.file)
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
		if f.enc.plain && !partial {
			if err := f.out.write(seg); err != nil {
				return err
			}
			continue
		}
		f.outBuf = f.enc.appendSegment(f.outBuf[:0], seg, partial, now)
		if err := f.out.write(f.outBuf); err != nil {
			return err
		}
	}
}

// emitHeld writes the partial last line as it is, at rotation and shutdown, so it is
// neither dropped nor glued to the next file's first line.
func (f *follower) emitHeld() error {
	held := f.lr.Held()
	if len(held) == 0 {
		return nil
	}
	f.outBuf = f.enc.appendSegment(f.outBuf[:0], held, false, time.Now())
	return f.out.write(f.outBuf)
}

func readHead(file *os.File) []byte { return readAt(file, 0, headLen) }

// readAt returns up to n bytes at off, fewer at EOF.
func readAt(file *os.File, off int64, n int) []byte {
	b := make([]byte, n)
	got, _ := file.ReadAt(b, off)
	return b[:got]
}
