// Command latency measures write→stdout latency of a file follower: it appends
// timestamped lines to a file at a fixed rate, runs the follower on it, and reports
// percentiles of the delay until each line comes out.
//
//	latency -file /tmp/x.log -rate 200 -n 2000 -- sidetail /tmp/x.log
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/sidetail/sidetail/bench/internal/command"
)

func main() { command.Main("latency", &latency{}) }

// latency is one run's settings, from the flags.
type latency struct {
	file string
	rate int // lines per second
	n    int // lines measured
}

func (l *latency) Flags(fs *flag.FlagSet) {
	fs.StringVar(&l.file, "file", "", "file to append to (created empty)")
	fs.IntVar(&l.rate, "rate", 200, "lines per second")
	fs.IntVar(&l.n, "n", 2000, "lines to measure")
}

// Run measures the follower args runs, and prints the percentiles.
func (l *latency) Run(args []string) error {
	if l.file == "" || len(args) == 0 {
		return command.UsageError("usage: latency -file F [-rate R] [-n N] -- command args...")
	}
	f, err := os.OpenFile(l.file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(args[0], args[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lat := make(chan time.Duration, l.n+1)
	go delays(out, lat)
	if err := warmUp(f, lat, args[0]); err != nil {
		return err
	}
	got, err := l.measure(f, lat, args[0])
	if err != nil {
		return err
	}
	slices.Sort(got)
	n := len(got)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d.Microseconds())/1000) }
	fmt.Printf("p50_ms=%s p99_ms=%s max_ms=%s\n", ms(got[n/2]), ms(got[n*99/100]), ms(got[n-1]))
	return nil
}

// delays reads the follower's output and sends, for each timestamped line, how
// long ago it was written; it closes lat when the output ends.
func delays(out io.Reader, lat chan<- time.Duration) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.Index(line, []byte("LAT "))
		if i < 0 {
			continue
		}
		ns, err := strconv.ParseInt(string(line[i+4:]), 10, 64)
		if err == nil {
			lat <- time.Since(time.Unix(0, ns))
		}
	}
	close(lat)
}

// warmUp writes a line every 200 ms until the follower relays one, so start-up is
// not measured, then drops the delays of the lines written so far.
func warmUp(f *os.File, lat <-chan time.Duration, name string) error {
	for {
		fmt.Fprintf(f, "LAT %d\n", time.Now().UnixNano())
		select {
		case _, ok := <-lat:
			if !ok {
				return fmt.Errorf("%s exited", name)
			}
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	for len(lat) > 0 {
		<-lat
	}
	return nil
}

// measure writes l.n timestamped lines at l.rate and returns the delay of each.
func (l *latency) measure(f *os.File, lat <-chan time.Duration, name string) ([]time.Duration, error) {
	tick := time.NewTicker(time.Second / time.Duration(l.rate))
	defer tick.Stop()
	got := make([]time.Duration, 0, l.n)
	for i := 0; i < l.n; i++ {
		<-tick.C
		fmt.Fprintf(f, "LAT %d\n", time.Now().UnixNano())
	}
	deadline := time.After(5 * time.Second)
	for len(got) < l.n {
		select {
		case d, ok := <-lat:
			if !ok {
				return nil, fmt.Errorf("%s exited", name)
			}
			got = append(got, d)
		case <-deadline:
			return nil, fmt.Errorf("only %d of %d lines came out", len(got), l.n)
		}
	}
	return got, nil
}
