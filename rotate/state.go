package rotate

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sidetail/sidetail/internal/durable"
	"github.com/sidetail/sidetail/internal/fileid"
)

// stateVersion is the state file's format: 2 adds the write-ahead record of the
// step under way, the removed total and the birth time. A version 1 file (no
// version field: Start, Shift, MarkAt and Mark) is read once and rewritten.
const stateVersion = 2

// The steps of a cut that move or remove bytes. Before each, the state records
// the step with the evidence that tells afterwards whether it happened; after
// it, the state records it done (Step empty).
const (
	stepArchive  = "archive"  // rename the written archive from Temp to Archive
	stepCollapse = "collapse" // collapse [0, Cut): the file shrinks by Cut
	stepPunch    = "punch"    // punch [0, Cut): the file keeps its size
	stepTruncate = "truncate" // copytruncate: empty the file
)

// sumLen is how many bytes the evidence of a collapse or a truncate covers: a
// 32-byte mark matches repetitive lines that differ only in a counter, 64 KiB of
// such lines do not (unless the content repeats itself exactly every Cut bytes).
const sumLen = 64 << 10

// state is what the rotator knows of the live file, kept beside the archives so
// that a restart neither archives a byte twice nor skips one, whatever step a
// crash interrupted.
type state struct {
	Version  int
	Dev, Ino uint64
	Born     int64
	// Start is the first byte of the live file not archived (or, discarding, not
	// cut); the bytes before it are blanks or a punched hole.
	Start int64
	// Removed is how many bytes collapses took from the front of this file, ever:
	// a reader's offset from before them has moved down by as much.
	Removed int64
	// HeadAt and HeadSum are a hash of the bytes [HeadAt, Start): a file truncated
	// and refilled behind our back is not taken for ours.
	HeadAt  int64  `json:",omitempty"`
	HeadSum []byte `json:",omitempty"`

	// Step is the step begun and not recorded done; the fields below are its
	// evidence, recorded before it.
	Step    string `json:",omitempty"`
	Archive string `json:",omitempty"` // the name the archive takes
	Temp    string `json:",omitempty"` // the name it has until then
	From    int64  `json:",omitempty"` // the archive holds [From, To) of the file
	To      int64  `json:",omitempty"`
	Cut     int64  `json:",omitempty"` // fallocate's length
	Size    int64  `json:",omitempty"` // the file's size just before the step
	SumAt   int64  `json:",omitempty"` // where the hashed region was before the step
	SumLen  int64  `json:",omitempty"`
	Sum     []byte `json:",omitempty"` // its hash
	// SumBlank is its hash once blanked after a collapse (see done).
	SumBlank []byte `json:",omitempty"`

	// Version 1 fields, read to migrate.
	Shift  int64  `json:",omitempty"`
	MarkAt int64  `json:",omitempty"`
	Mark   []byte `json:",omitempty"`
}

func (f *File) statePath() string {
	return filepath.Join(f.dir, "."+f.stem+f.ext+".sidetail-rotate")
}

// loadState reads the state file; a missing, unreadable or inconsistent one is an
// empty state, which makes the whole live file new.
func loadState(path string) state {
	var st state
	if b, err := os.ReadFile(path); err == nil {
		if json.Unmarshal(b, &st) != nil || !st.valid() {
			st = state{}
		}
	}
	return st
}

// valid reports whether the offsets and lengths in st can have been written by a
// cut: a damaged file must not make recovery read gigabytes or cut anything.
func (st state) valid() bool {
	nonNegative := st.Start >= 0 && st.Removed >= 0 && st.From >= 0 && st.To >= 0 && st.Cut >= 0 &&
		st.Size >= 0 && st.SumAt >= 0 && st.Shift >= 0 && st.MarkAt >= 0
	head := len(st.HeadSum) == 0 || st.HeadAt >= 0 && st.HeadAt <= st.Start && st.Start-st.HeadAt <= sumLen
	return nonNegative && head && st.SumLen >= 0 && st.SumLen <= sumLen && st.Cut <= st.To && st.From <= st.To && len(st.Mark) <= 64
}

// save writes st before anything else happens. A record of a step under way is
// made to survive a power loss: the step must not reach the disk before it. The
// record of a step done need not: lost, the record before it is resolved from
// its evidence.
func (f *File) save(st state) error {
	st.Version = stateVersion
	survives := durable.Crash
	if st.Step != "" {
		survives = durable.PowerLoss
	}
	b, err := json.Marshal(st)
	if err == nil {
		err = durable.WriteFile(f.statePath(), b, 0o644, survives)
	}
	if err != nil {
		return fmt.Errorf("save rotation state: %w", err)
	}
	f.st = st
	return nil
}

// matches reports whether st is about the file with key k. A birth time tells a
// reused inode number from the file that had it, where both are known.
func (st state) matches(k fileid.Key) bool {
	return st.Dev == k.Dev && st.Ino == k.Ino && (st.Born == 0 || k.Born == 0 || st.Born == k.Born)
}

// migrate turns a version 1 state into a version 2 one, finding its start as
// version 1 did: by the 32-byte mark at the cut, which is where a collapse
// recorded in it took place (MarkAt) or not (Shift further on). Version 1 saved
// the state before the fallocate and nothing after, so this is all there is to
// go by; from the next cut on, the evidence is unambiguous.
func migrate(st state, live *os.File, k fileid.Key, size int64) state {
	out := state{Version: stateVersion, Dev: k.Dev, Ino: k.Ino, Born: k.Born}
	if st.Dev != k.Dev || st.Ino != k.Ino || st.Start > size {
		out.Start = fileid.DataStart(live, 0)
		return out
	}
	switch {
	case bytes.Equal(fileid.ReadAt(live, st.MarkAt, len(st.Mark)), st.Mark):
		out.Start = st.Start
	case st.Shift > 0 && bytes.Equal(fileid.ReadAt(live, st.MarkAt+st.Shift, len(st.Mark)), st.Mark):
		out.Start = st.Start + st.Shift
	default:
		out.Start = fileid.DataStart(live, 0)
	}
	out.HeadAt, out.HeadSum = headSum(live, out.Start)
	return out
}

// headSum hashes the up to sumLen bytes before start (a punched hole reads as
// NULs, which is what it holds).
func headSum(live *os.File, start int64) (int64, []byte) {
	at := max(0, start-sumLen)
	sum, _ := hashAt(live, at, start-at)
	return at, sum
}

// hashAt returns the SHA-256 of [at, at+n) of the file; an error when the file
// is shorter, which never matches a hash taken when it was not.
func hashAt(file *os.File, at, n int64) ([]byte, error) {
	if n < 0 || n > sumLen {
		return nil, fmt.Errorf("hash %d bytes of %s: not a length this package hashes", n, file.Name())
	}
	b := make([]byte, n)
	if _, err := file.ReadAt(b, at); err != nil {
		return nil, fmt.Errorf("read %s: %w", file.Name(), err)
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// regionIs reports whether [at, at+n) of the file hashes to sum.
func regionIs(file *os.File, at, n int64, sum []byte) bool {
	got, err := hashAt(file, at, n)
	return err == nil && bytes.Equal(got, sum)
}
