// Command demo shows sidetail's follow loop on a laptop: it writes a log that is
// rotated (renamed and recreated) every half second, follows it with the tailer
// exactly as `sidetail --prefix='[{tag}] '` would, and at the end counts what came
// out against what was written.
package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sidetail/sidetail/tailer"
)

const (
	runFor      = 8 * time.Second
	rotateEvery = 500 * time.Millisecond
	linesPerSec = 2000
)

func main() {
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
	var wg sync.WaitGroup
	var written, rotations int
	wg.Go(func() {
		written, rotations = writeRotating(writing, path)
		stopFollowing()
	})
	err = tailer.Run(following, cfg, []tailer.Source{{Path: path}}, tailer.NewOutput(out))
	wg.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "\ndemo: wrote %d lines through %d rotations; relayed %d, lost %d, repeated or out of order %d\n",
		written, rotations, out.lines, written-out.lines+out.bad, out.bad)
	if out.bad != 0 || out.lines != written {
		os.Exit(1)
	}
}

// writeRotating writes numbered lines until ctx is done, renaming the file to
// app.log.1 and starting a new one every rotateEvery, as logrotate's create mode does.
func writeRotating(ctx context.Context, path string) (written, rotations int) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0
	}
	tick := time.NewTicker(time.Second / linesPerSec)
	defer tick.Stop()
	rotate := time.NewTicker(rotateEvery)
	defer rotate.Stop()
	for {
		select {
		case <-ctx.Done():
			f.Close()
			return written, rotations
		case <-rotate.C:
			f.Close()
			os.Rename(path, path+".1")
			if f, err = os.Create(path); err != nil {
				return written, rotations
			}
			rotations++
		case <-tick.C:
			fmt.Fprintf(f, "line %d written at %s\n", written, time.Now().Format(time.StampMicro))
			written++
		}
	}
}

// countingWriter prints relayed lines and checks they arrive once each, in order.
type countingWriter struct {
	lines, bad int
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
	return os.Stdout.Write(p)
}
