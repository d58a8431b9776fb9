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
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
)

// Config holds what every follower shares.
type Config struct {
	Format  Format
	MaxLine int           // longer lines are cut into pieces of at most this many bytes
	Settle  time.Duration // how long a rotated-away file must be quiet before we leave it
	// FromTail starts files present at start-up at their end instead of their head.
	FromTail bool
	// LineEndWait is how long the drain at shutdown waits for the rest of a line a
	// file ends in the middle of: an app writing a line in pieces, or preempted in
	// the middle of its write. 0: not at all, the piece goes out as a line.
	LineEndWait  time.Duration
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
	// MaxPinnedBytes bounds the disk that files rotated away and deleted, held open
	// for a reader behind (a slow stdout), keep in use; past it the oldest is given
	// up. 0: no bound.
	MaxPinnedBytes int64
	// Sockets are served beside the files (see socket.go); Run closes them.
	Sockets []*Socket
	// Metrics, when set, counts what the followers do and answers the probes.
	Metrics *Metrics
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

// IsGlob reports whether the source's path has glob metacharacters.
func (s Source) IsGlob() bool { return IsGlob(s.Path) }

// IsGlob reports whether path has glob metacharacters (those of filepath.Match).
func IsGlob(path string) bool { return strings.ContainsAny(path, "*?[") }

// Output is the one writer every follower shares. Each write is one segment of whole
// lines, written under the lock in full, so lines of different files never interleave.
type Output struct {
	mu   sync.Mutex
	w    io.Writer
	err  error
	pace *rate.Limiter // nil: as fast as the reader takes it
	// now and sleep are the clock pacing goes by (tests drive their own).
	now   func() time.Time
	sleep func(time.Duration)
	pipe  *pipe  // nil: w is not a pipe
	meter *Meter // nil: not measured
}

// Meter counts an Output's writes, for the monitor, which reads it while they go
// on: bytes written, writes, the time spent in them and when the one under way
// began (0: none), which tells a reader that stopped reading.
type Meter struct {
	Bytes, Writes, Nanos atomic.Int64
	Since                atomic.Int64 // Unix nanoseconds
}

// Measure makes o count its writes in m.
func (o *Output) Measure(m *Meter) { o.meter = m }

// NewOutput returns an Output writing to w.
func NewOutput(w io.Writer) *Output {
	o := &Output{w: w, now: time.Now, sleep: time.Sleep}
	if f, ok := w.(*os.File); ok {
		o.pipe = growPipe(f)
	}
	return o
}

// pipeSize is what a pipe on stdout is grown to: the most an unprivileged process
// may ask for by default (/proc/sys/fs/pipe-max-size).
const pipeSize = 1 << 20

// growPipe makes a pipe on stdout hold pipeSize bytes, when it is a pipe and the
// system allows: a follower's write of a wakeup's lines then fits whole and
// returns, rather than sleep until the reader has taken most of it; every such
// sleep costs a thread switch or several (the Go scheduler hands the blocked
// thread's processor on). Memory is taken only as bytes wait in the pipe. It
// returns the pipe, nil when f is none.
func growPipe(f *os.File) *pipe {
	info, err := f.Stat()
	if err != nil || info.Mode()&fs.ModeNamedPipe == 0 {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	p := &pipe{page: os.Getpagesize(), shared: sameFile(info, os.Stderr)}
	cerr := rc.Control(func(fd uintptr) {
		// A failure (EPERM above the limit, EBUSY) leaves the pipe as it was.
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize)
		p.size, err = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0)
		p.fd = int(fd) // stdout: open for as long as we run
		p.quick = newQuickWriter(p.fd)
	})
	if cerr != nil || err != nil {
		return nil
	}
	return p
}

// pipe is stdout as a pipe, where a write must not be cut by SIGKILL. A write that
// fits in the pipe's free room is copied whole before the call returns; one that
// does not sleeps once the pipe is full, and if SIGKILL comes then, the part
// already copied stays in the pipe: a line cut in two, which the restart repeats
// whole after it. Writes of at most atomicWrite bytes are never cut (POSIX
// PIPE_BUF): they wait until they fit. So a write larger than the room goes out
// as runs of whole lines of at most that size.
type pipe struct {
	fd   int
	size int // bytes the pipe holds
	page int
	// free is a floor under the pages free in the pipe: what the kernel said at the
	// last look, less what our writes since can have taken. Only we write to a
	// container's stdout, and the reader only frees pages, so a write within it
	// needs no look: with a reader that keeps up, one look serves many wakeups.
	// Where that is wrong (another writer, a packet-mode pipe), the write finds
	// less room than counted; it cannot sleep (quickWriter), and the rest goes
	// the usual way.
	free int
	// shared is set when stderr is the same pipe (2>&1): our diagnostics are not
	// counted, so every write larger than atomicWrite looks again, as it must.
	shared bool
	quick  *quickWriter // writes that fit (rawcall.go)
}

