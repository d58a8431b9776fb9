package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/disk"
)

// archives lists the archives of app.log in dir.
func archives(dir string) []string {
	names, _ := filepath.Glob(filepath.Join(dir, "app-????-??-??T??-??-??.???.log*"))
	return names
}

// writeUntil appends lines of stream to path in one write every millisecond or
// so, as many lines as batch says given how many were written and how long ago
// the writer began, until stop is closed, and returns how many it wrote. The
// writer keeps O_APPEND, as apps do.
func writeUntil(t *testing.T, path, stream string, batch func(written int, elapsed time.Duration) int, stop <-chan struct{}) int {
	g := &lineGen{stream: stream}
	f := openAppend(t, path)
	defer f.Close()
	tick := time.NewTicker(time.Millisecond) // pacing, not synchronisation
	defer tick.Stop()
	began := time.Now()
	for {
		select {
		case <-stop:
			return g.seq
		case <-tick.C:
		}
		if _, err := f.Write(g.next(batch(g.seq, time.Since(began)))); err != nil {
			t.Error(err)
			return g.seq
		}
	}
}

// perTick is n lines a write, however late the tick.
func perTick(n int) func(int, time.Duration) int {
	return func(int, time.Duration) int { return n }
}

// perSecond is rate lines a second: each write has as many lines as are due, so
// a late tick catches up.
func perSecond(rate int) func(int, time.Duration) int {
	return func(written int, elapsed time.Duration) int {
		return max(int(elapsed.Seconds()*float64(rate))-written, 0)
	}
}

// Tail and rotate in one process: the follower cuts only what it wrote out and
// moves its offset with the collapse, so stdout has every line once across more
// than 100 rotations, on ext4 (collapse) and tmpfs (punch). Discarding
// (--rotate-max-files=0), no archive is written and, once stdout has caught up,
// the live file takes at most max-size plus two blocks of the volume.
func TestTailAndRotate(t *testing.T) {
	shm := tmpfsDir(t)
	for _, c := range []struct {
		fs, dir  string
		maxFiles string
	}{{"ext4", t.TempDir(), "1000"}, {"tmpfs", shm, "1000"}, {"ext4", t.TempDir(), "0"}, {"tmpfs", shm, "0"}} {
		t.Run(c.fs+"/max-files="+c.maxFiles, func(t *testing.T) {
			dir, err := os.MkdirTemp(c.dir, "t")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "app.log")
			p := start(t, "--rotate-max-size=64Ki", "--rotate-check-interval=10ms", "--rotate-max-files="+c.maxFiles, path)
			stop := make(chan struct{})
			var wrote int
			var writer sync.WaitGroup
			writer.Go(func() { wrote = writeUntil(t, path, "app", perTick(64), stop) })
			discard := c.maxFiles == "0"
			if discard {
				// 100 times max-size of lines of about 60 bytes.
				waitUntil(t, func() bool { return p.count() >= 100*64<<10/60 }, p.stderr.String)
			} else {
				waitUntil(t, func() bool { return len(archives(dir)) >= 100 },
					func() string { return strings.Join(archives(dir), " ") + "\n" + p.stderr.String() })
			}
			close(stop)
			writer.Wait()
			p.waitLines(t, wrote)
			if discard {
				if n := len(archives(dir)); n > 0 {
					t.Fatalf("%d archives while discarding", n)
				}
				limit := int64(64<<10 + 2*4096)
				waitUntil(t, func() bool { return disk.Usage(t, path) <= limit }, func() string {
					return fmt.Sprintf("live file uses %d bytes, over %d; stderr:\n%s", disk.Usage(t, path), limit, p.stderr.String())
				})
			}
			checkLiveHead(t, path)
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
			}
			checkStreams(t, p.output(), noPrefix, map[string]int{"app": wrote})
			if punched := strings.Contains(p.stderr.String(), "using punch"); punched != (c.fs == "tmpfs") {
				t.Errorf("%s: switched to punch: %v; stderr:\n%s", c.fs, punched, p.stderr.String())
			}
			info, _ := os.Stat(path)
			t.Logf("%s: %d lines, %d archives, live file %d bytes, %d on disk; stderr:\n%s", c.fs, wrote, len(archives(dir)), info.Size(), disk.Usage(t, path), p.stderr.String())
		})
	}
}

