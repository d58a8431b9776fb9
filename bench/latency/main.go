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
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

func main() {
	file := flag.String("file", "", "file to append to (created empty)")
	rate := flag.Int("rate", 200, "lines per second")
	n := flag.Int("n", 2000, "lines to measure")
	flag.Parse()
	if *file == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: latency -file F [-rate R] [-n N] -- command args...")
		os.Exit(2)
	}
	if err := measure(*file, *rate, *n, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

func measure(file string, rate, n int, args []string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
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

	lat := make(chan time.Duration, n+1)
	go func() {
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
	}()
	// Warm up: wait until the follower relays a line, so start-up is not measured.
	for {
		fmt.Fprintf(f, "LAT %d\n", time.Now().UnixNano())
		select {
		case _, ok := <-lat:
			if !ok {
				return fmt.Errorf("%s exited", args[0])
			}
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	for len(lat) > 0 {
		<-lat
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	got := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		<-tick.C
		fmt.Fprintf(f, "LAT %d\n", time.Now().UnixNano())
	}
	deadline := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case d, ok := <-lat:
			if !ok {
				return fmt.Errorf("%s exited", args[0])
			}
			got = append(got, d)
		case <-deadline:
			return fmt.Errorf("only %d of %d lines came out", len(got), n)
		}
	}
	slices.Sort(got)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d.Microseconds())/1000) }
	fmt.Printf("p50_ms=%s p99_ms=%s max_ms=%s\n", ms(got[n/2]), ms(got[n*99/100]), ms(got[n-1]))
	return nil
}
