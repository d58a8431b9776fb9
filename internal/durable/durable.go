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

// WriteFile replaces the file at path with data atomically: it writes path.tmp,
// fsyncs it, renames it over path and fsyncs the folder. One writer per path: the
// fixed temporary name means a crash leaves at most one leftover, overwritten by
// the next write.
//
// The two fsyncs are what make it a write-ahead record: without the first, a
// power loss after the rename can leave path empty (the rename reached the disk,
// the data did not); without the second, the rename itself can be lost, and the
// step the record announces (a collapse, a truncate) would be found done with no
// record of it. A SIGKILL alone loses neither (the page cache outlives the
// process); the fsyncs are for the node going down. They cost about a millisecond
// each on a local disk, far more on a busy one, so callers on a hot path (a
// checkpoint per output write) should not use this.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
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
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return err
		}
		return SyncDir(filepath.Dir(path))
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
