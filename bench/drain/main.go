// Command drain is a fast reader of a pipe: it reads stdin in 1 MiB reads until it
// has seen -lines newlines (or -bytes bytes), then prints how many bytes it read
// and exits. Into `head -n`, sidetail's JSON is bound by head's own work per line;
// drain's is one vectorised newline count per read, so what it measures is the
// writer and the pipe. It stops at a line count because sidetail's JSON has no
// fixed size (the time field drops trailing zeros of its nanoseconds) and
// sidetail never exits on its own.
//
// With -until FILE the count is not known at the start: a writer's line count
// appears in FILE (written whole, by rename) once it is done; when drain has seen
// that many lines it prints the count, so a script knows the follower relayed all
// of them, and reads on until stdin ends: a follower that watches its stdout (GNU
// tail -F does) must not exit before the script has measured it.
//
//	sidetail --format=json big.log | drain -lines 2684354
//	sidetail app.log | drain -until written.count   # prints the lines seen
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sidetail/sidetail/bench/internal/command"
)

func main() { command.Main("drain", &drain{}) }

// drain is one run's settings, from the flags.
type drain struct {
	lines int64
	bytes int64
	until string
}

func (d *drain) Flags(fs *flag.FlagSet) {
	fs.Int64Var(&d.lines, "lines", 0, "stop after this many newlines")
	fs.Int64Var(&d.bytes, "bytes", 0, "stop after this many bytes")
	fs.StringVar(&d.until, "until", "", "stop after as many newlines as FILE, once it exists, says")
}

func (d *drain) Run([]string) error {
	modes := 0
	for _, set := range []bool{d.lines > 0, d.bytes > 0, d.until != ""} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return command.UsageError("usage: drain -lines N | -bytes N | -until FILE")
	}
	if d.until != "" {
		return d.runUntil()
	}
	buf := make([]byte, 1<<20)
	var lines, total int64
	for (d.lines == 0 || lines < d.lines) && (d.bytes == 0 || total < d.bytes) {
		n, err := os.Stdin.Read(buf)
		total += int64(n)
		// Counted with -bytes too: every run into drain costs it the same.
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("stdin ended after %d lines, %d bytes", lines, total)
		}
		if err != nil {
			return err
		}
	}
	fmt.Println(total)
	return nil
}

// runUntil counts lines on one goroutine and looks for the target every 10 ms on
// this one: the target may appear after the last line came, when no read returns.
func (d *drain) runUntil() error {
	counted := make(chan int64)
	failed := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<20)
		var lines int64
		for {
			n, err := os.Stdin.Read(buf)
			lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
			counted <- lines
			if err != nil {
				failed <- fmt.Errorf("stdin ended after %d lines: %w", lines, err)
				return
			}
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var lines int64
	target := int64(-1)
	for target < 0 || lines < target {
		select {
		case lines = <-counted:
		case err := <-failed:
			return err
		case <-tick.C:
			if target < 0 {
				target = readCount(d.until)
			}
		}
	}
	fmt.Println(lines)
	for {
		select {
		case lines = <-counted:
		case <-failed:
			return nil
		}
	}
}

// readCount returns the number in file, -1 while there is none.
func readCount(file string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}
