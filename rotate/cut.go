package rotate

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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
	loaded    bool // st was read from disk and the step a crash interrupted finished
	warned    bool // the copytruncate warning was given
	// What the call under way did besides its cut, for its Result.
	fallbacks []Fallback
	deleted   Deleted
	// afterStep, set by tests, is called after each step of a cut with its name,
	// so that a test can kill the process right there.
	afterStep func(step string)
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

// plan is where a cut goes.
type plan struct {
	start int64 // the first byte not archived
	cut   int64 // fallocate removes [0, cut): whole blocks
	to    int64 // the first line start at or after cut: [start, to) is archived
}

// CutAll cuts the file for no reader: every whole line is archived.
func (f *File) CutAll() (Result, error) { return f.Cut(-1, nil) }

// Cut archives the file's head and removes it from the file, if the file holds at
// least MaxSize bytes not archived yet. Only bytes below limit are archived (a
// follower passes what it has written out; -1: no limit). When reading is not
// nil, the cut is made only if the path still names that file. A missing file is
// not an error: it is waited for. With MaxFiles 0 nothing is archived: the bytes
// below limit, which must be given, are discarded.
func (f *File) Cut(limit int64, reading fs.FileInfo) (r Result, err error) {
	defer f.report(&r)
	if f.cfg.MaxFiles == 0 && limit < 0 {
		return Result{}, fmt.Errorf("cut %s: no archives kept and no reader's offset: nothing says what may go", f.path)
	}
	if err := f.pruneOld(); err != nil {
		return Result{}, err
	}
	live, info, err := f.openLive(reading)
	if live == nil {
		return Result{}, err
	}
	defer live.Close()
	rolled, err := f.load(live, info)
	if err != nil {
		return Result{Removed: rolled}, err
	}
	if rolled > 0 { // finishing a cut shrank the file
		if info, err = live.Stat(); err != nil {
			return Result{Removed: rolled}, fmt.Errorf("stat %s: %w", f.path, err)
		}
	}
	p, ok, err := f.plan(live, info.Size(), limit)
	if err != nil || !ok {
		return Result{Removed: rolled}, err
	}
	if f.method == CopyTruncate {
		r, err = f.copyTruncate(live, p.start, limit)
	} else {
		r, err = f.cut(live, p)
	}
	r.Removed += rolled
	return r, err
}

// Removed returns how many bytes have ever been collapsed out of the front of the
// file being read: 0 for a file never cut. A crash in the middle of a cut is
// resolved first (and the cut finished), so the answer is what the file holds
// now. A reader that saved this total with its offset moves the offset down by
// the difference when it resumes.
func (f *File) Removed(reading fs.FileInfo) (int64, error) {
	live, info, err := f.openLive(reading)
	if err != nil {
		return 0, err
	}
	if live == nil {
		// The path names another file, or none: nothing more will be cut from
		// the one read.
		if reading == nil {
			return 0, nil
		}
		st := f.st
		if !f.loaded {
			st = loadState(f.statePath())
		}
		if k := fileid.Inode(reading); st.Step == "" && st.Dev == k.Dev && st.Ino == k.Ino {
			return st.Removed, nil
		}
		return 0, nil
	}
	defer live.Close()
	if _, err := f.load(live, info); err != nil {
		return 0, err
	}
	return f.st.Removed, nil
}

// cut archives [p.start, p.to) (unless discarding), removes [0, p.cut) and
// blanks the part of a line left before p.to.
func (f *File) cut(live *os.File, p plan) (Result, error) {
	var name string
	if f.cfg.MaxFiles > 0 {
		var err error
		if name, err = f.archive(live, p); err != nil {
			return Result{}, err
		}
	}
	removed, err := f.removeHead(live, p)
	r := Result{Archive: name, Removed: removed}
	if err == nil {
		r.Method = f.method // the one that worked, or copytruncate, which takes the head next time
	}
	return r, err
}

// archive writes [p.start, p.to) into an archive and names it, the name recorded
// first: a crash between the rename and the next save must not leave an archive
// the state does not know of, which the next cut would archive again.
func (f *File) archive(live *os.File, p plan) (string, error) {
	tmp, err := f.writeArchive(live, p.start, p.to)
	if err != nil {
		return "", err
	}
	f.step("archive-written")
	return f.nameArchive(live, tmp, p)
}

