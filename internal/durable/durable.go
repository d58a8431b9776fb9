// Package durable writes small files so that they survive a crash whole: either
// the old content or the new one is found afterwards, never a torn mix. Both the
// rotator's state and the tailer's checkpoints need that; it imports neither.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Survives says what a write must outlive.
type Survives int

const (
	// Crash of the process (SIGKILL, OOM kill): the page cache keeps what was
	// written, so no fsync is needed. For records that can be lost on a power
	// loss because another record or the files themselves tell the same (the
	// tailer's checkpoints: a lost one repeats lines; the end of a rotation
	// step: its start was recorded durably with the evidence to resolve it).
	Crash Survives = iota
	// PowerLoss of the node too: the file is fsynced before the rename and the
	// folder after it. For write-ahead records that must be on disk before the
	// step they announce (a collapse, a truncate, an archive's rename), since
	// the filesystem may persist that step first.
	PowerLoss
)

// WriteFile replaces the file at path with data atomically: whoever reads path,
// even after a crash, finds the old content or the new one, never a mix. It
// writes path.tmp and renames it over path; with PowerLoss it fsyncs the file
// before the rename (or a power loss could leave path empty: the rename reached
// the disk, the data did not) and the folder after it (or the rename itself
// could be lost). The fsyncs cost about a millisecond each on a local disk, far
// more on a busy one. One writer per path: the fixed temporary name means a
// crash leaves at most one leftover, overwritten by the next write.
func WriteFile(path string, data []byte, perm fs.FileMode, survives Survives) error {
	tmp, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = func() error {
		if err := tmp.Chmod(perm); err != nil {
			return err
		}
		if _, err := tmp.Write(data); err != nil {
			return err
		}
		if survives == PowerLoss {
			if err := tmp.Sync(); err != nil {
				return err
			}
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return err
		}
		if survives == PowerLoss {
			return SyncDir(filepath.Dir(path))
		}
		return nil
	}()
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a folder, which makes the names created, renamed or removed in
// it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// CanWrite reports whether a file can be created in dir, by creating and
// removing one: permission bits tell nothing about a read-only mount, and root
// passes every access check. The error says which it is: missing or not writable.
func CanWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".sidetail-check-*")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist", dir)
		}
		return fmt.Errorf("%s is not writable: %v", dir, errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}
