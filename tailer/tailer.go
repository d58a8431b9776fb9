package tailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config holds what every follower shares.
type Config struct {
	Format  Format
	MaxLine int           // longer lines are cut into pieces of at most this many bytes
	Settle  time.Duration // how long a rotated-away file must be quiet before we leave it
	// FromTail starts files present at start-up at their end instead of their head.
	FromTail     bool
	Poll         bool // never use inotify
	PollInterval time.Duration
	Log          *slog.Logger
	// Checkpoints, when set, makes a restart resume where the output stopped.
	Checkpoints *Checkpoints
	// Multiline, when set, joins the lines of the tags it has a pattern for.
	Multiline *Multiline
	// Cut, when set, is called every CutInterval by the follower of each path that
	// is not a glob, from the follower's goroutine, with the file it reads and the
	// offset below which everything went out. It may remove bytes from the front of
	// the file, below that offset, and returns how many: the follower moves its
	// offsets down by as much before it reads again, so nothing is lost or repeated.
	Cut         func(path string, reading fs.FileInfo, emitted int64) (removed int64, err error)
	CutInterval time.Duration
	// Removed, when set, returns how many bytes Cut has ever removed from the front
	// of the file read at path (0 for a file never cut), after finishing a cut a
	// crash interrupted: a checkpoint that saved it resumes that much lower.
	Removed func(path string, reading fs.FileInfo) (int64, error)
}

// Source is one PATH argument: a file or a glob, with the tag its lines carry.
type Source struct {
	Tag  string // empty: each file's base name without its extension
	Path string
}

// IsGlob reports whether the path has glob metacharacters.
func (s Source) IsGlob() bool { return strings.ContainsAny(s.Path, "*?[") }

// globRescan is how often globs are matched again even without a wakeup.
const globRescan = time.Second

// Output is the one writer every follower shares. Each write is one segment of whole
// lines, written under the lock in full, so lines of different files never interleave.
type Output struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewOutput returns an Output writing to w.
func NewOutput(w io.Writer) *Output { return &Output{w: w} }

func (o *Output) write(p []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	if _, err := o.w.Write(p); err != nil {
		if errors.Is(err, syscall.EPIPE) {
			err = ErrOutputClosed
		}
		o.err = fmt.Errorf("write output: %w", err)
	}
	return o.err
}

// ErrOutputClosed means the reader of our output went away (EPIPE).
var ErrOutputClosed = errors.New("stdout closed")

// Run follows every source and writes their lines to out until ctx is done, then
// reads every file to its current EOF, writes that too and returns nil. It returns
// early only when the output fails.
func Run(ctx context.Context, cfg Config, sources []Source, out *Output) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	w := NewWatcher(cfg.Log, cfg.Poll)
	var watchDone sync.WaitGroup
	watchDone.Go(func() { w.Run(watchCtx) })
	defer func() {
		stopWatch()
		watchDone.Wait()
	}()

	// An output error ends everything: cancel, so the others stop at their next write.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var failOnce sync.Once
	var failed error
	fail := func(err error) {
		if err != nil {
			failOnce.Do(func() { failed = err })
			cancel()
		}
	}
	t := &tailer{cfg: &cfg, out: out, files: newRegistry(), watcher: w}
	if cfg.Checkpoints != nil {
		cfg.Checkpoints.prune(sources)
	}
	var wg sync.WaitGroup
	for _, src := range sources {
		if src.IsGlob() {
			wg.Go(func() { fail(t.scan(ctx, src)) })
			continue
		}
		tag := src.Tag
		if tag == "" {
			tag = DefaultTag(src.Path)
		}
		wg.Go(func() { fail(t.follower(src.Path, tag, cfg.FromTail, false).run(ctx, w)) })
	}
	wg.Wait()
	return failed
}

