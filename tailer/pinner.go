package tailer

import (
	"log/slog"
	"os"
	"sync"
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
	log   *slog.Logger

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
	p.newest = chain[len(chain)-1]
}

// closeAll closes the files still pending, when the follower ends.
func (p *pinner) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range p.pending {
		p.files.close(o, o.start)
	}
	p.pending = nil
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
	missed := rotatedBetween(p.files, resolved(p.path), last.key, o.key)
	if len(missed) > 0 {
		p.log.Warn("found files rotated away unseen, reading them first", "path", p.path, "files", len(missed))
	}
	for _, m := range missed {
		m.replaced = now
	}
	p.pending = append(append(p.pending, missed...), o)
	p.newest = o
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
