package main

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// archives lists the archives of app.log in dir.
func archives(dir string) []string {
	names, _ := filepath.Glob(filepath.Join(dir, "app-????-??-??T??-??-??.???.log*"))
	return names
}

// writeUntil appends lines of stream to path, perMs lines per write every
// millisecond, until stop is closed, and returns how many it wrote. The writer
// keeps O_APPEND, as apps do.
func writeUntil(t *testing.T, path, stream string, perMs int, stop <-chan struct{}) int {
	g := &lineGen{stream: stream}
	f := openAppend(t, path)
	defer f.Close()
	tick := time.NewTicker(time.Millisecond) // pacing, not synchronisation
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return g.seq
		case <-tick.C:
		}
		if _, err := f.Write(g.next(perMs)); err != nil {
			t.Error(err)
			return g.seq
		}
	}
}

// Tail and rotate in one process: the follower cuts only what it wrote out and
// moves its offset with the collapse, so stdout has every line once across more
// than 100 rotations, on ext4 (collapse) and tmpfs (punch).
func TestTailAndRotate(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "sidetail-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	for fs, dir := range map[string]string{"ext4": t.TempDir(), "tmpfs": shm} {
		t.Run(fs, func(t *testing.T) {
			path := filepath.Join(dir, "app.log")
			p := start(t, "--rotate-max-size=64Ki", "--rotate-check-interval=10ms", "--rotate-max-files=1000", path)
			stop := make(chan struct{})
			var wrote int
			var writer sync.WaitGroup
			writer.Go(func() { wrote = writeUntil(t, path, "app", 64, stop) })
			waitUntil(t, func() bool { return len(archives(dir)) >= 100 },
				func() string { return strings.Join(archives(dir), " ") + "\n" + p.stderr.String() })
			close(stop)
			writer.Wait()
			p.waitLines(t, wrote)
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
			}
			checkStreams(t, p.output(), noPrefix, map[string]int{"app": wrote})
			if punched := strings.Contains(p.stderr.String(), "using punch"); punched != (fs == "tmpfs") {
				t.Errorf("%s: switched to punch: %v; stderr:\n%s", fs, punched, p.stderr.String())
			}
			info, _ := os.Stat(path)
			t.Logf("%s: %d lines, %d archives, live file %d bytes; stderr:\n%s", fs, wrote, len(archives(dir)), info.Size(), p.stderr.String())
		})
	}
}

// The rotate command on its own, as the binary: the archives, gunzipped, then the
// live file hold every line once (the live file may start with the tail of the
// last archived line: the state file says where its new lines start).
func TestRotateCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	p := start(t, "rotate", "--max-size=64Ki", "--check-interval=10ms", "--max-files=1000", "--compress", path)
	stop := make(chan struct{})
	var wrote int
	var writer sync.WaitGroup
	// 1 MB/s: gzip under the race detector takes 5.
	writer.Go(func() { wrote = writeUntil(t, path, "app", 16, stop) })
	waitUntil(t, func() bool { return len(archives(dir)) >= 20 }, func() string { return p.stderr.String() })
	close(stop)
	writer.Wait()
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, p.stderr.String())
	}
	var lines []string
	for _, name := range archives(dir) {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		lines = append(lines, readLines(t, gz)...)
		f.Close()
	}
	live, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A live file cut inside a line starts with the end of the last archived
	// line: not a line of its own, as it does not start with the stream's name.
	rest := readLines(t, strings.NewReader(string(live)))
	if len(rest) > 0 && len(lines) > 0 && strings.HasSuffix(lines[len(lines)-1], rest[0]) && !strings.HasPrefix(rest[0], "app ") {
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