// nameArchive renames the written archive tmp, holding [p.start, p.to), to its
// name, recording the step first.
func (f *File) nameArchive(live *os.File, tmp string, p plan) (string, error) {
	name, err := f.freeName(time.Now())
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	st := f.st.settled()
	st.Step, st.Archive, st.Temp, st.From, st.To, st.Cut = stepArchive, name, tmp, p.start, p.to, p.cut
	if err := f.save(st); err != nil {
		os.Remove(tmp)
		return "", err
	}
	f.step("archive-intent")
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		err = fmt.Errorf("name archive of %s: %w", f.path, err)
		return "", f.settle(live, p.start, err)
	}
	// The next save, which comes before anything is removed, fsyncs the folder
	// and so makes the name durable too.
	f.step(stepArchive)
	return name, nil
}

// blank overwrites [from, to), what the front of the file is to keep of the line
// the cut falls in, with spaces ending in a newline: the live file then never
// starts with a fragment of a line. The bytes were archived (or, discarding, written
// out) already, and a pwrite at the front does not race an O_APPEND writer at
// the end.
func (f *File) blank(live *os.File, from, to int64) error {
	const chunk = 64 << 10
	buf := make([]byte, min(chunk, max(to-from, 0)))
	for off := from; off < to; off += chunk {
		b := blanks(buf[:min(chunk, to-off)], to-off)
		if _, err := live.WriteAt(b, off); err != nil {
			return fmt.Errorf("blank the head of %s: %w", f.path, err)
		}
	}
	f.step("blanked")
	return nil
}

// blanks overwrites the first n bytes of b with spaces and the n-th with a
// newline (when b reaches it), and returns b.
func blanks(b []byte, n int64) []byte {
	for i := range min(int64(len(b)), n) {
		b[i] = ' '
	}
	if n > 0 && n <= int64(len(b)) {
		b[n-1] = '\n'
	}
	return b
}

// removeHead removes [0, p.cut) of the file, the bytes below p.to being
// archived, trying the next method where the filesystem has not this one. It
// returns the bytes taken from the front (collapse).
func (f *File) removeHead(live *os.File, p plan) (int64, error) {
	for {
		if f.method == CopyTruncate || p.cut <= 0 {
			// The head is archived; a copytruncate takes the rest at the next cut.
			return 0, f.settle(live, p.to, nil)
		}
		removed, err := f.fallocate(live, p)
		if err == nil {
			return removed, nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) || (f.cfg.Method != Auto && f.cfg.Method != "") {
			return 0, f.settle(live, p.to, fmt.Errorf("%s %s: %w", f.method, f.path, err))
		}
		next := map[Method]Method{Collapse: Punch, Punch: CopyTruncate}[f.method]
		f.log.Info("filesystem cannot "+string(f.method)+", using "+string(next), "path", f.path)
		f.fallbacks = append(f.fallbacks, Fallback{From: f.method, To: next})
		f.method = next
	}
}

// fallocate collapses or punches [0, p.cut) between the record of the step,
// with what tells afterwards whether it happened, and the record of its end. The
// part of a line left between p.cut and p.to is blanked first, so that the file
// never starts with it, not even for an instant.
func (f *File) fallocate(live *os.File, p plan) (int64, error) {
	info, err := live.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", f.path, err)
	}
	if p.cut <= 0 || p.cut >= info.Size() || p.to > info.Size() || p.cut > p.to {
		// Only a damaged state gives such a cut: never write past the end.
		return 0, fmt.Errorf("cut %s at %d..%d: the file has %d bytes", f.path, p.cut, p.to, info.Size())
	}
	st := f.st.settled()
	st.Start, st.To, st.Cut, st.Size = p.to, p.to, p.cut, info.Size()
	st.Step = stepPunch
	flags := uint32(unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE)
	if f.method == Collapse {
		// A collapse moves the bytes at the cut to offset 0: their hash, taken
		// now, is found at one of the two places afterwards; that of their
		// blanked version too.
		st.Step, flags = stepCollapse, unix.FALLOC_FL_COLLAPSE_RANGE
		st.SumAt, st.SumLen = p.cut, min(sumLen, st.Size-p.cut)
		b := make([]byte, st.SumLen)
		if _, err := live.ReadAt(b, st.SumAt); err != nil {
			return 0, fmt.Errorf("read %s: %w", f.path, err)
		}
		sum := sha256.Sum256(b)
		blanked := sha256.Sum256(blanks(b, p.to-p.cut))
		st.Sum, st.SumBlank = sum[:], blanked[:]
	}
	if err := f.save(st); err != nil {
		return 0, err
	}
	f.step(st.Step + "-intent")
	if err := f.blank(live, p.cut, p.to); err != nil {
		return 0, err
	}
	if err := unix.Fallocate(int(live.Fd()), flags, 0, p.cut); err != nil {
		return 0, err
	}
	f.step(st.Step)
	removed := int64(0)
	if st.Step == stepCollapse {
		removed = p.cut
	}
	return removed, f.done(live, st, removed)
}

