package tailer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sidetail/sidetail/internal/durable"
	"github.com/sidetail/sidetail/internal/fileid"
)

// Checkpoints keeps, per followed path, which files were being read and how far
// their lines reached stdout, so a restarted sidecar neither repeats nor skips
// lines. It lives on the shared volume, beside the logs, to outlive the container.
//
// Each path has two files: NAME.json, the files being read (identity, head, the
// files pinned behind) with a generation number, written whole (temp + rename) when
// the file being read changes, is truncated or cut; and NAME.pos, written in place
// after every write to stdout by one write: an 8-byte word, the generation and the
// offset the output reached, then the mark, the file's last bytes before that
// offset, which tell a file truncated and refilled past it while we were down. Both
// outlive a SIGKILL in the page cache without fsync, so a restart repeats at most
// the last output write; a node crash is not covered.
type Checkpoints struct {
	dir      string
	readOnly bool // checkpoints are read at start-up, never saved
}

// ErrCheckpointsReadOnly is returned with a usable *Checkpoints when the state dir
// exists but cannot be written: a restart still resumes from what it holds.
var ErrCheckpointsReadOnly = errors.New("state dir not writable: resuming from its checkpoints, saving none")

// OpenCheckpoints uses dir (creating it) for checkpoints, after checking it can be
// written.
func OpenCheckpoints(dir string) (*Checkpoints, error) {
	mkErr := os.MkdirAll(dir, 0o755)
	err := durable.CanWrite(dir)
	if err == nil {
		return &Checkpoints{dir: dir}, nil
	}
	if info, serr := os.Stat(dir); serr == nil && info.IsDir() {
		return &Checkpoints{dir: dir, readOnly: true}, fmt.Errorf("%w: %s: %v", ErrCheckpointsReadOnly, dir, err)
	}
	if mkErr != nil {
		return nil, fmt.Errorf("create state dir %s: %w", dir, mkErr)
	}
	return nil, fmt.Errorf("write state dir %s: %w", dir, err)
}

// checkpoint is what is saved for one path: the file being read, then the files
// that took the path after it, oldest first.
type checkpoint struct {
	Path  string      `json:"path"`
	Files []filePoint `json:"files"`
	// Gen numbers the saves of a path: NAME.pos holds the offset in Files[0] only
	// while its generation is this one. Absent in checkpoints of sidetail before
	// NAME.pos, which then have no NAME.pos either.
	Gen uint16 `json:"gen,omitempty"`
	// posCorrupt says NAME.pos held no offset: the one saved with Files is used.
	posCorrupt bool
}

// filePoint identifies a file (never by name alone: it may have been renamed since)
// and says where its next unwritten line starts.
type filePoint struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Born   int64  `json:"born,omitempty"`
	Head   []byte `json:"head"`
	Offset int64  `json:"offset"`
	// Removed is how many bytes rotation had cut from the file's front when this
	// was saved: a restart finding more moves Offset down by the difference.
	Removed int64 `json:"removed,omitempty"`
	// mark is the file's bytes just before Offset, from NAME.pos: the file being
	// read only, and none in a NAME.pos of sidetail before the mark.
	mark []byte
}

func pointOf(o *openFile, off int64) filePoint {
	return filePoint{Dev: o.key.Dev, Ino: o.key.Ino, Born: o.key.Born, Head: o.head, Offset: off, Removed: o.removed}
}

func (p filePoint) key() fileid.Key { return fileid.Key{Dev: p.Dev, Ino: p.Ino, Born: p.Born} }

// in returns where to resume in o, the file at the path, for p: p's offset, moved
// down by what rotation cut from o's front since p was saved (removed is the total
// now). Then its head is another, and the key alone (with birth time) tells the
// file. ok is false when o is not p's file, or changed.
func (p filePoint) in(o *openFile, removed int64) (off int64, ok bool) {
	cut := removed - p.Removed
	if o.key != p.key() || cut <= 0 {
		return p.Offset, p.matches(o)
	}
	off = max(p.Offset-cut, 0)
	return off, o.info.Size() >= off
}

// matches reports whether the open file is the one p describes, unchanged up to p's
// offset as far as its size, head and mark tell (a hole punched over the head or
// the mark since, by rotation on tmpfs, is no change).
func (p filePoint) matches(o *openFile) bool {
	at := position{off: p.Offset, mark: p.mark}
	return o.key == p.key() && !at.truncated(o, o.info.Size(), head(p.Head))
}

func (c *Checkpoints) file(path string) string { return c.name(path) + ".json" }

