package tailer

import (
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
)

// maxPending bounds the files held open for a reader that fell behind rotation (a
// slow stdout). Each costs a descriptor, and its disk space until we are done with
// it; Go raises the soft descriptor limit to the hard one (1M under containerd).
const maxPending = 1024

// pinner holds the files that took a path after the one being read, opened the
// moment they were seen: a file rotated away and deleted before the reader got to
// it (a slow stdout, a rotation every few milliseconds) stays readable through our
// descriptor, so rotation chains lose nothing. pin runs on the watcher's goroutine
// (on events that change names) as well as the follower's: its lock is the only
// one a follower shares with another goroutine.
type pinner struct {
	path  string
	files *registry
	// siblings lists the folder when files rotated away unseen are looked for.
	siblings *siblings
	log      *slog.Logger
	m        *FileMetrics
	// maxHeld bounds the disk that pinned files already deleted keep in use (an
	// emptyDir's sizeLimit counts them); 0: no bound, nothing is given up.
	maxHeld int64
	warned  time.Time // when the disk they hold was last reported
	// gaveUp counts the files given up and their unread bytes; each report
	// carries the totals (the log is rate-limited per message and path).
	gaveUp, gaveUpBytes int64

	mu      sync.Mutex
	pending []*openFile // oldest first
	// newest is the last file known at the path (the one being read or the last
	// pending); nil while the reader looks for the path itself.
	newest *openFile
}

// begin records the files the reader starts with after opening the path itself:
// it reads chain[0], the rest wait in line.
func (p *pinner) begin(chain []*openFile) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, chain[1:]...)
	for _, o := range chain[1:] {
		p.m.Pin(o.File, o.start)
	}
	p.newest = chain[len(chain)-1]
}

// closeAll closes the files still pending, when the follower ends, and stops
// pinning.
func (p *pinner) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gaveUp > 0 {
		// The last word on what was lost, past the log's rate limit.
		p.log.Error("files given up while the reader was behind", "path", p.path,
			"given_up_files", p.gaveUp, "given_up_bytes", p.gaveUpBytes)
	}
	for _, o := range p.pending {
		p.files.close(o, o.start)
	}
	p.pending = nil
	p.newest = nil // a wakeup handed out as the follower ended pins nothing more
}

// pin opens the file the path names, if it is not the newest one known, and
// queues it for the reader, after any files rotated away unseen before it.
func (p *pinner) pin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.newest
	if last == nil {
		return // the reader is opening the path itself
	}
	info, err := os.Stat(p.path)
	if err != nil || os.SameFile(info, last.info) {
		return
	}
	if len(p.pending) >= maxPending {
		p.log.Error("reader behind rotation, not holding more files", "path", p.path, "held", len(p.pending))
		return
	}
	o, err := p.files.open(p.path)
	if err != nil {
		return // absent again, busy or unreadable: the next look tries again
	}
	if os.SameFile(o.info, last.info) {
		p.files.close(o, o.start) // replaced back between our stat and open
		return
	}
	now := time.Now()
	if last.replaced.IsZero() {
		last.replaced = now
	}
	missed := rotatedBetween(p.files, p.siblings, resolved(p.path), last.key, o.key, o.info)
	if len(missed) > 0 {
		p.log.Warn("found files rotated away unseen, reading them first", "path", p.path, "files", len(missed))
	}
	for _, m := range missed {
		m.replaced = now
		p.m.Pin(m.File, m.start)
	}
	p.m.Pin(o.File, o.start)
	p.pending = append(append(p.pending, missed...), o)
	p.newest = o
	p.bound()
}

// heldWarn is how much disk pinned deleted files may keep before it is reported
// (once a minute), when no bound is set.
const heldWarn = 64 << 20

// bound reports the disk pinned deleted files keep, once a minute while above half
// the bound (or heldWarn), and gives up the oldest of them while above the bound:
// its unread bytes are lost, and said so. Called with mu held.
func (p *pinner) bound() {
	warnAt := int64(heldWarn)
	if p.maxHeld > 0 {
		warnAt = p.maxHeld / 2
	}
	for {
		held, oldest := p.held()
		if held > warnAt && time.Since(p.warned) >= time.Minute {
			p.warned = time.Now()
			p.log.Warn("reader behind: deleted files held open for it keep disk in use",
				"path", p.path, "pinned", len(p.pending), "held_bytes", held)
		}
		if p.maxHeld == 0 || held <= p.maxHeld || oldest < 0 {
			return
		}
		o := p.pending[oldest]
		unread := int64(0)
		if info, err := o.Stat(); err == nil {
			unread = max(0, info.Size()-o.start)
		}
		p.gaveUp++
		p.gaveUpBytes += unread
		p.m.Abandoned(unread)
		p.m.Unpin(o.File)
		p.log.Error("giving up a deleted file the reader did not get to: its unread bytes are lost",
			"path", p.path, "file", o.Name(), "unread_bytes", unread, "held_bytes", held, "max_pinned_bytes", p.maxHeld,
			"given_up_files", p.gaveUp, "given_up_bytes", p.gaveUpBytes)
		p.pending = append(p.pending[:oldest], p.pending[oldest+1:]...)
		p.files.close(o, o.start)
	}
}

// held returns the disk the pinned files already deleted keep in use, and the index
// of the oldest of them (-1: none). Called with mu held.
func (p *pinner) held() (bytes int64, oldest int) {
	oldest = -1
	for i, o := range p.pending {
		info, err := o.Stat()
		if err != nil {
			continue
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink == 0 {
			bytes += st.Blocks * 512
			if oldest < 0 {
				oldest = i
			}
		}
	}
	return bytes, oldest
}

// next takes the oldest pinned file, or returns nil: the reader must open the path.
func (p *pinner) next() *openFile {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		p.newest = nil
		return nil
	}
	next := p.pending[0]
	p.pending = p.pending[1:]
	p.m.Unpin(next.File)
	return next
}

func (p *pinner) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// replaced returns when another file took o's place at the path, noting now if
// nobody noticed before.
func (p *pinner) replaced(o *openFile) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o.replaced.IsZero() {
		o.replaced = time.Now()
	}
	return o.replaced
}

// points returns where each pending file is to be read from, for a checkpoint.
func (p *pinner) points() []filePoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	points := make([]filePoint, 0, len(p.pending))
	for _, o := range p.pending {
		points = append(points, pointOf(o, o.start))
	}
	return points
}
