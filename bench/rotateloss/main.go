// Command rotateloss counts the lines a rotator loses or repeats: a writer appends
// numbered lines (O_APPEND, a steady rate) to a file while the rotator keeps it
// small; then every line in the archives and the live file is checked.
//
//	rotateloss -rotator logrotate        # logrotate copytruncate, run every -every
//	rotateloss -rotator sidetail -bin ./sidetail
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	rotator := flag.String("rotator", "sidetail", "sidetail or logrotate")
	bin := flag.String("bin", "sidetail", "the sidetail binary")
	rate := flag.Int("rate", 50000, "lines per second")
	seconds := flag.Int("seconds", 10, "how long the writer writes")
	every := flag.Duration("every", 100*time.Millisecond, "how often the rotator checks the size")
	flag.Parse()
	if err := run(*rotator, *bin, *rate, *seconds, *every); err != nil {
		fmt.Fprintln(os.Stderr, "rotateloss:", err)
		os.Exit(1)
	}
}

func filler(seq int) string { return strings.Repeat(string(rune('a'+seq%26)), 20+seq%50) }

func run(rotator, bin string, rate, seconds int, every time.Duration) error {
	dir, err := os.MkdirTemp("", "rotateloss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	live := filepath.Join(dir, "app.log")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	switch rotator {
	case "sidetail":
		cmd := exec.CommandContext(ctx, bin, "rotate", "--max-size=1Mi", "--max-files=100000",
			"--check-interval="+every.String(), "--archive-dir="+dir, live)
		cmd.Stderr = os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() { done <- cmd.Wait() }()
	case "logrotate":
		conf := filepath.Join(dir, "logrotate.conf")
		text := fmt.Sprintf("%s {\n  size 1M\n  rotate 100000\n  copytruncate\n  missingok\n  nocompress\n}\n", live)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return err
		}
		// The Kubernetes docs' logrotate sidecar: logrotate in a loop.
		go func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					done <- nil
					return
				case <-tick.C:
				}
				if out, err := exec.Command("logrotate", "-s", filepath.Join(dir, "state"), conf).CombinedOutput(); err != nil {
					done <- fmt.Errorf("logrotate: %v: %s", err, out)
					return
				}
			}
		}()
	default:
		return fmt.Errorf("-rotator: %q is neither sidetail nor logrotate", rotator)
	}

	f, err := os.OpenFile(live, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	total := rate * seconds
	begin := time.Now()
	var buf []byte
	for seq := 0; seq < total; {
		due := min(total, int(time.Since(begin).Seconds()*float64(rate))+1)
		for ; seq < due; seq++ {
			buf = fmt.Appendf(buf[:0], "%09d %s\n", seq, filler(seq))
			if _, err := f.Write(buf); err != nil {
				return err
			}
		}
		time.Sleep(time.Millisecond) // pacing
	}
	f.Close()
	time.Sleep(2 * every) // one more check, so the last cut is made too
	stop()
	if err := <-done; err != nil && rotator == "logrotate" {
		return err
	}

	seen := make([]int, total)
	files, _ := filepath.Glob(filepath.Join(dir, "app*"))
	for _, name := range files {
		if err := count(name, seen); err != nil {
			return err
		}
	}
	lost, repeated := 0, 0
	for _, n := range seen {
		if n == 0 {
			lost++
		}
		if n > 1 {
			repeated += n - 1
		}
	}
	fmt.Printf("%-24s %d lines at %d/s, %d files: lost %d, repeated %d\n", rotator, total, rate, len(files), lost, repeated)
	return nil
}

// count adds the whole, valid lines of the file to seen.
func count(name string, seen []int) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		if r, err = gzip.NewReader(f); err != nil {
			return err
		}
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		num, fill, ok := strings.Cut(sc.Text(), " ")
		seq, err := strconv.Atoi(num)
		if ok && err == nil && len(num) == 9 && seq >= 0 && seq < len(seen) && fill == filler(seq) {
			seen[seq]++
		}
	}
	return sc.Err()
}