// posFile holds path's offset and the mark before it.
func (c *Checkpoints) posFile(path string) string { return c.name(path) + ".pos" }

func (c *Checkpoints) name(path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:8]))
}

// load returns the checkpoint of path, with the offset NAME.pos holds for its
// generation; found is false when there is none.
func (c *Checkpoints) load(path string) (cp checkpoint, found bool, err error) {
	data, err := os.ReadFile(c.file(path))
	if errors.Is(err, fs.ErrNotExist) {
		return cp, false, nil
	}
	if err != nil {
		return cp, false, err
	}
	if err := json.Unmarshal(data, &cp); err != nil || cp.Path != path || len(cp.Files) == 0 {
		return cp, false, fmt.Errorf("corrupt checkpoint %s", c.file(path))
	}
	if data, err := os.ReadFile(c.posFile(path)); err == nil {
		gen, off, mark, ok := unpackPos(data)
		if ok && gen == cp.Gen {
			cp.Files[0].Offset, cp.Files[0].mark = off, mark
		}
		cp.posCorrupt = !ok && len(data) > 0 // empty: made, never written (killed right after the first save)
	}
	return cp, true, nil
}

// NAME.pos holds a word, the generation in the top 16 bits and the offset below (up
// to 256 TiB), then the mark's length in 2 bytes and the mark: one write replaces
// them all at once. sidetail before the mark wrote the word alone.
const posHeader = 8 + 2

// packPos returns the start of NAME.pos for gen, off and a mark of n bytes, which
// follows it.
func packPos(gen uint16, off int64, n int) (h [posHeader]byte) {
	binary.LittleEndian.PutUint64(h[:], uint64(gen)<<48|uint64(off)&(1<<48-1))
	binary.LittleEndian.PutUint16(h[8:], uint16(n))
	return h
}

// unpackPos reads what packPos wrote, or the word alone; ok is false for anything
// else. A mark shorter than it was before leaves the longer one's end behind it.
func unpackPos(data []byte) (gen uint16, off int64, mark []byte, ok bool) {
	if len(data) < 8 {
		return 0, 0, nil, false
	}
	word := binary.LittleEndian.Uint64(data)
	gen, off = uint16(word>>48), int64(word&(1<<48-1))
	if len(data) == 8 {
		return gen, off, nil, true
	}
	if len(data) < posHeader {
		return 0, 0, nil, false
	}
	n := int(binary.LittleEndian.Uint16(data[8:]))
	if n > markLen || n > int(off) || len(data) < posHeader+n {
		return 0, 0, nil, false
	}
	return gen, off, data[posHeader : posHeader+n], true
}

// save writes cp atomically: a crash leaves the old checkpoint or the new one.
func (c *Checkpoints) save(cp checkpoint) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	// A lost checkpoint only repeats lines: it must outlive our crash, not the node's.
	return durable.WriteFile(c.file(cp.Path), data, 0o644, durable.Crash)
}

func (c *Checkpoints) remove(path string) {
	os.Remove(c.file(path))
	os.Remove(c.posFile(path))
}

// prune removes the checkpoints of paths that are not followed any more and no
// longer exist.
func (c *Checkpoints) prune(sources []Source) {
	if c.readOnly {
		return
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(c.dir, e.Name()))
		var cp checkpoint
		if err != nil || json.Unmarshal(data, &cp) != nil {
			continue // load reports it when its path is followed
		}
		if _, err := os.Stat(cp.Path); err == nil || followed(sources, cp.Path) {
			continue
		}
		c.remove(cp.Path)
	}
}

func followed(sources []Source, path string) bool {
	for _, s := range sources {
		if s.Path == path {
			return true
		}
		if ok, _ := filepath.Match(s.Path, path); ok && s.IsGlob() {
			return true
		}
	}
	return false
}

// checkpointer owns one path's checkpoints: it finds where to resume at start-up,
// saves the files being read when they change, and records after every output
// write how far it reached. A nil checkpointer (checkpoints off) does nothing.
type checkpointer struct {
	cps     *Checkpoints
	path    string
	log     *slog.Logger
	gen     uint16
	pos     *os.File // NAME.pos, open for the writes after each output write
	posRaw  bool     // pos is on a page-cached filesystem: its writes are raw (rawcall.go)
	warned  bool     // a failed save was reported
	resumed bool     // the checkpoint was looked at: only the first file opened resumes
	m       *FileMetrics
}

func newCheckpointer(cps *Checkpoints, path string, log *slog.Logger) *checkpointer {
	if cps == nil {
		return nil
	}
	return &checkpointer{cps: cps, path: path, log: log}
}

