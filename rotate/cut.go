package rotate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sidetail/sidetail/internal/fileid"
)

// File rotates one live file. Its methods are called from one goroutine.
type File struct {
	path      string
	cfg       Config
	log       *slog.Logger
	dir       string // where archives and the state file go
	stem, ext string // app.log: "app", ".log"
	method    Method // the method in use; Auto moves to the next one on EOPNOTSUPP
	st        state
	loaded    bool // st was read from disk and leftovers removed
	warned    bool // the copytruncate warning was given
}

// NewFile returns the rotator of the file at path.
func NewFile(path string, cfg Config) *File {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	dir := cfg.ArchiveDir
	if dir == "" {
		dir = filepath.Dir(path)
	}
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	method := cfg.Method
	if method == Auto || method == "" {
		method = Collapse
	}
	return &File{path: path, cfg: cfg, log: cfg.Log, dir: dir, stem: strings.TrimSuffix(base, ext), ext: ext, method: method}
}

// Result says what a cut did.
type Result struct {
	Archive string // the archive written; empty when nothing was cut
	// Removed is how many bytes left the front of the file (collapse): every offset
	// in it moved down by this much.
	Removed int64
}

// Cut archives the file's head and removes it from the file, if the file holds at
// least MaxSize bytes not archived yet. Only bytes below limit are archived (a
// follower passes what it has written out; -1: no limit). When reading is not
// nil, the cut is made only if the path still names that file. A missing file is
// not an error: it is waited for.
func (f *File) Cut(limit int64, reading fs.FileInfo) (Result, error) {
	if !f.loaded {
		f.loaded = true
		f.st = loadState(f.statePath())
		f.removeLeftovers()
	}
	if f.cfg.MaxAge > 0 {
		if err := f.prune(f.cfg.MaxFiles); err != nil {
			return Result{}, err
		}
	}
	live, err := f.openLive()
	if errors.Is(err, fs.ErrNotExist) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	defer live.Close()
	info, err := live.Stat()
	if err != nil {
		return Result{}, fmt.Errorf("stat %s: %w", f.path, err)
	}
	if reading != nil && !os.SameFile(info, reading) {
		return Result{}, nil // replaced since the follower looked: its next look sees it
	}
	size := info.Size()
	key := fileid.Inode(info)
	start := f.start(live, key, size)
	if size-start < f.cfg.MaxSize {
		return Result{}, nil
	}
	// One archive takes everything whole: a cut costs four fsyncs whatever its
	// size, which under I/O pressure (100 ms each) would let a writer outrun
	// cuts of MaxSize each.
	end := size
	if limit >= 0 && limit < end {
		end = limit
	}
	if f.method == CopyTruncate {
		return f.copyTruncate(live, key, start)
	}
	blk := blockSize(live)
	lineEnd, err := lastLineEnd(live, start, end)
	if err != nil {
		return Result{}, err
	}
	// The cut is the last line end, or, for one line longer than MaxSize (split,
	// or the file would grow without bound), the limit; down to a block boundary.
	cut := lineEnd
	if lineEnd == 0 && end-start >= f.cfg.MaxSize {
		cut = end
	}
	cut = cut / blk * blk
	if cut == size {
		cut -= blk // collapse may not reach EOF
	}
	archEnd := cut
	if lineEnd > 0 {
		if archEnd, err = nextLineEnd(live, max(cut, start), lineEnd); err != nil {
			return Result{}, err
		}
	}
	if archEnd <= start || cut <= fileid.DataStart(live, 0) {
		return Result{}, nil // nothing whole below limit yet
	}
	name, err := f.archive(live, start, archEnd)
	if err != nil {
		return Result{}, err
	}
	// The state is durable before the cut: a crash between the two then leaves a
	// state that still finds the first unarchived byte (see start). The bytes at
	// the cut mark it.
	mark := fileid.ReadAt(live, cut, markLen)
	for {
		st := state{Dev: key.Dev, Ino: key.Ino, Start: archEnd, MarkAt: cut, Mark: mark}
		flags := uint32(unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE)
		removed := int64(0)
		if f.method == Collapse {
			st.Start, st.MarkAt, st.Shift = archEnd-cut, 0, cut
			flags, removed = unix.FALLOC_FL_COLLAPSE_RANGE, cut
		}
		if err := st.save(f.statePath()); err != nil {
			// Without the state the next cut would archive these bytes again.
			os.Remove(name)
			return Result{}, err
		}
		f.st = st
		err := unix.Fallocate(int(live.Fd()), flags, 0, cut)
		if err == nil {
			return Result{Archive: name, Removed: removed}, nil
		}
		// The archive and the state stand: the bytes are archived, and start finds
		// them so. Only freeing their space waits, for the next method or cut.
		if !errors.Is(err, unix.EOPNOTSUPP) || (f.cfg.Method != Auto && f.cfg.Method != "") {
			return Result{Archive: name}, fmt.Errorf("%s %s: %w", f.method, f.path, err)
		}
		next := map[Method]Method{Collapse: Punch, Punch: CopyTruncate}[f.method]
		f.log.Info("filesystem cannot "+string(f.method)+", using "+string(next), "path", f.path)
		if f.method = next; next == CopyTruncate {
			return Result{Archive: name}, nil
		}
	}
}

