// Package fileid holds the facts about a file that both the tailer and the rotator
// need: which file it is whatever its name, and small reads at an offset. It
// imports neither of them.
package fileid

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Key identifies a file on this node whatever its name. Born, the birth time where
// the filesystem has one (ext4, xfs, btrfs, tmpfs), tells a reused inode number
// from the file that had it before; it is 0 where there is none.
type Key struct {
	Dev, Ino uint64
	Born     int64
}

// Of returns the key of an open file whose stat is info.
func Of(file *os.File, info fs.FileInfo) Key {
	k := Inode(info)
	var stx unix.Statx_t
	if unix.Statx(int(file.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_BTIME, &stx) == nil &&
		stx.Mask&unix.STATX_BTIME != 0 {
		k.Born = stx.Btime.Sec*1e9 + int64(stx.Btime.Nsec)
	}
	return k
}

// Inode returns the key without the birth time: enough to tell whether a path
// still names a file held open.
func Inode(info fs.FileInfo) Key {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return Key{}
	}
	return Key{Dev: uint64(st.Dev), Ino: st.Ino}
}

// Links returns how many names (hard links) the file has, 1 where it is not known.
func Links(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// ReadAt returns up to n bytes at off, fewer at EOF or on a read error: callers
// compare what they get with what they expect, and a short read never matches.
func ReadAt(file *os.File, off int64, n int) []byte {
	if off < 0 || n <= 0 {
		return nil
	}
	b := make([]byte, n)
	got, _ := file.ReadAt(b, off)
	return b[:got]
}

// DataStart returns the first byte at or after off that is not in a hole: a range
// punched out of the file (rotation on tmpfs) reads as NULs that were never written.
// It returns off where there is no hole or the filesystem cannot say.
func DataStart(file *os.File, off int64) int64 {
	d, err := unix.Seek(int(file.Fd()), off, unix.SEEK_DATA)
	if err != nil || d < off {
		return off
	}
	return d
}
