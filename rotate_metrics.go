package main

import (
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/sidetail/sidetail/internal/prom"
	"github.com/sidetail/sidetail/rotate"
)

// rotateMetrics counts what the cuts of each rotated file did. The path label is
// bounded: rotation needs plain paths, never globs.
type rotateMetrics struct {
	mu    sync.Mutex
	files map[string]*rotateCounters
}

type rotateCounters struct {
	cuts                                map[rotate.Method]int64
	fallbacks                           map[rotate.Fallback]int64
	archivedBytes, removedBytes, errors int64
	deletedByCount, deletedByAge        int64
}

// cutMethods are the values of the method label, in the order --method=auto
// tries them: a fallback goes from one to the next.
var cutMethods = [...]rotate.Method{rotate.Collapse, rotate.Punch, rotate.CopyTruncate}

// cut records what one call of rotate.File.Cut on path did.
func (r *rotateMetrics) cut(path string, res rotate.Result, err error) {
	if r == nil {
		return
	}
	var archived int64
	if res.Archive != "" {
		if info, serr := os.Stat(res.Archive); serr == nil {
			archived = info.Size()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.counters(path)
	if err != nil {
		c.errors++
	}
	if res.Method != "" {
		c.cuts[res.Method]++
	}
	for _, fb := range res.Fallbacks {
		c.fallbacks[fb]++
	}
	c.archivedBytes += archived
	c.removedBytes += res.Removed
	c.deletedByCount += int64(res.Deleted.ByCount)
	c.deletedByAge += int64(res.Deleted.ByAge)
}

// counters returns path's counters, creating them; r.mu is held.
func (r *rotateMetrics) counters(path string) *rotateCounters {
	if r.files == nil {
		r.files = map[string]*rotateCounters{}
	}
	c := r.files[path]
	if c == nil {
		c = &rotateCounters{cuts: map[rotate.Method]int64{}, fallbacks: map[rotate.Fallback]int64{}}
		r.files[path] = c
	}
	return c
}

// track makes path appear in the exposition, at zero, before its first cut.
func (r *rotateMetrics) track(path string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counters(path)
}

// write appends the rotation families, every series at zero from the start so
// that increase() sees the first cut, fallback and deletion.
func (r *rotateMetrics) write(w *prom.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.files) == 0 {
		return
	}
	paths := slices.Sorted(maps.Keys(r.files))
	w.Family("sidetail_rotate_cuts_total", prom.Counter, "Cuts of the live file, by the method that took the head off it (copytruncate: or is to take it at the next cut).")
	for _, p := range paths {
		for _, m := range cutMethods {
			w.Int(r.files[p].cuts[m], "path", p, "method", string(m))
		}
	}
	w.Family("sidetail_rotate_method_fallbacks_total", prom.Counter, "Moves to the next method because the filesystem refused one (EOPNOTSUPP) with --method=auto.")
	for _, p := range paths {
		for i := range len(cutMethods) - 1 {
			fb := rotate.Fallback{From: cutMethods[i], To: cutMethods[i+1]}
			w.Int(r.files[p].fallbacks[fb], "path", p, "from", string(fb.From), "to", string(fb.To))
		}
	}
	w.Family("sidetail_rotate_archives_deleted_total", prom.Counter, "Archives deleted: beyond --max-files (reason count) or older than --max-age (reason age).")
	for _, p := range paths {
		w.Int(r.files[p].deletedByCount, "path", p, "reason", "count")
		w.Int(r.files[p].deletedByAge, "path", p, "reason", "age")
	}
	for _, f := range []struct {
		name, help string
		v          func(*rotateCounters) int64
	}{
		{"sidetail_rotate_archived_bytes_total", "Bytes written to archives (compressed size with --compress).",
			func(c *rotateCounters) int64 { return c.archivedBytes }},
		{"sidetail_rotate_removed_bytes_total", "Bytes collapsed out of the front of the live file.",
			func(c *rotateCounters) int64 { return c.removedBytes }},
		{"sidetail_rotate_errors_total", "Cuts that failed (retried at the next check).",
			func(c *rotateCounters) int64 { return c.errors }},
	} {
		w.Each(f.name, prom.Counter, f.help, "path", paths, func(i int) float64 { return float64(f.v(r.files[paths[i]])) })
	}
}