// copyTruncate archives everything and empties the file, losing what the writer
// adds between the last read and the truncate.
func (f *File) copyTruncate(live *os.File, key fileid.Key, start int64) (Result, error) {
	if !f.warned {
		f.warned = true
		f.log.Warn("filesystem can neither collapse nor punch: using copytruncate, which loses lines written between the copy and the truncate", "path", f.path)
	}
	a, err := f.newArchive(live)
	if err != nil {
		return Result{}, err
	}
	// Copy until the file stops growing, so the window is the commit alone.
	off := start
	for {
		n, err := io.Copy(a, io.NewSectionReader(live, off, 1<<62))
		if err != nil {
			a.abort()
			return Result{}, fmt.Errorf("copy %s: %w", f.path, err)
		}
		if off += n; n == 0 {
			break
		}
	}
	name, err := a.commit()
	if err != nil {
		return Result{}, err
	}
	st := state{Dev: key.Dev, Ino: key.Ino}
	if err := st.save(f.statePath()); err != nil {
		return Result{Archive: name}, err
	}
	f.st = st
	if err := live.Truncate(0); err != nil {
		return Result{Archive: name}, fmt.Errorf("truncate %s: %w", f.path, err)
	}
	return Result{Archive: name}, nil
}

// openLive opens the live file for writing, which fallocate needs, refusing a
// symbolic link unless allowed: a cut must stay inside the volume the user named.
func (f *File) openLive() (*os.File, error) {
	flags := os.O_RDWR
	if !f.cfg.FollowSymlinks {
		flags |= syscall.O_NOFOLLOW
	}
	live, err := os.OpenFile(f.path, flags, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link: not cutting it; name the file itself, or allow links with --follow-symlinks", f.path)
	}
	return live, err
}

// start returns the live file's first unarchived byte, as the state recorded it.
// The mark, the bytes at the cut, tells whether a collapse recorded in the state
// took place (they are at MarkAt) or not (they are still Shift further on).
func (f *File) start(live *os.File, key fileid.Key, size int64) int64 {
	st := f.st
	if st.Dev == key.Dev && st.Ino == key.Ino && st.Start <= size {
		if bytes.Equal(fileid.ReadAt(live, st.MarkAt, len(st.Mark)), st.Mark) {
			return st.Start
		}
		if st.Shift > 0 && bytes.Equal(fileid.ReadAt(live, st.MarkAt+st.Shift, len(st.Mark)), st.Mark) {
			return st.Start + st.Shift
		}
	}
	// A file we never cut, or one changed behind our back: all of it is new, but
	// for a hole punched before (there is nothing in it).
	return fileid.DataStart(live, 0)
}

// markLen bytes at the cut identify it.
const markLen = 32

// blockSize is the unit fallocate cuts in.
func blockSize(file *os.File) int64 {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(file.Fd()), &st); err != nil || st.Bsize <= 0 {
		return 4096
	}
	return st.Bsize
}

// scanChunk is how much is read at a time looking for a line end.
const scanChunk = 64 << 10

// lastLineEnd returns the offset just after the last newline in [start, end), or
// 0 when there is none.
func lastLineEnd(file *os.File, start, end int64) (int64, error) {
	buf := make([]byte, scanChunk)
	for end > start {
		from := max(start, end-scanChunk)
		n, err := file.ReadAt(buf[:end-from], from)
		if err != nil && err != io.EOF {
			return 0, fmt.Errorf("read %s: %w", file.Name(), err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return from + int64(i) + 1, nil
		}
		end = from
	}
	return 0, nil
}

// nextLineEnd returns the first line end at or after off: off itself when a line
// starts there, else just after the next newline. limit is a line end, so the
// answer is at most limit.
func nextLineEnd(file *os.File, off, limit int64) (int64, error) {
	if off == 0 || bytes.Equal(fileid.ReadAt(file, off-1, 1), []byte{'\n'}) {
		return off, nil
	}
	buf := make([]byte, scanChunk)
	for off < limit {
		n, err := file.ReadAt(buf[:min(scanChunk, limit-off)], off)
		if err != nil && err != io.EOF {
			return 0, fmt.Errorf("read %s: %w", file.Name(), err)
		}
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return off + int64(i) + 1, nil
		}
		if n == 0 {
			break
		}
		off += int64(n)
	}
	return limit, nil
}
