package tailer

import (
	"io/fs"
	"log/slog"
	"time"
)

// cutter calls Config.Cut for one file every CutInterval, from the follower's
// goroutine between reads, so what it removes never races the reading.
type cutter struct {
	path     string
	log      *slog.Logger
	fn       func(path string, reading fs.FileInfo, emitted int64) (removed int64, err error)
	total    func(path string, reading fs.FileInfo) (int64, error) // Config.Removed
	interval time.Duration
	// tick wakes an idle follower; next keeps a busy one, which never waits,
	// cutting too.
	tick *time.Ticker
	next time.Time
}

// newCutter returns nil (no cuts) when rotation is off or the path came from a
// glob: rotation is refused for globs.
func newCutter(cfg *Config, path string, globbed bool) *cutter {
	if cfg.Cut == nil || globbed {
		return nil
	}
	return &cutter{path: path, log: cfg.Log, fn: cfg.Cut, total: cfg.Removed, interval: cfg.CutInterval}
}

// start starts the ticker until the returned stop is called.
func (c *cutter) start() (stop func()) {
	if c == nil {
		return func() {}
	}
	c.tick = time.NewTicker(c.interval)
	return c.tick.Stop
}

// C fires when a cut is due for an idle follower; nil (never) without cuts.
func (c *cutter) C() <-chan time.Time {
	if c == nil {
		return nil
	}
	return c.tick.C
}

// cut calls Config.Cut if its interval has passed, and returns how many bytes it
// removed from the front of the file the follower reads; ok is false when it did
// not call it.
func (c *cutter) cut(reading fs.FileInfo, emitted int64) (removed int64, ok bool) {
	if c == nil || time.Now().Before(c.next) {
		return 0, false
	}
	c.next = time.Now().Add(c.interval)
	removed, err := c.fn(c.path, reading, emitted)
	if err != nil {
		c.log.Error("cannot rotate file, retrying", "path", c.path, "err", err)
	}
	return removed, true
}

// removed returns how many bytes cuts have removed from the front of the file
// reading, in all, finishing first a cut that a crash interrupted; 0 without cuts.
func (c *cutter) removed(reading fs.FileInfo) int64 {
	if c == nil || c.total == nil {
		return 0
	}
	n, err := c.total(c.path, reading)
	if err != nil {
		c.log.Error("cannot read the rotation state, offsets may be off", "path", c.path, "err", err)
	}
	return n
}