// checkLiveHead checks that the live file, as cat shows it, starts with a whole
// line or a blank one (after the NULs of a punched hole), never with the end of
// an archived line.
func checkLiveHead(t *testing.T, path string) {
	t.Helper()
	live, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(bytes.TrimLeft(live, "\x00")), "\n")
	if strings.Trim(first, " ") == "" {
		return
	}
	f := strings.SplitN(first, " ", 3)
	if seq, err := strconv.Atoi(f[min(1, len(f)-1)]); err != nil || len(f) != 3 || f[0] != "app" || f[2] != filler(seq) {
		t.Fatalf("the live file starts with %.60q: not a whole line", first)
	}
}

// The rotate command on its own, as the binary: the archives, gunzipped, then the
// live file hold every line once, whole.
func TestRotateCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	p := start(t, "rotate", "--max-size=64Ki", "--check-interval=10ms", "--max-files=1000", "--compress", path)
	stop := make(chan struct{})
	var wrote int
	var writer sync.WaitGroup
	// 1 MB/s: gzip under the race detector takes 5.
	writer.Go(func() { wrote = writeUntil(t, path, "app", perTick(16), stop) })
	waitUntil(t, func() bool { return len(archives(dir)) >= 20 }, func() string { return p.stderr.String() })
	close(stop)
	writer.Wait()
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
	}
	lines := archivedLines(t, dir)
	live, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A live file cut inside a line starts with a line of spaces where the end of
	// the last archived line was, never with that end itself.
	rest := readLines(t, strings.NewReader(string(live)))
	if len(rest) > 0 && strings.Trim(rest[0], " \n") == "" {
		rest = rest[1:]
	}
	checkStreams(t, append(lines, rest...), noPrefix, map[string]int{"app": wrote})
}

func readLines(t *testing.T, r io.Reader) []string {
	t.Helper()
	var lines []string
	br := bufio.NewReader(r)
	for {
		l, err := br.ReadString('\n')
		if l != "" {
			lines = append(lines, l)
		}
		if err == io.EOF {
			return lines
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute, "0": 0} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "7", "1.5d", "-1d", "7dd"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

// The rotate flags come from SIDETAIL_* variables for the rotate command and from
// SIDETAIL_ROTATE_* for the tail command.
func TestRotateEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	t.Setenv("SIDETAIL_PATHS", path)
	t.Setenv("SIDETAIL_MAX_SIZE", "2Mi")
	t.Setenv("SIDETAIL_ROTATE_MAX_SIZE", "3Mi")
	t.Setenv("SIDETAIL_ROTATE_MAX_AGE", "7d")
	t.Setenv("SIDETAIL_ROTATE_COMPRESS", "true")
	var cli CLI
	if _, err := newParser(&cli, streams{io.Discard, io.Discard}).Parse([]string{"rotate"}); err != nil {
		t.Fatal(err)
	}
	if cli.Rotate.cfg.MaxSize != 2<<20 || cli.Rotate.cfg.Compress || cli.Rotate.cfg.MaxFiles != 5 {
		t.Errorf("rotate: %+v", cli.Rotate.cfg)
	}
	cli = CLI{}
	if _, err := newParser(&cli, streams{io.Discard, io.Discard}).Parse(nil); err != nil {
		t.Fatal(err)
	}
	if r := cli.Tail.rotate; r == nil || r.MaxSize != 3<<20 || r.MaxAge != 7*24*time.Hour || !r.Compress {
		t.Errorf("tail: %+v", r)
	}
}
