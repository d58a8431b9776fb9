// Package rotate keeps an application's log file bounded on a shared volume without
// losing what the application writes meanwhile. The head of the live file, whole
// lines only, is copied into a timestamped archive and made durable; only then is
// exactly that head removed from the live file while the writer keeps appending:
// FALLOC_FL_COLLAPSE_RANGE where the filesystem has it (ext4, xfs: the file
// shrinks), FALLOC_FL_PUNCH_HOLE elsewhere (tmpfs: the space is freed, the apparent
// size stays), copytruncate as a last resort.
//
// Both fallocate operations work in whole filesystem blocks, so the cut lands
// inside a line. The archive takes that whole line, and what the live file keeps
// of it is overwritten with spaces ending in a newline; a small state file beside
// the archives records where the live file's first unarchived byte is, so the
// next archive starts there and no line is ever in two archives or split between
// them.
//
// Every step that moves or removes bytes (an archive's rename, a collapse, a
// punch, a truncate) is recorded in the state before it, with the evidence that
// tells afterwards whether it happened (names, offsets, sizes, a hash of 64 KiB
// at the cut), and as done after it. A crash at any point is resolved from that
// evidence by the next call (Cut, CutAll or Removed), which finishes the cut.
package rotate

import (
	"log/slog"
	"time"
)

// Method is how the archived head is removed from the live file.
type Method string

// The methods; Auto picks the first the filesystem supports, in this order.
const (
	Auto         Method = "auto"
	Collapse     Method = "collapse"
	Punch        Method = "punch"
	CopyTruncate Method = "copytruncate"
)

// Config is what every rotated file shares.
type Config struct {
	MaxSize  int64         // cut once the file holds this many unarchived bytes
	MaxFiles int           // archives kept per file
	MaxAge   time.Duration // archives modified longer ago are deleted; 0: no limit
	Compress bool          // gzip archives
	// ArchiveDir holds the archives and the state files; empty: beside each file.
	ArchiveDir string
	Method     Method
	// FollowSymlinks allows a live file named through a symbolic link.
	FollowSymlinks bool
	Log            *slog.Logger
}

// MinSize is the smallest MaxSize: below it a cut would archive a few blocks at a
// time, and the archives would be mostly gzip headers and names.
const MinSize = 64 << 10
