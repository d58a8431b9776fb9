// Command rotateloss counts the lines a rotator loses or repeats: a writer appends
// numbered lines (O_APPEND, a steady rate) to a file while the rotator keeps it
// small; then every line in the archives and the live file is checked.
//
//	rotateloss -rotator logrotate        # logrotate copytruncate, run every -every
//	rotateloss -rotator sidetail -bin ./sidetail
//	rotateloss -bin ./sidetail -compress -fill base64 -rate 1000000 -batch 65536  # 100 MB/s
//
// It also reports the largest size the live file reached: a rotator that cannot keep
// up (compressing slower than the writer writes) lets it grow without bound.
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func main() {
	rotator := flag.String("rotator", "sidetail", "sidetail or logrotate")
	bin := flag.String("bin", "sidetail", "the sidetail binary")
	rate := flag.Int("rate", 50000, "lines per second")
	seconds := flag.Int("seconds", 10, "how long the writer writes")
	every := flag.Duration("every", 100*time.Millisecond, "how often the rotator checks the size")
	fill := flag.String("fill", "letters", "line text: letters (compresses well) or base64 (random, compresses worst)")
	compress := flag.Bool("compress", false, "gzip the archives (sidetail rotate --compress, logrotate compress)")
	batch := flag.Int("batch", 0, "gather lines into writes of about this many bytes (0: one write per line)")
	flag.Parse()
	switch *fill {
	case "letters":
	case "base64":
		filler = base64Filler
	default:
		fmt.Fprintln(os.Stderr, "rotateloss: -fill is letters or base64")
		os.Exit(2)
	}
	if err := run(*rotator, *bin, *rate, *seconds, *every, *compress, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "rotateloss:", err)
		os.Exit(1)
	}
}

// filler returns the text of line seq after its number.
var filler = func(seq int) string { return strings.Repeat(string(rune('a'+seq%26)), 20+seq%50) }

// base64Filler is 88 characters of base64 of pseudo-random bytes, one of 4096 texts
// picked by seq: the same text recurs 400 KB apart, beyond gzip's 32 KiB window, so
// 99-byte lines that gzip can only shrink by a quarter cost the writer nothing.
func base64Filler(seq int) string { return base64Texts[seq%len(base64Texts)] }

var base64Texts = func() []string {
	texts := make([]string, 4096)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range texts {
		var raw [66]byte
		for j := 0; j < len(raw); j += 8 {
			x += 0x9e3779b97f4a7c15 // splitmix64
			z := (x ^ x>>30) * 0xbf58476d1ce4e5b9
			z = (z ^ z>>27) * 0x94d049bb133111eb
			var w [8]byte
			binary.LittleEndian.PutUint64(w[:], z^z>>31)
			copy(raw[j:], w[:])
		}
		texts[i] = base64.StdEncoding.EncodeToString(raw[:])
	}
	return texts
}()

func run(rotator, bin string, rate, seconds int, every time.Duration, compress bool, batch int) error {
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
		args := []string{"rotate", "--max-size=1Mi", "--max-files=100000",
			"--check-interval=" + every.String(), "--archive-dir=" + dir, live}
		if compress {
			args = append(args[:1], append([]string{"--compress"}, args[1:]...)...)
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stderr = os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() { done <- cmd.Wait() }()
	case "logrotate":
		conf := filepath.Join(dir, "logrotate.conf")
		comp := "nocompress"
		if compress {
			comp = "compress"
		}
		text := fmt.Sprintf("%s {\n  size 1M\n  rotate 100000\n  copytruncate\n  missingok\n  %s\n}\n", live, comp)
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
	// The live file's size, sampled every few milliseconds while the writer writes.
	var largest atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if info, err := os.Stat(live); err == nil && info.Size() > largest.Load() {
				largest.Store(info.Size())
			}
		}
	}()
	total := rate * seconds
	begin := time.Now()
	var buf []byte
	for seq := 0; seq < total; {
		due := min(total, int(time.Since(begin).Seconds()*float64(rate))+1)
		for ; seq < due; seq++ {
			buf = fmt.Appendf(buf, "%09d %s\n", seq, filler(seq))
			if len(buf) >= batch || seq+1 == due {
				if _, err := f.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		time.Sleep(time.Millisecond) // pacing
	}
	f.Close()
	late := time.Since(begin) - time.Duration(seconds)*time.Second
	time.Sleep(2 * every) // one more check, so the last cut is made too
	stop()
	<-sampled
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
	fmt.Printf("%-24s %d lines at %d/s, %d files: lost %d, repeated %d, live file at most %.1f MiB, writer %.1fs late\n",
		rotator, total, rate, len(files), lost, repeated, float64(largest.Load())/(1<<20), late.Seconds())
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
