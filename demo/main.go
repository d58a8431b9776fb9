// Command demo shows sidetail's follow loop on a laptop: it writes a log that is
// rotated (renamed and recreated) every half second, follows it with the tailer
// exactly as `sidetail --prefix='[{tag}] '` would, and at the end counts what came
// out against what was written.
//
// For the README's "Disk use": -disk prints the peak disk use of the log folder;
// -rotate=0 makes the app one that never rotates its file, and -discard=BYTES then
// has the follower cut from the file what it relayed once the file holds that much
// (sidetail --rotate-max-files=0).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sidetail/sidetail/rotate"
	"github.com/sidetail/sidetail/tailer"
)

const (
	runFor      = 8 * time.Second
	linesPerSec = 2000
)

// options are the demo's flags; their defaults make the demo the README shows.
type options struct {
	rotateEvery time.Duration // 0: the app never rotates its file
	discard     int64         // cut what was relayed at this size; 0: off
	disk        bool          // print the peak disk use of the log folder
}

func parseOptions() options {
	var o options
	flag.DurationVar(&o.rotateEvery, "rotate", 500*time.Millisecond, "the app renames its file away and starts a new one this often (0: never)")
	flag.Int64Var(&o.discard, "discard", 0, "cut from the file what was relayed once it holds this many bytes, at least 65536 (needs -rotate=0; 0: off)")
	flag.BoolVar(&o.disk, "disk", false, "print the peak disk use of the log folder, sampled every millisecond")
	flag.Parse()
	if o.discard != 0 && (o.rotateEvery != 0 || o.discard < rotate.MinSize) {
		fmt.Fprintln(os.Stderr, "demo: -discard: needs -rotate=0 (an app that never rotates its file) and at least 65536 bytes")
		os.Exit(2)
	}
	return o
}

func main() {
	opts := parseOptions()
	dir, err := os.MkdirTemp("", "sidetail-demo")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.log")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	writing, stopWriting := context.WithTimeout(ctx, runFor)
	defer stopWriting()
	// The follower stops after the writer, as sidetail gets SIGTERM after the app
	// exits: every line written before that must come out.
	following, stopFollowing := context.WithCancel(context.Background())

	out := &countingWriter{}
	prefix, _ := tailer.ParsePrefix("[{tag}] ")
	cfg := tailer.Config{
		Format: tailer.Format{Prefix: prefix}, MaxLine: 1 << 20, Settle: 250 * time.Millisecond,
		PollInterval: 250 * time.Millisecond, Log: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	if opts.discard > 0 {
		discard(&cfg, path, opts.discard)
	}
	peak := func() int64 { return 0 }
	if opts.disk {
		peak = sampleDisk(dir)
	}
	var wg sync.WaitGroup
	var written, rotations int
	wg.Go(func() {
		written, rotations = writeRotating(writing, path, opts.rotateEvery)
		stopFollowing()
	})
	err = tailer.Run(following, cfg, []tailer.Source{{Path: path}}, tailer.NewOutput(out))
	wg.Wait()
	used := peak()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "\ndemo: wrote %d lines through %d rotations; relayed %d, lost %d, repeated or out of order %d\n",
		written, rotations, out.lines, written-out.lines+out.bad, out.bad)
	if opts.disk {
		fmt.Fprintf(os.Stderr, "demo: peak disk use of the log folder %d bytes; %d bytes relayed\n", used, out.bytes)
	}
	if out.bad != 0 || out.lines != written {
		os.Exit(1)
	}
}

// discard has the follower cut from path what it relayed once the file holds
// maxSize bytes, as sidetail --rotate-max-files=0 does.
func discard(cfg *tailer.Config, path string, maxSize int64) {
	file := rotate.NewFile(path, rotate.Config{MaxSize: maxSize, MaxFiles: 0, Log: cfg.Log})
	cfg.Cut = func(_ string, reading fs.FileInfo, emitted int64) (int64, error) {
		r, err := file.Cut(emitted, reading)
		return r.Removed, err
	}
	cfg.Removed = func(_ string, reading fs.FileInfo) (int64, error) { return file.Removed(reading) }
	cfg.CutInterval = 100 * time.Millisecond
}

// sampleDisk sums the blocks the files under dir take, every millisecond, until
// the returned peak is called, which returns the most it saw.
func sampleDisk(dir string) (peak func() int64) {
	stop, most := make(chan struct{}), make(chan int64)
	go func() {
		var top int64
		for {
			select {
			case <-stop:
				most <- top
				return
			case <-time.After(time.Millisecond):
			}
			var sum int64
			filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return nil // a file renamed away under the walk is counted at its new name
				}
				if info, err := d.Info(); err == nil {
					sum += info.Sys().(*syscall.Stat_t).Blocks * 512
				}
				return nil
			})
			top = max(top, sum)
		}
	}()
	return func() int64 {
		close(stop)
		return <-most
	}
}

// writeRotating writes numbered lines until ctx is done, renaming the file to
// app.log.1 and starting a new one every rotateEvery (0: never), as logrotate's
// create mode does.
func writeRotating(ctx context.Context, path string, rotateEvery time.Duration) (written, rotations int) {
	f, err := create(path)
	if err != nil {
		return 0, 0
	}
	tick := time.NewTicker(time.Second / linesPerSec)
	defer tick.Stop()
	var rotateC <-chan time.Time // nil: never
	if rotateEvery > 0 {
		ticker := time.NewTicker(rotateEvery)
		defer ticker.Stop()
		rotateC = ticker.C
	}
	for {
		select {
		case <-ctx.Done():
			f.Close()
			return written, rotations
		case <-rotateC:
			f.Close()
			os.Rename(path, path+".1")
			if f, err = create(path); err != nil {
				return written, rotations
			}
			rotations++
		case <-tick.C:
			fmt.Fprintf(f, "line %d written at %s\n", written, time.Now().Format(time.StampMicro))
			written++
		}
	}
}

// create opens a new log file as most loggers do, with O_APPEND: a writer at its
// own offset would write past the end of a file collapsed by -discard (sidetail
// then needs --rotate-method=punch).
func create(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
}

// countingWriter prints relayed lines and checks they arrive once each, in order.
type countingWriter struct {
	lines, bad int
	bytes      int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		fields := bytes.Fields(line)
		if len(fields) < 3 {
			continue
		}
		if n, err := strconv.Atoi(string(fields[2])); err != nil || n != w.lines {
			w.bad++
		}
		w.lines++
	}
	w.bytes += int64(len(p))
	return os.Stdout.Write(p)
}
