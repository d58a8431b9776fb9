package main

import (
	"bytes"
	"compress/gzip"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidetail/sidetail/rotate"
)

// The rotate command SIGKILLed at random moments, 25 times on ext4 and 25 times
// on tmpfs, while an O_APPEND writer adds 20,000 lines a second; half the kills
// come right as an archive appears (between its rename and the record after it,
// where a crash used to archive the same lines again). After the last kill, a
// restart finishes the cut under way: the archives, gunzipped, and the live file
// hold every line once, whole, in order; the live file starts with a whole or
// blank line.
func TestRotateSIGKILL(t *testing.T) {
	shm := tmpfsDir(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, fs := range []struct{ name, dir string }{{"ext4", t.TempDir()}, {"tmpfs", shm}} {
		t.Run(fs.name, func(t *testing.T) {
			path := filepath.Join(fs.dir, "app.log")
			args := []string{"rotate", "--max-size=64Ki", "--check-interval=5ms", "--max-files=100000", "--compress", path}
			stop := make(chan struct{})
			var wrote int
			var writer sync.WaitGroup
			began := time.Now()
			writer.Go(func() { wrote = writeUntil(t, path, "app", perSecond(25_000), stop) })
			stopWriter := sync.OnceFunc(func() { close(stop); writer.Wait() })
			t.Cleanup(stopWriter) // also when the test fails before it is stopped
			for i := range 25 {
				p := start(t, args...)
				if i%2 == 0 {
					n := len(archives(fs.dir))
					waitUntil(t, func() bool { return len(archives(fs.dir)) > n }, p.stderr.String)
				} else {
					time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond) // the random moment of the kill
				}
				p.cmd.Process.Kill()
				p.wait(t)
			}
			stopWriter()
			if rate := float64(wrote) / time.Since(began).Seconds(); rate < 20_000 {
				t.Fatalf("the writer managed only %.0f lines/s", rate)
			}
			// The restart, in process: its first cut finishes the one killed.
			f := rotate.NewFile(path, rotate.Config{MaxSize: rotate.MinSize, MaxFiles: 100000, Compress: true, Method: rotate.Auto})
			if _, err := f.Cut(-1, nil); err != nil {
				t.Fatal(err)
			}
			lines := archivedLines(t, fs.dir)
			live, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			rest := readLines(t, bytes.NewReader(bytes.TrimLeft(live, "\x00")))
			if len(rest) > 0 && strings.Trim(rest[0], " \n") == "" {
				rest = rest[1:]
			}
			checkStreams(t, append(lines, rest...), noPrefix, map[string]int{"app": wrote})
			t.Logf("%s: %d lines (%.0f/s), %d archives", fs.name, wrote, float64(wrote)/time.Since(began).Seconds(), len(archives(fs.dir)))
		})
	}
}

// archivedLines returns the lines of the archives of app.log in dir, gunzipped,
// oldest first.
func archivedLines(t *testing.T, dir string) []string {
	t.Helper()
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
	return lines
}
