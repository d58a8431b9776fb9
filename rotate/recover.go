package rotate

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sidetail/sidetail/internal/fileid"
)

// load reads the state the first time, finishes the step a crash (or a failed
// save) left under way, and makes the state the live file's: a file new at the
// path starts afresh. It returns the bytes that finishing a cut removed from the
// front of the file.
func (f *File) load(live *os.File, info fs.FileInfo) (int64, error) {
	k := fileid.Of(live, info)
	var removed int64
	if !f.loaded || f.st.Step != "" {
		if !f.loaded {
			f.st = loadState(f.statePath())
			if f.st.Version < stateVersion && f.st.Dev != 0 {
				f.st = migrate(f.st, live, k, info.Size())
			}
		}
		var err error
		if removed, err = f.recover(live, info, k); err != nil {
			return removed, err
		}
		f.removeLeftovers()
		f.loaded = true
	}
	if !f.st.matches(k) {
		f.st = state{Dev: k.Dev, Ino: k.Ino, Born: k.Born, Start: fileid.DataStart(live, 0)}
	}
	return removed, nil
}

// recover decides whether the recorded step happened, from what was recorded
// before it and what the file and the folder hold now, and finishes the cut it
// belonged to, so that no byte is archived twice and none is left behind.
func (f *File) recover(live *os.File, info fs.FileInfo, k fileid.Key) (int64, error) {
	st := f.st
	if st.Step == "" {
		return 0, nil
	}
	f.log.Info("finishing a cut a crash interrupted", "path", f.path, "step", st.Step)
	if st.Step == stepArchive {
		return f.recoverArchive(live, k)
	}
	if !st.matches(k) {
		return 0, f.forget(live, k) // the file it was about is gone
	}
	p := plan{start: st.To, cut: st.Cut, to: st.To}
	switch st.Step {
	case stepCollapse:
		switch f.collapsed(live, info.Size()) {
		case yes:
			return 0, f.done(live, st, st.Cut)
		case unknown:
			return 0, f.forget(live, k)
		}
		return f.removeHead(live, p)
	case stepPunch:
		// Punching archived bytes again changes nothing: finish it.
		return f.removeHead(live, p)
	case stepTruncate:
		if info.Size() < st.To || !regionIs(live, st.SumAt, st.SumLen, st.Sum) {
			return 0, f.settle(live, 0, nil) // truncated: what is there now is new
		}
		return 0, f.settle(live, st.To, nil)
	}
	return 0, fmt.Errorf("rotation state %s: unknown step %q", f.statePath(), st.Step)
}

// recoverArchive finishes the naming of an archive: the name recorded is there,
// or the temporary file is renamed to it (its bytes were durable before the
// record). Then the cut goes on; an archive never named leaves its bytes
// unarchived.
func (f *File) recoverArchive(live *os.File, k fileid.Key) (int64, error) {
	st := f.st
	if !f.ours(st.Archive, st.Temp) {
		return 0, f.forget(live, k) // not a record this package wrote
	}
	_, err := os.Lstat(st.Archive)
	named := err == nil
	if !named {
		if _, err := os.Lstat(st.Temp); err == nil {
			if err := os.Rename(st.Temp, st.Archive); err != nil {
				return 0, fmt.Errorf("name archive of %s: %w", f.path, err)
			}
			named = true
		}
	}
	switch {
	case !st.matches(k):
		return 0, f.forget(live, k)
	case !named:
		return 0, f.settle(live, st.From, nil)
	case st.Cut == 0:
		return 0, f.settle(live, st.To, nil) // copytruncate: it truncates at the next cut
	}
	return f.removeHead(live, plan{start: st.From, cut: st.Cut, to: st.To})
}

// ours reports whether archive and temp are names this file's archives take: a
// damaged state must not make recovery rename other files.
func (f *File) ours(archive, temp string) bool {
	tempOK, _ := filepath.Match(filepath.Join(f.dir, f.tempPattern()), temp)
	return tempOK && filepath.Dir(archive) == filepath.Clean(f.dir) && f.isArchive(filepath.Base(archive))
}

// answer is what the evidence says about a step.
type answer int

const (
	no answer = iota
	yes
	unknown
)

// collapsed tells whether the collapse recorded in the state took place. The file
// grows only by appends, so a smaller file was collapsed. Otherwise the bytes
// hashed before the collapse are at offset 0 if it took place, still at the cut
// if not. Both hold only for a file that repeats itself every Cut bytes over
// 64 KiB; then it is taken as collapsed, so that bytes are archived twice rather
// than lost.
func (f *File) collapsed(live *os.File, size int64) answer {
	st := f.st
	if size < st.Size {
		return yes
	}
	// The blank came before the collapse: collapsed, the region is blanked.
	atHead := regionIs(live, 0, st.SumLen, st.SumBlank)
	atCut := regionIs(live, st.SumAt, st.SumLen, st.Sum) || regionIs(live, st.SumAt, st.SumLen, st.SumBlank)
	switch {
	case atHead && atCut:
		f.log.Warn("cannot tell whether a collapse took place: the file repeats itself; assuming it did, so up to one cut may be archived twice", "path", f.path, "bytes", st.Cut)
		return yes
	case atHead:
		return yes
	case atCut:
		return no
	}
	f.log.Warn("file rewritten by another program during a cut: archiving it from its head", "path", f.path)
	return unknown
}

// forget records that the state's file is no longer there (or no longer ours):
// the file at the path is new, all of it unarchived but for a punched hole.
func (f *File) forget(live *os.File, k fileid.Key) error {
	st := state{Dev: k.Dev, Ino: k.Ino, Born: k.Born, Start: fileid.DataStart(live, 0)}
	if f.st.matches(k) {
		st.Removed = f.st.Removed
	}
	return f.save(st)
}
