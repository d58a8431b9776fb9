package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/disk"
	"golang.org/x/sys/unix"
)

// Discarding (--rotate-max-files=0) under a 100k lines/s O_APPEND writer, on ext4
// (collapse) and tmpfs (punch), with a SIGKILL and a restart on the same state dir
// half way: stdout has every line, whole and in order, and the live file's disk
// use, sampled throughout, stays within what the cut leaves (see diskBound).
func TestDiscardUnderLoad(t *testing.T) {
	shm := tmpfsDir(t)
	for _, c := range []struct{ fs, parent string }{{"ext4", t.TempDir()}, {"tmpfs", shm}} {
		t.Run(c.fs, func(t *testing.T) {
			dir, err := os.MkdirTemp(c.parent, "t")
			if err != nil {
				t.Fatal(err)
			}
			testDiscard(t, dir, c.fs)
		})
	}
}

const (
	discardMaxSize = 64 << 10
	cutsPerRun     = 60 // observed cuts before the kill, and again after the restart
)

func testDiscard(t *testing.T, dir, fs string) {
	path := filepath.Join(dir, "app.log")
	args := []string{"--rotate-max-files=0", "--rotate-max-size=64Ki", "--rotate-check-interval=10ms",
		"--state-dir=" + filepath.Join(dir, "state"), path}
	// The writer starts once the first line is out: before sidetail has opened the
	// file, nothing would be cut, and the disk bound would measure the start-up.
	w := &paceWriter{g: lineGen{stream: "w"}}
	if err := os.WriteFile(path, w.g.next(1), 0o644); err != nil {
		t.Fatal(err)
	}
	w.started.Store(lineOffset(1))
	w.done.Store(lineOffset(1))
	p := start(t, args...)
	p.waitLines(t, 1)
	s := newDiskSampler(t, path, p, w)
	stopWriter := w.run(t, path, 100_000)
	stopSampler := s.run()

	waitCuts := func(n int64) {
		waitUntil(t, func() bool { return s.cuts.Load() >= n }, func() string {
			return fmt.Sprintf("%d cuts seen of %d; stderr:\n%s", s.cuts.Load(), n, p.stderr.String())
		})
	}
	waitCuts(cutsPerRun)
	p.cmd.Process.Kill()
	p.wait(t)
	s.killed()
	runs := [][]string{p.output()}
	p = start(t, args...)
	s.follow(p)
	waitCuts(2 * cutsPerRun)

	total := stopWriter()
	waitUntil(t, func() bool { return p.lastSeq("w") == total-1 }, func() string {
		return fmt.Sprintf("the restarted sidetail is at line %d of %d; stderr:\n%s", p.lastSeq("w"), total, p.stderr.String())
	})
	// Once everything went out, what stays is at most the max-size a check
	// waits for before cutting, and the two blocks of the rounding.
	quiet := discardMaxSize + 2*s.blk
	waitUntil(t, func() bool { return disk.Usage(t, path) <= quiet }, func() string {
		return fmt.Sprintf("the live file uses %d bytes once all is out, over %d; stderr:\n%s", disk.Usage(t, path), quiet, p.stderr.String())
	})
	stopSampler()
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
	}
	if got := w.done.Load(); got != lineOffset(total) {
		t.Fatalf("the writer wrote %d bytes; lineOffset says %d", got, lineOffset(total))
	}
	checkDiscarded(t, dir, fs, append(runs, p.output()), total, s, p.stderr.String())
}

// checkDiscarded checks the runs' output and the folder after the discard test,
// and reports what the sampler saw.
func checkDiscarded(t *testing.T, dir, fs string, runs [][]string, total int, s *diskSampler, stderr string) {
	t.Helper()
	checkRuns(t, runs, total)
	first, second := seqs(runs[0], "w"), seqs(runs[1], "w")
	repeated := 0
	if len(first) > 0 && len(second) > 0 {
		repeated = first[len(first)-1] + 1 - second[0]
	}
	if n := len(archives(dir)); n > 0 {
		t.Errorf("%d archives while discarding", n)
	}
	if punched := strings.Contains(stderr, "using punch"); punched != (fs == "tmpfs") {
		t.Errorf("%s: switched to punch: %v", fs, punched)
	}
	// A kill after an output write and before its offset is recorded repeats
	// that write (at most 16 KiB, checkRuns checks): report how much did.
	t.Logf("%s: %d lines, %.1f MB, %d cuts seen, %d samples; peak disk use while the first run ran %d, while none did %d, while the second ran %d; %d lines repeated by the restart",
		fs, total, float64(lineOffset(total))/1e6, s.cuts.Load(), s.samples, s.peaks[0], s.peaks[1], s.peaks[2], repeated)
}

// lineOffset is where line n of a lineGen of stream "w" starts in its file:
// line i is 33+i%50 bytes long ("w", seq in 9 digits, 20+i%50 of filler, three
// separators).
func lineOffset(n int) int64 {
	r := int64(n % 50)
	return 33*int64(n) + int64(n/50)*(49*50/2) + r*(r-1)/2
}

// paceWriter appends lineGen lines with O_APPEND at a steady rate. started counts
// the bytes of the writes begun, done those of the writes returned: a byte the
// file holds is counted in started, a byte counted in done is in the file.
type paceWriter struct {
	g             lineGen
	started, done atomic.Int64
}

