package tailer

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// globRescan is how often a glob with metacharacters in its directory part is
// matched again: no one folder's events tell when it matches more.
const globRescan = time.Second

// globber follows every file one glob matches, now and later. A file that vanishes
// is drained by its follower, which then ends; the file is followed again if it
// returns.
type globber struct {
	t        *tailer
	src      Source
	followed map[string]bool
	ended    chan string // a follower's path, when it ends
	errc     chan error  // the first output error of a follower
	running  sync.WaitGroup
	news     newNames
}

// maxNewNames bounds the names created in the glob's folder that wait for the
// scanner; past it they are dropped, and the folder is matched again instead.
const maxNewNames = 4096

// newNames are the names created in the glob's folder since the scanner last
// looked: the watcher adds them, the scanner takes them.
type newNames struct {
	mu    sync.Mutex
	names []string
	lost  bool // names were dropped: match the whole folder
}

// add queues name, on the watcher's goroutine; past maxNewNames, the queue is
// dropped for a match of the whole folder.
func (n *newNames) add(name []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.names) >= maxNewNames {
		n.names, n.lost = nil, true
	}
	if !n.lost {
		n.names = append(n.names, string(name))
	}
}

// take returns the names added since the last take; known is false when some
// were dropped.
func (n *newNames) take() (names []string, known bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	names, known = n.names, !n.lost
	n.names, n.lost = nil, false
	return names, known
}

// scan runs the glob's followers until ctx is done or one of them fails writing.
func (t *tailer) scan(ctx context.Context, src Source, scanned func()) error {
	g := &globber{t: t, src: src, followed: map[string]bool{}, ended: make(chan string), errc: make(chan error, 1)}
	// The names created in the glob's directory, when it has no metacharacters,
	// make new files show up at once (the watcher polls it where it has no
	// events, and then the whole folder is matched); a glob over directories is
	// matched again every globRescan.
	dir := filepath.Dir(src.Path)
	sub := newSubscription(nil)
	sub.writes.Store(noWrites) // writes make no new names
	sub.created = g.news.add
	var rescan <-chan time.Time
	if IsGlob(dir) {
		tick := time.NewTicker(globRescan)
		defer tick.Stop()
		rescan = tick.C
	} else {
		t.watcher.Subscribe(dir, sub)
		defer t.watcher.Unsubscribe(dir, sub)
	}

	// Returning on an output error must stop the followers too (they run until
	// their context ends), or waiting for them would never end.
	defer g.running.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub.renamed() // the first match is made here
	g.start(ctx, t.cfg.FromTail)
	scanned() // readiness: the glob was matched once
	for {
		select {
		case <-ctx.Done():
			g.start(ctx, false) // files created just before the signal are drained too
			return nil
		case err := <-g.errc:
			return err
		case m := <-g.ended:
			// A file that took the path after its follower last looked raised
			// its event while the path was still followed: it is looked at now.
			g.restart(ctx, m)
		case <-sub.wake:
			names, known := g.news.take()
			if sub.renamed() || !known {
				g.start(ctx, false)
				continue
			}
			pattern := filepath.Base(src.Path) // dir has no metacharacters here
			for _, name := range names {
				if ok, _ := filepath.Match(pattern, name); ok {
					g.follow(ctx, filepath.Join(dir, name), false) // as Glob names it
				}
			}
		case <-rescan:
			g.start(ctx, false)
		}
	}
}

// restart notes the end of the follower of m and of every other follower waiting
// to report one, and follows again those whose path names a file. Taken all at
// once, a thousand files rotated at once cost no more than one.
func (g *globber) restart(ctx context.Context, m string) {
	ended := []string{m}
	for more := true; more; {
		select {
		case m := <-g.ended:
			ended = append(ended, m)
		default:
			more = false
		}
	}
	for _, m := range ended {
		delete(g.followed, m)
	}
	for _, m := range ended {
		g.follow(ctx, m, false)
	}
}

// start follows every match not followed yet; fromTail starts them at their end.
func (g *globber) start(ctx context.Context, fromTail bool) {
	matches, _ := filepath.Glob(g.src.Path) // the pattern was checked at start-up
	for _, m := range matches {
		g.follow(ctx, m, fromTail)
	}
}

// follow starts a follower for m, a match of the glob, unless it has one or m
// is not a file (now).
func (g *globber) follow(ctx context.Context, m string, fromTail bool) {
	if g.followed[m] {
		return
	}
	if info, err := os.Stat(m); err != nil || info.IsDir() {
		return
	}
	g.followed[m] = true
	tag := g.src.Tag
	if tag == "" {
		tag = DefaultTag(m)
	}
	f := g.t.follower(m, tag, followOpts{fromTail: fromTail, globbed: true})
	g.running.Add(1)
	f.start(ctx, g.t.watcher, func(err error) {
		defer g.running.Done()
		if err != nil {
			select {
			case g.errc <- err:
			default:
			}
		}
		select {
		case g.ended <- m:
		case <-ctx.Done():
		}
	})
	firstLook()
}