// sameFile reports whether f is the file info describes.
func sameFile(info fs.FileInfo, f *os.File) bool {
	other, err := f.Stat()
	return err == nil && os.SameFile(info, other)
}

// atomicWrite is PIPE_BUF on Linux.
const atomicWrite = 4096

// fits reports whether n bytes surely fit in the pipe's free room now. Only we
// write to it, so the room can only grow until our next write. The kernel keeps a
// pipe's bytes in pages: a write of at most a page that does not fit in the last
// one's rest takes a new page, so pages may be little more than half full (two
// pages in a row always hold more than one). The room is counted as the pages
// left when the queued bytes take twice their pages, and two more. (TIOCINQ is
// FIONREAD: the bytes queued.) The kernel is asked only when the floor is too low.
// A write that fits goes out whole in one call, a raw one (rawcall.go).
func (p *pipe) fits(n int) bool {
	if p.pages(n) <= p.free {
		return true
	}
	queued, err := rawQueued(p.fd)
	if err != nil {
		return false // written the careful way
	}
	p.free = p.size/p.page - 2*p.pages(queued) - 2
	return p.pages(n) <= p.free
}

// wrote counts a write of n bytes against the floor. The kernel fills the last
// page's rest, then whole new pages, so n bytes take at most pages(n) of them.
func (p *pipe) wrote(n int) {
	p.free -= p.pages(n)
	if p.shared {
		p.free = 0
	}
}

// pages returns how many pages n bytes fill.
func (p *pipe) pages(n int) int { return (n + p.page - 1) / p.page }

// atomicRun returns the length of the first piece of b to write when it does not
// fit: its whole lines within atomicWrite bytes, or the first line alone when it
// is longer (that one may be cut).
func atomicRun(b []byte) int {
	if len(b) <= atomicWrite {
		return len(b)
	}
	if nl := bytes.LastIndexByte(b[:atomicWrite], '\n'); nl >= 0 {
		return nl + 1
	}
	if nl := bytes.IndexByte(b[atomicWrite:], '\n'); nl >= 0 {
		return atomicWrite + nl + 1
	}
	return len(b)
}

// Pace limits the output to bytesPerSecond on average, for every follower together:
// a write waits until the bucket holds its bytes, so lines are delayed, never split
// or dropped. The bucket holds one second's worth, so output below the rate is not
// delayed at all.
func (o *Output) Pace(bytesPerSecond int) {
	o.pace = rate.NewLimiter(rate.Limit(bytesPerSecond), bytesPerSecond)
}

func (o *Output) write(p []byte) error {
	o.hold()
	defer o.release()
	return o.put(p)
}

// hold locks the output for a run of puts that must reach it with no other file's
// bytes in between: a long line written in pieces rather than copied whole into one
// buffer. release ends the run.
func (o *Output) hold() { o.mu.Lock() }

func (o *Output) release() { o.mu.Unlock() }

// put writes p while the output is held, paced if asked. After a failure every
// write fails the same way.
func (o *Output) put(p []byte) error {
	if o.err != nil {
		return o.err
	}
	o.wait(len(p))
	if o.pipe == nil {
		o.send(p)
		return o.err
	}
	if o.pipe.fits(len(p)) {
		o.sendRaw(p)
	} else {
		o.sendCareful(p)
	}
	return o.err
}

// sendCareful writes p to the pipe in runs of whole lines of at most atomicWrite
// bytes (atomicRun), each of which SIGKILL cannot cut.
func (o *Output) sendCareful(p []byte) {
	for len(p) > 0 && o.err == nil {
		n := atomicRun(p)
		o.send(p[:n])
		p = p[n:]
	}
}

// send writes p, keeping the first failure.
func (o *Output) send(p []byte) {
	if o.pipe != nil {
		o.pipe.wrote(len(p))
	}
	start := o.begin()
	n, err := o.w.Write(p)
	o.end(start, n)
	if err != nil {
		o.fail(err)
	}
}

// sendRaw writes p, which fits in the pipe, with a raw system call that cannot
// sleep (quickWriter). What it did not write (the room was less than we counted:
// another writer, a packet-mode pipe) goes the careful way, in runs of whole
// lines, which wait for room without holding the process.
func (o *Output) sendRaw(p []byte) {
	if !o.pipe.quick.works() {
		o.send(p) // fits: one write, the usual way
		return
	}
	o.pipe.wrote(len(p))
	start := o.begin()
	n, err := o.pipe.quick.write(p)
	if err == unix.EAGAIN || err == unix.EINTR || err == errNoQuickWrite {
		n, err = 0, nil
	}
	o.end(start, n)
	if err != nil {
		o.fail(err)
		return
	}
	o.sendCareful(p[n:])
}