// run writes at rate lines/s, 100 lines a write at most, until the returned stop
// is called, which returns how many lines were written.
func (w *paceWriter) run(t *testing.T, path string, rate int) (stop func() int) {
	f := openAppend(t, path)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer f.Close()
		began, from := time.Now(), w.g.seq
		for {
			select {
			case <-quit:
				return
			default:
			}
			due := from + int(time.Since(began)*time.Duration(rate)/time.Second)
			if due <= w.g.seq {
				time.Sleep(time.Millisecond) // pacing, not synchronisation
				continue
			}
			b := w.g.next(min(100, due-w.g.seq))
			w.started.Add(int64(len(b)))
			if _, err := f.Write(b); err != nil {
				t.Error(err)
				return
			}
			w.done.Add(int64(len(b)))
		}
	})
	stop = sync.OnceValue(func() int {
		close(quit)
		wg.Wait()
		return w.g.seq
	})
	t.Cleanup(func() { stop() }) // when the test fails before it stops writing
	return stop
}

// lastSeq is the sequence number of the last line of stream out so far, -1 if
// none (or if it is not a whole line of it).
func (p *proc) lastSeq(stream string) int {
	last := p.lines.Last()
	if last == "" {
		return -1
	}
	f := strings.SplitN(last, " ", 3)
	n, err := strconv.Atoi(f[min(1, len(f)-1)])
	if len(f) != 3 || f[0] != stream || err != nil || !strings.HasSuffix(f[2], "\n") {
		return -1
	}
	return n
}

// diskSampler stats the live file in a loop while sidetail discards, sees the
// cuts (the file shrinks: collapse; its first data moves up: punch), and checks
// each sample against diskBound.
type diskSampler struct {
	t    *testing.T
	path string
	file *os.File // for SEEK_DATA
	w    *paceWriter
	blk  int64
	cuts atomic.Int64

	mu sync.Mutex
	p  *proc
	// emitted[i] is what the current process had written out (in bytes of the
	// file, the lines being numbered) before sample refs[i] was taken; refs
	// are the samples that saw a cut, and the sample before each.
	refs []int64
	// peaks is the most the file used while each process ran (the last one
	// running still) and while none did.
	peaks   []int64
	samples int
}

func newDiskSampler(t *testing.T, path string, p *proc, w *paceWriter) *diskSampler {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return &diskSampler{t: t, path: path, file: f, w: w, blk: int64(info.Sys().(*syscall.Stat_t).Blksize), p: p, peaks: []int64{0}}
}

// follow makes p the process whose output counts: a restarted one resumes from its
// checkpoint, maybe below what the killed one wrote out, so the cuts seen before
// say nothing of what it will cut.
func (s *diskSampler) follow(p *proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p, s.refs = p, nil
	s.peaks = append(s.peaks, 0)
}

// killed notes that no process runs until follow is called.
func (s *diskSampler) killed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peaks = append(s.peaks, 0)
}

// out is where the current process's output has reached in the file.
func (s *diskSampler) out() int64 {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	return lineOffset(p.lastSeq("w") + 1)
}

func (s *diskSampler) run() (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var size, data int64
		over := false
		prevOut := s.out()
		for {
			select {
			case <-quit:
				return
			default:
			}
			// Output first and written last: every byte out before the stat is
			// in out, every byte the stat counts is in started.
			out := s.out()
			info, err := s.file.Stat()
			if err != nil {
				s.t.Error(err)
				return
			}
			firstData, err := unix.Seek(int(s.file.Fd()), 0, unix.SEEK_DATA)
			if err != nil {
				firstData = data // all a hole for an instant: no data to say where
			}
			written := s.w.started.Load()
			used := info.Sys().(*syscall.Stat_t).Blocks * 512
			if info.Size() < size || firstData > data {
				s.cuts.Add(1)
				s.sawCut(prevOut)
			}
			size, data, prevOut = info.Size(), firstData, out
			if bound := s.check(used, written); used > bound && !over {
				s.t.Errorf("the live file uses %d bytes, over %d (written %d, size %d, cuts seen %d)",
					used, bound, written, info.Size(), s.cuts.Load())
				over = true // once: the run goes on, to tell the rest
			}
			time.Sleep(200 * time.Microsecond) // pacing of the samples, not synchronisation
		}
	})
	stop = sync.OnceFunc(func() {
		close(quit)
		wg.Wait()
	})
	s.t.Cleanup(stop) // when the test fails before it stops sampling
	return stop
}

// sawCut records a cut seen by a sample, the sample before it having seen the
// output at prevOut.
func (s *diskSampler) sawCut(prevOut int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs = append(s.refs, prevOut)
	if len(s.refs) > 2 {
		s.refs = s.refs[1:]
	}
}

// check records a sample of used bytes and returns the bound (see bound).
func (s *diskSampler) check(used, written int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples++
	s.peaks[len(s.peaks)-1] = max(s.peaks[len(s.peaks)-1], used)
	return s.bound(written)
}

// bound is the most the live file may use when written bytes were begun, derived
// from how a cut works. A cut removes the whole blocks below what was written out
// when it was planned (collapse, or punch on tmpfs), emitted being at a line end;
// until the next, the file only grows. So it uses at most what was written less
// that cut's emitted, plus a block for rounding the cut down to a block boundary
// and one for the file's last, partial block. The cut's emitted is not seen from
// here; what was out before the sample preceding the cut seen before the latest
// one is below it: the latest cut was planned after the one before it ended,
// which was after that sample. Before two cuts are seen, the bound is what was
// written, plus the two blocks.
func (s *diskSampler) bound(written int64) int64 {
	var emitted int64
	if len(s.refs) == 2 {
		emitted = s.refs[0]
	}
	return written - emitted + 2*s.blk
}
