package tailer

import (
	"cmp"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sidetail/sidetail/internal/fileid"
	"golang.org/x/sys/unix"
)

// resolved returns the file a path names, through symbolic links: files rotated
// away from a link's target are found beside the target, under its name.
func resolved(path string) string {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		return target
	}
	return path
}

// findFile opens the file p describes among the siblings in dir, under any name: a
// file rotated while sidetail was down (app.log is now app.log.1). It returns nil
// when none is that file, unchanged up to p's offset.
func findFile(files *registry, dir string, p filePoint) *openFile {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || fileid.Inode(info) != (fileid.Key{Dev: p.Dev, Ino: p.Ino}) {
			continue
		}
		o, err := files.open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil
		}
		if !p.matches(o) {
			files.close(o, o.start)
			return nil
		}
		return o
	}
	return nil
}

// rotatedBetween opens the files that took path after the file with key after and
// before the one with key before, but that we never saw there: they were rotated
// away while we were not looking (stopped, CPU-throttled, or behind on events while
// rotations came every few milliseconds). They are found among the path's siblings
// by name, as rotation tools name them, and by birth time; oldest first. Without
// birth times (a filesystem without them) nothing is found.
//
// Birth times come from a coarse clock (one tick, a few milliseconds), so files
// born in the same tick as after or before count too. One already read is harmless:
// the registry knows where we left it, at its end.
//
// The folder is listed by sib, which may give a listing made for another
// follower: one begun after the file before took the path (see siblings.list).
func rotatedBetween(files *registry, sib *siblings, path string, after, before fileid.Key, beforeInfo fs.FileInfo) []*openFile {
	if after.Born == 0 || before.Born == 0 || before.Born < after.Born {
		return nil
	}
	dir, base := filepath.Dir(path), filepath.Base(path) // a relative path's folder is "."
	names, err := sib.list(dir, beforeInfo)
	if err != nil {
		return nil
	}
	var found []*openFile
	for _, name := range names {
		if !rotatedName(base, name) {
			continue
		}
		if o := openBornBetween(files, filepath.Join(dir, name), after, before); o != nil {
			found = append(found, o)
		}
	}
	slices.SortFunc(found, func(a, b *openFile) int {
		if c := cmp.Compare(a.key.Born, b.key.Born); c != 0 {
			return c
		}
		return olderName(base, filepath.Base(a.Name()), filepath.Base(b.Name()))
	})
	return found
}

// siblings lists folders for rotatedBetween, one listing shared by the looks that
// it serves. A thousand files of one folder rotated at once each looked for files
// rotated away unseen, on the watcher's goroutine: a thousand listings of a
// folder of thousands put it so far behind that files came and went unseen.
type siblings struct {
	mu    sync.Mutex
	dir   string
	names []string
	began time.Time // with its monotonic reading
}

// Bounds on a listing another look may use. A file that took the path arrived
// by its change time (a rename sets it, as does every write) plus one tick of the
// coarse clock that stamps it (10 ms at HZ=100): files rotated away before it
// arrived are in a listing begun after that. A listing older than maxListingAge
// is made again: the names of archives shift (.1 to .2) as rotations go on.
const (
	coarseTick    = 10 * time.Millisecond
	maxListingAge = 100 * time.Millisecond
)

// list returns the names in dir, unsorted, from a listing begun after the file
// described by arrived took its path. A nil siblings lists dir each time.
func (s *siblings) list(dir string, arrived fs.FileInfo) ([]string, error) {
	if s == nil {
		return readNames(dir)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == dir && time.Since(s.began) < maxListingAge {
		if st, ok := arrived.Sys().(*syscall.Stat_t); ok && time.Unix(st.Ctim.Unix()).Add(coarseTick).Before(s.began) {
			return s.names, nil
		}
	}
	began := time.Now()
	names, err := readNames(dir)
	if err != nil {
		return nil, err
	}
	s.dir, s.names, s.began = dir, names, began
	return names, nil
}

// readNames lists dir: names only, unsorted, a fraction of the cost of
// os.ReadDir's entries and sort (a thousand files of one folder rotated at once
// each list it, on the watcher's goroutine).
func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

// openBornBetween opens and claims the file at name if it was born between the
// files after and before, on the same device, and is neither of them.
func openBornBetween(files *registry, name string, after, before fileid.Key) *openFile {
	// A stat by name first: opening every archive in the directory would cost more,
	// and claim them in the registry for nothing. Regular files only, not links.
	var stx unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, name, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME|unix.STATX_TYPE, &stx) != nil ||
		stx.Mask&unix.STATX_BTIME == 0 || stx.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil
	}
	born := stx.Btime.Sec*1e9 + int64(stx.Btime.Nsec)
	if born < after.Born || born > before.Born {
		return nil
	}
	o, err := files.open(name)
	if err != nil {
		return nil
	}
	if o.key == after || o.key == before || o.key.Born != born || o.key.Dev != after.Dev {
		files.close(o, o.start)
		return nil
	}
	return o
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
	if sepAfter(name, base) {
		return true
	}
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	return ext != "" && sepAfter(name, stem) && strings.HasSuffix(name, ext) && len(name) > len(stem)+1+len(ext)
}

// sepAfter reports whether name begins with prefix and a separator of rotated
// names (".", "-" or "_"), without building the strings: every name of a folder
// of thousands goes through here at each rotation.
func sepAfter(name, prefix string) bool {
	return len(name) > len(prefix) && strings.HasPrefix(name, prefix) && strings.IndexByte(".-_", name[len(prefix)]) >= 0
}