// begin and end measure a write of n bytes, when o is measured.
func (o *Output) begin() time.Time {
	if o.meter == nil {
		return time.Time{}
	}
	start := time.Now()
	o.meter.Since.Store(start.UnixNano())
	return start
}

func (o *Output) end(start time.Time, n int) {
	if o.meter == nil {
		return
	}
	o.meter.Since.Store(0)
	o.meter.Nanos.Add(int64(time.Since(start)))
	o.meter.Bytes.Add(int64(n))
	o.meter.Writes.Add(1)
}

// fail keeps err, the output's first failure.
func (o *Output) fail(err error) {
	if errors.Is(err, syscall.EPIPE) {
		err = ErrOutputClosed
	}
	o.err = fmt.Errorf("write output: %w", err)
}

// wait takes n bytes from the pacing bucket, in pieces of at most its size (a
// write may be larger than a second's worth), sleeping as long as that needs.
func (o *Output) wait(n int) {
	if o.pace == nil {
		return
	}
	for n > 0 {
		k := min(n, o.pace.Burst())
		o.sleep(o.pace.ReserveN(o.now(), k).DelayFrom(o.now()))
		n -= k
	}
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
	mode := inotifyWhereItWorks
	if cfg.Poll {
		mode = pollOnly
	}
	w := newWatcher(cfg.Log, mode, cfg.PollInterval)
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
	t := &tailer{cfg: &cfg, out: out, files: newRegistry(), siblings: &siblings{}, watcher: w, bufs: newBufPool(), runs: newWorkers()}
	defer t.runs.stop() // after wg.Wait below: every follower has ended
	context.AfterFunc(ctx, t.stopped.stop)
	if cfg.Checkpoints != nil {
		cfg.Checkpoints.prune(sources)
	}
	var wg sync.WaitGroup
	for _, s := range cfg.Sockets {
		wg.Go(func() { fail(s.serve(ctx, &cfg, out)) })
	}
	for _, src := range sources {
		if src.IsGlob() {
			scanned := cfg.Metrics.Expect()
			wg.Go(func() { fail(t.scan(ctx, src, scanned)) })
			continue
		}
		tag := src.Tag
		if tag == "" {
			tag = DefaultTag(src.Path)
		}
		f := t.follower(src.Path, tag, followOpts{fromTail: cfg.FromTail})
		wg.Add(1)
		f.start(ctx, w, func(err error) {
			fail(err)
			wg.Done()
		})
		firstLook()
	}
	cfg.Metrics.Started()
	wg.Wait()
	return failed
}

// DefaultTag is the tag of a file without an explicit one: its base name without
// its extension.
func DefaultTag(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// tailer is what the followers of one Run share.
type tailer struct {
	cfg     *Config
	out     *Output
	files   *registry
	watcher *watcher
	// siblings lists folders, for files rotated away unseen.
	siblings *siblings
	idle     func() // tests: called each time a follower is about to wait
	// bufs holds the read buffers of idle followers (see LineReader.Release).
	bufs *sync.Pool
	runs *workers // nil in tests: a goroutine per run
	// stopped is when Run's context ended: the followers' waits at shutdown end
	// together, a set time after it.
	stopped stopClock
}

// follower returns the follower of one path.
func (t *tailer) follower(path, tag string, opts followOpts) *follower {
	m := t.cfg.Metrics.File(tag, path)
	cp := newCheckpointer(t.cfg.Checkpoints, path, t.cfg.Log)
	if cp != nil {
		cp.m = m
	}
	f := &follower{} // first: its emitter takes marks from its read position
	emit := newEmitter(t.cfg, t.out, cp, &f.pos, tag, path)
	emit.m = m
	lr := NewLineReader(emit.maxLine(t.cfg.MaxLine))
	lr.pool = t.bufs
	*f = follower{
		path: path, cfg: t.cfg, files: t.files, runs: t.runs, opts: opts, emit: emit, lr: lr, m: m,
		wait:    waker{idle: t.idle, lr: lr},
		pins:    &pinner{path: path, files: t.files, siblings: t.siblings, log: t.cfg.Log, maxHeld: t.cfg.MaxPinnedBytes, m: m},
		cuts:    newCutter(t.cfg, path, opts.globbed),
		stopped: &t.stopped,
	}
	return f
}

// firstLook lets a follower just started take its first look (open, read, write,
// wait) before the next one starts, where it can: followers started all at once
// with a thousand files each held a read buffer and grew a deep stack at the same
// time, memory that stayed (the pool keeps buffers until two collections, an idle
// process makes none for minutes). With one thread, the new goroutine runs until
// it waits; one that blocks on the way (a full stdout) lets the next start.
func firstLook() { runtime.Gosched() }

func newBufPool() *sync.Pool { return &sync.Pool{New: func() any { return new([fileReadSize]byte) }} }
