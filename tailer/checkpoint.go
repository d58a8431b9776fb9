package tailer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sidetail/sidetail/internal/fileid"
)

// When checkpoints are written. A follower hands its position to its saver whenever
// it has caught up with its file, switches files, and while catching up every
// saveBytes; the saver writes the newest position at most once per saveGap. A save
// (create, write, rename) costs about 1 ms of CPU on this project's ext4 test
// machine, so saves counted in bytes cost a catch-up at 2 GB/s 5% at 32 MiB and 11%
// at 8 MiB; counted in time they cost 1% at any speed. After SIGKILL, what is
// written again is at most the last saveGap of output, or saveBytes if more.
const (
	saveBytes = 1 << 20
	saveGap   = 100 * time.Millisecond
)

// saver runs a follower's checkpoint writes on a goroutine of their own, so the
// reader never waits for a write and a rename; when saves come faster than the disk
// takes them, only the newest is written.
type saver struct {
	mu   sync.Mutex
	next func()
	wake chan struct{}
}

// put replaces the pending write with op.
func (s *saver) put(op func()) {
	s.mu.Lock()
	s.next = op
	s.mu.Unlock()
	notify(s.wake)
}

// run does the pending write on each wakeup, at most once per saveGap, and the
// last one at once when done is closed.
func (s *saver) run(done <-chan struct{}) {
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		select {
		case <-s.wake:
		case <-done:
			s.do()
			return
		}
		select {
		case <-gap.C:
		case <-done:
			s.do()
			return
		}
		s.do()
		gap.Reset(saveGap)
	}
}

func (s *saver) do() {
	s.mu.Lock()
	op := s.next
	s.next = nil
	s.mu.Unlock()
	if op != nil {
		op()
	}
}

// Checkpoints keeps, per followed path, which files were being read and how far
// their lines reached stdout, so a restarted sidecar neither repeats nor skips
// lines. It lives on the shared volume, beside the logs, to outlive the container.
type Checkpoints struct {
	dir string
}

// OpenCheckpoints uses dir (creating it) for checkpoints, after checking it can be
// written.
func OpenCheckpoints(dir string) (*Checkpoints, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir %s: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("write state dir %s: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &Checkpoints{dir: dir}, nil
}

// checkpoint is what is saved for one path: the file being read, then the files
// that took the path after it, oldest first.
type checkpoint struct {
	Path  string      `json:"path"`
	Files []filePoint `json:"files"`
}

// filePoint identifies a file (never by name alone: it may have been renamed since)
// and says where its next unwritten line starts.
type filePoint struct {
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Born   int64  `json:"born,omitempty"`
	Head   []byte `json:"head"`
	Offset int64  `json:"offset"`
}

func pointOf(o *openFile, off int64) filePoint {
	return filePoint{Dev: o.key.Dev, Ino: o.key.Ino, Born: o.key.Born, Head: o.head, Offset: off}
}

func (p filePoint) key() fileid.Key { return fileid.Key{Dev: p.Dev, Ino: p.Ino, Born: p.Born} }

// matches reports whether the open file is the one p describes, unchanged up to p's
// offset as far as its head and size tell.
func (p filePoint) matches(o *openFile) bool {
	return o.key == p.key() && o.info.Size() >= p.Offset && head(p.Head).of(o.head)
}

func (c *Checkpoints) file(path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:8])+".json")
}

// load returns the checkpoint of path; found is false when there is none.
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
	return cp, true, nil
}

// save writes cp atomically: a crash leaves the old checkpoint or the new one.
func (c *Checkpoints) save(cp checkpoint) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	final := c.file(cp.Path)
	tmp := final + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

func (c *Checkpoints) remove(path string) { os.Remove(c.file(path)) }

// prune removes the checkpoints of paths that are not followed any more and no
// longer exist.
func (c *Checkpoints) prune(sources []Source) {
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
		os.Remove(filepath.Join(c.dir, e.Name()))
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
// and saves how far the output got, now or when due, through a saver goroutine.
// A nil checkpointer (checkpoints off) does nothing.
type checkpointer struct {
	cps     *Checkpoints
	path    string
	log     *slog.Logger
	saver   *saver
	saved   filePoint
	resumed bool // the checkpoint was looked at: only the first file opened resumes
}

func newCheckpointer(cps *Checkpoints, path string, log *slog.Logger) *checkpointer {
	if cps == nil {
		return nil
	}
	return &checkpointer{cps: cps, path: path, log: log, saver: &saver{wake: make(chan struct{}, 1)}}
}

// start runs the saver until the returned stop is called; stop returns once the
// last checkpoint is on disk.
func (c *checkpointer) start() (stop func()) {
	if c == nil {
		return func() {}
	}
	done := make(chan struct{})
	var saving sync.WaitGroup
	saving.Go(func() { c.saver.run(done) })
	return func() {
		close(done)
		saving.Wait()
	}
}

// saveNow saves cur, the file being read and how far its output got, with the files
// pinned behind it, unless that is what was saved last.
func (c *checkpointer) saveNow(cur filePoint, pins *pinner) {
	if c == nil || (cur.Offset == c.saved.Offset && cur.key() == c.saved.key()) {
		return
	}
	c.put(cur, pins.points())
}

// saveIfDue saves cur while catching up: on a file switch, or once saveBytes more
// went out.
func (c *checkpointer) saveIfDue(cur filePoint, pins *pinner) {
	if c == nil || (cur.key() == c.saved.key() && cur.Offset-c.saved.Offset < saveBytes) {
		return
	}
	c.put(cur, pins.points())
}

func (c *checkpointer) put(cur filePoint, pinned []filePoint) {
	cp := checkpoint{Path: c.path, Files: append([]filePoint{cur}, pinned...)}
	c.saver.put(func() {
		if err := c.cps.save(cp); err != nil {
			c.log.Warn("cannot save checkpoint", "path", c.path, "err", err)
		}
	})
	c.saved = cur
}

// forget makes the next save happen whatever it holds: the saved position points
// into bytes a cut removed.
func (c *checkpointer) forget() {
	if c != nil {
		c.saved = filePoint{}
	}
}

// remove drops the checkpoint of a globbed file that is gone and drained.
func (c *checkpointer) remove() {
	if c != nil {
		c.saver.put(func() { c.cps.remove(c.path) })
	}
}

// resume returns the files to read, oldest first, given o, the file at the path
// now: where the checkpoint says reading stopped, possibly in a file rotated to
// another name while we were down, then every file after it. Without a usable
// checkpoint it is just o.
func (c *checkpointer) resume(o *openFile, files *registry) []*openFile {
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
	var chain []*openFile
	for _, p := range cp.Files {
		got := o
		if !p.matches(o) {
			got = findFile(files, filepath.Dir(c.path), p)
		}
		if target := filepath.Dir(resolved(c.path)); got == nil && target != filepath.Dir(c.path) {
			got = findFile(files, target, p)
		}
		if got == nil {
			c.log.Warn("checkpointed file is gone or changed, skipping it", "path", c.path, "inode", p.Ino)
			continue
		}
		got.start = p.Offset
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
	chain = append(chain, rotatedBetween(files, resolved(c.path), chain[len(chain)-1].key, o.key)...)
	return append(chain, o)
}