// done records the step of st as done, removed bytes having left the front of
// the file. The in-memory state follows even when the save fails: the step did
// happen, and the record on disk is resolved from its evidence after a crash.
func (f *File) done(live *os.File, st state, removed int64) error {
	to := st.To
	st = st.settled()
	st.Start, st.Removed = to-removed, st.Removed+removed
	st.HeadAt, st.HeadSum = headSum(live, st.Start)
	err := f.save(st)
	f.st = st
	if err == nil {
		f.step("done")
	}
	return err
}

// settle records that the file is archived up to start and that no step is under
// way, after a step failed with cause (returned, joined with a failed save).
func (f *File) settle(live *os.File, start int64, cause error) error {
	st := f.st.settled()
	st.Start = start
	st.HeadAt, st.HeadSum = headSum(live, start)
	return errors.Join(cause, f.save(st))
}

// settled returns st with no step under way.
func (st state) settled() state {
	st.Step, st.Archive, st.Temp, st.From, st.To, st.Cut, st.Size = "", "", "", 0, 0, 0, 0
	st.SumAt, st.SumLen, st.Sum, st.SumBlank = 0, 0, nil, nil
	st.HeadAt, st.HeadSum = 0, nil // recomputed when a step ends
	st.Shift, st.MarkAt, st.Mark = 0, 0, nil
	return st
}

func (f *File) step(name string) {
	if f.afterStep != nil {
		f.afterStep(name)
	}
}

// plan finds where to cut: after the last whole line below limit, or, for one
// line longer than MaxSize (split, or the file would grow without bound), at
// the limit; down to a block boundary, which is all fallocate cuts at. ok is
// false when there is nothing to cut yet.
func (f *File) plan(live *os.File, size, limit int64) (p plan, ok bool, err error) {
	p.start = f.startOf(live, size)
	if size-p.start < f.cfg.MaxSize {
		return p, false, nil
	}
	if f.method == CopyTruncate {
		return p, true, nil
	}
	// One archive takes everything whole: a cut costs its fsyncs whatever its
	// size, which under I/O pressure (100 ms each) would let a writer outrun
	// cuts of MaxSize each.
	end := size
	if limit >= 0 && limit < end {
		end = limit
	}
	blk := blockSize(live)
	lineEnd, err := lastLineEnd(live, p.start, end)
	if err != nil {
		return p, false, err
	}
	p.cut = lineEnd
	if lineEnd == 0 && end-p.start >= f.cfg.MaxSize {
		p.cut = end
	}
	p.cut = p.cut / blk * blk
	if p.cut == size {
		p.cut -= blk // collapse may not reach EOF
	}
	p.to = p.cut
	if lineEnd > 0 {
		if p.to, err = nextLineEnd(live, max(p.cut, p.start), lineEnd); err != nil {
			return p, false, err
		}
	}
	if p.to <= p.start || p.cut <= fileid.DataStart(live, 0) {
		return p, false, nil // nothing whole below limit yet
	}
	return p, true, nil
}

