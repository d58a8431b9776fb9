// Command drain is a fast reader of a pipe: it reads stdin in 1 MiB reads until it
// has seen -lines newlines (or -bytes bytes), then prints how many bytes it read
// and exits. Into `head -n`, sidetail's JSON is bound by head's own work per line;
// drain's is one vectorised newline count per read, so what it measures is the
// writer and the pipe. It stops at a line count because sidetail's JSON has no
// fixed size (the time field drops trailing zeros of its nanoseconds) and
// sidetail never exits on its own.
//
//	sidetail --format=json big.log | drain -lines 2684354
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sidetail/sidetail/bench/internal/command"
)

func main() { command.Main("drain", &drain{}) }

// drain is one run's settings, from the flags.
type drain struct {
	lines int64
	bytes int64
}

func (d *drain) Flags(fs *flag.FlagSet) {
	fs.Int64Var(&d.lines, "lines", 0, "stop after this many newlines")
	fs.Int64Var(&d.bytes, "bytes", 0, "stop after this many bytes")
}

func (d *drain) Run([]string) error {
	if (d.lines > 0) == (d.bytes > 0) {
		return command.UsageError("usage: drain -lines N | -bytes N")
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