// DefaultTag is the tag of a file without an explicit one: its base name without
// its extension.
func DefaultTag(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

type tailer struct {
	cfg     *Config
	out     *Output
	files   *registry
	watcher *Watcher
}

func (t *tailer) follower(path, tag string, fromTail, globbed bool) *follower {
	f := &follower{
		path: path, tag: tag, cfg: t.cfg, out: t.out, files: t.files,
		log: t.cfg.Log, fromTail: fromTail, globbed: globbed, cps: t.cfg.Checkpoints,
	}
	if re := t.cfg.Multiline.pattern(tag); re != nil {
		f.rec = &recorder{start: re, max: t.cfg.Multiline.MaxRecord}
	}
	return f
}

// scan follows every file the glob matches, now and later. A file that vanishes is
// drained by its follower, which then ends; the file is followed again if it returns.
func (t *tailer) scan(ctx context.Context, src Source) error {
	// Wakeups from the glob's directory, when it has no metacharacters, make new
	// files show up at once; the rescan ticker covers the rest.
	dir := filepath.Dir(src.Path)
	var wake chan struct{}
	if !strings.ContainsAny(dir, "*?[") {
		wake, _ = t.watcher.Subscribe(dir)
		defer t.watcher.Unsubscribe(dir, wake)
	}
	tick := time.NewTicker(globRescan)
	defer tick.Stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	ended := make(chan string)
	followed := map[string]bool{}
	errc := make(chan error, 1)
	first := true
	start := func() {
		matches, _ := filepath.Glob(src.Path) // the pattern was checked at start-up
		for _, m := range matches {
			if followed[m] {
				continue
			}
			if info, err := os.Stat(m); err != nil || info.IsDir() {
				continue
			}
			followed[m] = true
			tag := src.Tag
			if tag == "" {
				tag = DefaultTag(m)
			}
			f := t.follower(m, tag, first && t.cfg.FromTail, true)
			wg.Go(func() {
				if err := f.run(ctx, t.watcher); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
				select {
				case ended <- m:
				case <-ctx.Done():
				}
			})
		}
		first = false
	}
	for {
		start()
		select {
		case <-ctx.Done():
			start() // files created just before the signal are drained too
			return nil
		case err := <-errc:
			return err
		case m := <-ended:
			delete(followed, m)
			continue
		case <-wake:
		case <-tick.C:
		}
	}
}

// fileKey identifies a file on this node whatever its name. The birth time, where
// the filesystem has one (ext4, xfs, btrfs, tmpfs), tells a reused inode number from
// the file that had it before.
type fileKey struct {
	dev, ino uint64
	born     int64
}

func keyOf(file *os.File, info fs.FileInfo) fileKey {
	var k fileKey
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = uint64(st.Dev), st.Ino
	}
	var stx unix.Statx_t
	if unix.Statx(int(file.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_BTIME, &stx) == nil &&
		stx.Mask&unix.STATX_BTIME != 0 {
		k.born = stx.Btime.Sec*1e9 + int64(stx.Btime.Nsec)
	}
	return k
}

// registry knows which files are being read and where reading stopped for files that
// were let go, so a rotated file found again under its new name (app.log.1 matching
// the same glob) continues where it was left instead of being read twice.
type registry struct {
	mu     sync.Mutex
	active map[fileKey]bool
	left   map[fileKey]leftAt
}

type leftAt struct {
	head []byte
	off  int64
}

// maxLeft bounds the memory of files let go; losing an entry only means a file
// seen again under another name is read from its head.
const maxLeft = 1024

func newRegistry() *registry {
	return &registry{active: map[fileKey]bool{}, left: map[fileKey]leftAt{}}
}

// claim marks a file as being read and returns where to start. ok is false while
// another follower reads it.
func (r *registry) claim(key fileKey, head []byte, size int64) (start int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active[key] {
		return 0, false
	}
	r.active[key] = true
	if l, found := r.left[key]; found {
		delete(r.left, key)
		// The inode may have been reused by a new file: trust it only if the head
		// bytes we saw are still there and nothing was cut from it.
		if l.off <= size && len(head) >= len(l.head) && bytes.Equal(head[:len(l.head)], l.head) {
			return l.off, true
		}
	}
	return 0, true
}

// release records where reading of a file stopped. A deleted file cannot be found
// again, so it is forgotten: its inode number may go to a new file.
func (r *registry) release(key fileKey, head []byte, off int64, deleted bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.active, key)
	if deleted {
		return
	}
	if len(r.left) >= maxLeft {
		for k := range r.left {
			delete(r.left, k)
			break
		}
	}
	r.left[key] = leftAt{head: head, off: off}
}
