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

	"github.com/sidetail/sidetail/bench/internal/command"
)

func main() { command.Main("rotateloss", &rotateloss{}) }

// rotateloss is one run's settings, from the flags.
type rotateloss struct {
	rotator  string
	bin      string
	rate     int // lines per second
	seconds  int
	every    time.Duration
	fill     string
	compress bool
	batch    int

	filler func(seq int) string // the text of line seq after its number, as fill says
}

func (r *rotateloss) Flags(fs *flag.FlagSet) {
	fs.StringVar(&r.rotator, "rotator", "sidetail", "sidetail or logrotate")
	fs.StringVar(&r.bin, "bin", "sidetail", "the sidetail binary")
	fs.IntVar(&r.rate, "rate", 50000, "lines per second")
	fs.IntVar(&r.seconds, "seconds", 10, "how long the writer writes")
	fs.DurationVar(&r.every, "every", 100*time.Millisecond, "how often the rotator checks the size")
	fs.StringVar(&r.fill, "fill", "letters", "line text: letters (compresses well) or base64 (random, compresses worst)")
	fs.BoolVar(&r.compress, "compress", false, "gzip the archives (sidetail rotate --compress, logrotate compress)")
	fs.IntVar(&r.batch, "batch", 0, "gather lines into writes of about this many bytes (0: one write per line)")
}

// Run writes while the rotator rotates, then counts the lines and prints one line
// of results.
func (r *rotateloss) Run([]string) error {
	switch r.fill {
	case "letters":
		r.filler = letterFiller
	case "base64":
		r.filler = base64Filler
	default:
		return command.UsageError("rotateloss: -fill is letters or base64")
	}
	dir, err := os.MkdirTemp("", "rotateloss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	live := filepath.Join(dir, "app.log")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done, err := r.startRotator(ctx, dir, live)
	if err != nil {
		return err
	}
	largest, sampled := sampleSize(ctx, live)
	late, err := r.write(live)
	if err != nil {
		return err
	}
	time.Sleep(2 * r.every) // one more check, so the last cut is made too
	stop()
	<-sampled
	if err := <-done; err != nil && r.rotator == "logrotate" {
		return err
	}
	return r.report(dir, largest.Load(), late)
}

// letterFiller is a run of one letter, 20 to 69 long: text that compresses well.
func letterFiller(seq int) string { return strings.Repeat(string(rune('a'+seq%26)), 20+seq%50) }

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

// startRotator starts the rotator on live, archiving into dir, until ctx is done;
// done receives its end.
func (r *rotateloss) startRotator(ctx context.Context, dir, live string) (done <-chan error, err error) {
	switch r.rotator {
	case "sidetail":
		return r.startSidetail(ctx, dir, live)
	case "logrotate":
		return r.startLogrotate(ctx, dir, live)
	}
	return nil, fmt.Errorf("-rotator: %q is neither sidetail nor logrotate", r.rotator)
}

func (r *rotateloss) startSidetail(ctx context.Context, dir, live string) (<-chan error, error) {
	args := []string{"rotate", "--max-size=1Mi", "--max-files=100000",
		"--check-interval=" + r.every.String(), "--archive-dir=" + dir, live}
	if r.compress {
		args = append(args[:1], append([]string{"--compress"}, args[1:]...)...)
	}
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Stderr = os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done, nil
}

// startLogrotate runs logrotate every r.every, as the Kubernetes docs' logrotate
// sidecar does in a loop.
func (r *rotateloss) startLogrotate(ctx context.Context, dir, live string) (<-chan error, error) {
	conf := filepath.Join(dir, "logrotate.conf")
	comp := "nocompress"
	if r.compress {
		comp = "compress"
	}
	text := fmt.Sprintf("%s {\n  size 1M\n  rotate 100000\n  copytruncate\n  missingok\n  %s\n}\n", live, comp)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(r.every)
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
	return done, nil
}

// sampleSize samples the size of live every few milliseconds until ctx is done,
// keeping the largest; sampled is closed when it stops.
func sampleSize(ctx context.Context, live string) (largest *atomic.Int64, sampled <-chan struct{}) {
	largest = new(atomic.Int64)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
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
	return largest, stopped
}

// write appends r.rate*r.seconds numbered lines to live at r.rate, and returns how
// far behind the schedule it finished.
func (r *rotateloss) write(live string) (late time.Duration, err error) {
	f, err := os.OpenFile(live, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	total := r.rate * r.seconds
	begin := time.Now()
	var buf []byte
	for seq := 0; seq < total; {
		due := min(total, int(time.Since(begin).Seconds()*float64(r.rate))+1)
		for ; seq < due; seq++ {
			buf = fmt.Appendf(buf, "%09d %s\n", seq, r.filler(seq))
			if len(buf) >= r.batch || seq+1 == due {
				if _, err := f.Write(buf); err != nil {
					return 0, err
				}
				buf = buf[:0]
			}
		}
		time.Sleep(time.Millisecond) // pacing
	}
	f.Close()
	return time.Since(begin) - time.Duration(r.seconds)*time.Second, nil
}

// report checks every line in the files of dir and prints what was lost and
// repeated.
func (r *rotateloss) report(dir string, largest int64, late time.Duration) error {
	total := r.rate * r.seconds
	seen := make([]int, total)
	files, _ := filepath.Glob(filepath.Join(dir, "app*"))
	for _, name := range files {
		if err := count(name, seen, r.filler); err != nil {
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
		r.rotator, total, r.rate, len(files), lost, repeated, float64(largest)/(1<<20), late.Seconds())
	return nil
}

// count adds the whole, valid lines of the file to seen: the text of line seq
// after its number is filler(seq).
func count(name string, seen []int, filler func(seq int) string) error {
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
