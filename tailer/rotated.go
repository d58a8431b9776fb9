package tailer

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// rotatedBetween opens the files that took the path after the file with key after
// and before the one with key before, but that we never saw there: they were
// rotated away while we were not looking (stopped, CPU-throttled, or behind on
// events while rotations came every few milliseconds). They are found among the
// path's siblings by name, as rotation tools name them, and by birth time; oldest
// first. Without birth times (a filesystem without them) nothing is found.
//
// Birth times come from a coarse clock (one tick, a few milliseconds), so files
// born in the same tick as after or before count too. One already read is harmless:
// the registry knows where we left it, at its end.
func (f *follower) rotatedBetween(after, before fileKey) []*openFile {
	if after.born == 0 || before.born == 0 || before.born < after.born {
		return nil
	}
	dir, base := filepath.Split(f.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var found []*openFile
	for _, e := range entries {
		name := filepath.Join(dir, e.Name())
		if !e.Type().IsRegular() || !rotatedName(base, e.Name()) {
			continue
		}
		// A stat by name first: opening every archive in the directory would cost
		// more, and claim them in the registry for nothing.
		var stx unix.Statx_t
		if unix.Statx(unix.AT_FDCWD, name, 0, unix.STATX_BTIME, &stx) != nil || stx.Mask&unix.STATX_BTIME == 0 {
			continue
		}
		born := stx.Btime.Sec*1e9 + int64(stx.Btime.Nsec)
		if born < after.born || born > before.born {
			continue
		}
		o, err := f.openName(name)
		if err != nil {
			continue
		}
		if o.key == after || o.key == before || o.key.born != born || o.key.dev != after.dev {
			f.release(o, o.start)
			continue
		}
		found = append(found, o)
	}
	slices.SortFunc(found, func(a, b *openFile) int {
		if c := cmp.Compare(a.key.born, b.key.born); c != 0 {
			return c
		}
		return olderName(base, filepath.Base(a.Name()), filepath.Base(b.Name()))
	})
	return found
}

// olderName orders two rotated names, older first, for files born in the same clock
// tick: app.log.2 before app.log.1 (numbered archives shift up), otherwise by name
// (dates and timestamps sort in time order).
func olderName(base, a, b string) int {
	na, errA := strconv.Atoi(strings.TrimPrefix(a, base+"."))
	nb, errB := strconv.Atoi(strings.TrimPrefix(b, base+"."))
	if errA == nil && errB == nil {
		return cmp.Compare(nb, na)
	}
	return strings.Compare(a, b)
}

// rotatedName reports whether name is how rotation tools rename base: logrotate's
// app.log.1 and app.log-20261122, lumberjack's app-2026-11-22T19-50-00.000.log,
// log4j's app.1.log. Compressed archives are not: their bytes are not lines.
func rotatedName(base, name string) bool {
	if name == base {
		return false
	}
	for _, z := range []string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z"} {
		if strings.HasSuffix(name, z) {
			return false
		}
	}
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	for _, sep := range []string{".", "-", "_"} {
		if strings.HasPrefix(name, base+sep) {
			return true
		}
		if ext != "" && strings.HasPrefix(name, stem+sep) && strings.HasSuffix(name, ext) && len(name) > len(stem+sep+ext) {
			return true
		}
	}
	return false
}