// start opens NAME.pos until the returned stop is called.
func (c *checkpointer) start() (stop func()) {
	if c == nil || c.cps.readOnly {
		return func() {}
	}
	pos, err := os.OpenFile(c.cps.posFile(c.path), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		c.warn(err)
		return func() {}
	}
	c.pos, c.posRaw = pos, pageCached(pos)
	return func() { pos.Close() }
}

// save records cur, the file being read and how far its output got, with mark,
// the bytes before that, and the files pinned behind it, as a new generation. It
// is called when the file being read changes, is truncated or cut: rarely, so it
// is done at once, on the follower's goroutine, and a restart finds exactly this.
func (c *checkpointer) save(cur filePoint, mark []byte, pins *pinner) {
	if c == nil || c.pos == nil {
		return
	}
	c.gen++
	cp := checkpoint{Path: c.path, Files: append([]filePoint{cur}, pins.points()...), Gen: c.gen}
	err := c.cps.save(cp)
	c.m.CheckpointSaved(err)
	if err != nil {
		c.warn(err)
		return
	}
	c.wrote(cur.Offset, mark)
}

// wrote records that the output reached off in the file being read, with mark,
// the file's bytes just before it: one write in place, after every write to stdout.
func (c *checkpointer) wrote(off int64, mark []byte) {
	if c == nil || c.pos == nil {
		return
	}
	header := packPos(c.gen, off, len(mark))
	n, err := retryEINTR(func() (int, error) { return pwriteTwo(int(c.pos.Fd()), header[:], mark, 0, c.posRaw) })
	if err == nil && n < len(header)+len(mark) {
		err = io.ErrShortWrite // a new header over an old mark's end: a restart would read the file again
	}
	if err != nil {
		c.warn(err)
	}
}

func (c *checkpointer) warn(err error) {
	if !c.warned {
		c.warned = true
		c.log.Warn("cannot save checkpoint", "path", c.path, "err", err)
	}
}

// remove drops the checkpoint of a globbed file that is gone and drained.
func (c *checkpointer) remove() {
	if c != nil && !c.cps.readOnly {
		c.cps.remove(c.path)
	}
}

// resume returns the files to read, oldest first, given o, the file at the path
// now: where the checkpoint says reading stopped, possibly in a file rotated to
// another name while we were down, then every file after it. Without a usable
// checkpoint it is just o.
func (c *checkpointer) resume(o *openFile, files *registry, removed func(fs.FileInfo) int64) []*openFile {
	if c == nil || c.resumed {
		return []*openFile{o}
	}
	c.resumed = true
	cp, found, err := c.cps.load(c.path)
	if err != nil {
		c.log.Warn("ignoring checkpoint, reading from the head", "path", c.path, "err", err)
		o.start = 0
		return []*openFile{o}
	}
	if !found {
		return []*openFile{o}
	}
	c.gen = cp.Gen
	if cp.posCorrupt {
		c.log.Warn("corrupt checkpoint offset, resuming where the file being read was last saved: lines after it repeat", "path", c.path, "file", c.cps.posFile(c.path))
	}
	total := removed(o.info)  // after finishing a cut a crash interrupted:
	o.head = readHead(o.File) // then its front is another
	if info, err := o.Stat(); err == nil {
		o.info = info
	}
	var chain []*openFile
	for _, p := range cp.Files {
		got := o
		off, ok := p.in(o, total)
		if !ok {
			got, off = findFile(files, filepath.Dir(c.path), p), p.Offset
		}
		if target := filepath.Dir(resolved(c.path)); got == nil && target != filepath.Dir(c.path) {
			got = findFile(files, target, p)
		}
		if got == nil {
			c.log.Warn("checkpointed file is gone or changed, skipping it", "path", c.path, "inode", p.Ino)
			continue
		}
		got.start = off
		chain = append(chain, got)
		if got == o {
			return chain
		}
	}
	o.start = 0
	if len(chain) == 0 {
		c.log.Warn("checkpoint matches no file, reading from the head", "path", c.path)
		return []*openFile{o}
	}
	c.log.Info("resuming in a file rotated while stopped", "path", c.path, "file", chain[0].Name())
	// Files rotated in and out while we were down, and not yet checkpointed as
	// pinned, come between the last checkpointed file and the path's file.
	chain = append(chain, rotatedBetween(files, nil, resolved(c.path), chain[len(chain)-1].key, o.key, o.info)...)
	return append(chain, o)
}
