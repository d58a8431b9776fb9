// Package tailer follows log files by name and relays their lines to one writer,
// with `tail -n+1 -F` semantics and without losing, repeating or splitting a line.
//
// "Follow" means, for each path:
//   - read the open file to EOF, emit whole lines, hold a partial last line;
//   - then stat the path and name what happened: nothing (wait for a wakeup),
//     truncated (smaller than our offset, or refilled past it: the bytes just before
//     our offset changed), replaced (the path names another file: rename rotation,
//     delete+recreate, symlink swap) or gone;
//   - a replaced or gone file is drained: read to EOF and then until it has been quiet
//     for the settle period, because a writer may still hold the old descriptor;
//     only then is the new file read, from its head. Meanwhile every file that takes
//     the path is opened (pinned) the moment an event says names changed in its
//     folder, so a rotation chain faster than the reader (or than stdout) loses no
//     file.
//   - with checkpoints, where the output got is recorded on the shared volume after
//     every write, and a restarted sidecar resumes there, in a file rotated while it
//     was down if need be.
//
// Wakeups come from inotify on each file's parent directory (rotation replaces the
// file, so a watch on the file alone would miss it) and its link target's, read by
// inotify.go rather than fsnotify (see there why), with stat polling when inotify
// cannot be used. The system calls of a wakeup are raw (rawcall.go). A follower is one goroutine: its parts are
// position (where reading stands), identity (which file, the registry of claimed
// files), pinner, emitter (output, multiline records), checkpointer and cutter.
package tailer
