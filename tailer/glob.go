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
}

// scan runs the glob's followers until ctx is done or one of them fails writing.
func (t *tailer) scan(ctx context.Context, src Source, scanned func()) error {
	g := &globber{t: t, src: src, followed: map[string]bool{}, ended: make(chan string), errc: make(chan error, 1)}
	// Wakeups from the glob's directory, when it has no metacharacters, make new
	// files show up at once (the watcher polls it where it has no events); a glob
	// over directories is matched again every globRescan.
	dir := filepath.Dir(src.Path)
	sub := newSubscription(nil)
	sub.writes.Store(noWrites) // writes make no new names
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
			delete(g.followed, m)
		case <-sub.wake:
		case <-rescan:
		}
		g.start(ctx, false)
	}
}

// start follows every match not followed yet; fromTail starts them at their end.
func (g *globber) start(ctx context.Context, fromTail bool) {
	matches, _ := filepath.Glob(g.src.Path) // the pattern was checked at start-up
	for _, m := range matches {
		if g.followed[m] {
			continue
		}
		if info, err := os.Stat(m); err != nil || info.IsDir() {
			continue
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
}