// startOf returns the live file's first unarchived byte, as the state recorded
// it, unless the file was truncated or rewritten behind our back: then all of it
// is new, but for a hole punched before (there is nothing in it).
func (f *File) startOf(live *os.File, size int64) int64 {
	st := f.st
	if st.Start > size || len(st.HeadSum) > 0 && !regionIs(live, st.HeadAt, st.Start-st.HeadAt, st.HeadSum) {
		f.log.Warn("file truncated or rewritten by another program: archiving it from its head", "path", f.path)
		f.st = state{Dev: st.Dev, Ino: st.Ino, Born: st.Born, Start: fileid.DataStart(live, 0)}
	}
	return f.st.Start
}

// pruneOld deletes archives older than MaxAge. Discarding (MaxFiles 0) keeps
// archives of earlier runs but for their age.
func (f *File) pruneOld() error {
	if f.cfg.MaxAge <= 0 {
		return nil
	}
	keep := f.cfg.MaxFiles
	if keep == 0 {
		keep = math.MaxInt
	}
	return f.prune(keep)
}

// copyTruncate archives everything and empties the file, losing what the writer
// adds between the last read and the truncate. Discarding, it only empties a
// file read to its end.
func (f *File) copyTruncate(live *os.File, start, limit int64) (Result, error) {
	if !f.warned {
		f.warned = true
		f.log.Warn("filesystem can neither collapse nor punch: using copytruncate, which loses lines written between the copy and the truncate", "path", f.path)
	}
	var name string
	end := limit
	if f.cfg.MaxFiles > 0 {
		var err error
		if name, end, err = f.archiveAll(live, start); err != nil {
			return Result{}, err
		}
	} else if info, err := live.Stat(); err != nil || info.Size() > limit {
		return Result{}, err // not read to its end yet
	}
	st := f.st.settled()
	st.Step, st.Start, st.To, st.Size = stepTruncate, end, end, end
	st.SumLen = min(sumLen, end)
	st.SumAt = end - st.SumLen
	var err error
	if st.Sum, err = hashAt(live, st.SumAt, st.SumLen); err != nil {
		return Result{Archive: name}, f.settle(live, end, err)
	}
	if err := f.save(st); err != nil {
		return Result{Archive: name}, err
	}
	f.step("truncate-intent")
	if err := live.Truncate(0); err != nil {
		return Result{Archive: name}, f.settle(live, end, fmt.Errorf("truncate %s: %w", f.path, err))
	}
	f.step(stepTruncate)
	st = st.settled()
	st.Start = 0
	if err := f.save(st); err != nil {
		return Result{Archive: name}, err
	}
	return Result{Archive: name, Method: CopyTruncate}, nil
}

// archiveAll archives the file from start until it stops growing, so that
// copytruncate's window is the truncate alone; it returns where the copy ended.
func (f *File) archiveAll(live *os.File, start int64) (string, int64, error) {
	a, err := f.newArchive(live)
	if err != nil {
		return "", 0, err
	}
	off := start
	for {
		n, err := io.Copy(a, io.NewSectionReader(live, off, 1<<62))
		if err != nil {
			a.abort()
			return "", 0, fmt.Errorf("copy %s: %w", f.path, err)
		}
		if off += n; n == 0 {
			break
		}
	}
	tmp, err := a.finish()
	if err != nil {
		return "", 0, err
	}
	name, err := f.nameArchive(live, tmp, plan{start: start, to: off})
	return name, off, err
}

// openLive opens the live file for writing, which fallocate needs, refusing a
// symbolic link unless allowed: a cut must stay inside the volume the user named.
// It returns no file, and no error, when there is none or it is not reading.
func (f *File) openLive(reading fs.FileInfo) (*os.File, fs.FileInfo, error) {
	flags := os.O_RDWR
	if !f.cfg.FollowSymlinks {
		flags |= syscall.O_NOFOLLOW
	}
	live, err := os.OpenFile(f.path, flags, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, fmt.Errorf("%s is a symbolic link: not cutting it; name the file itself, or allow links with --follow-symlinks", f.path)
	}
	if err != nil {
		return nil, nil, err
	}
	info, err := live.Stat()
	if err != nil {
		live.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", f.path, err)
	}
	if reading != nil && !os.SameFile(info, reading) {
		live.Close()
		return nil, nil, nil // replaced since the follower looked: its next look sees it
	}
	return live, info, nil
}

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
