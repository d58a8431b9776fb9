// Command appender appends numbered 100-byte lines to a file at a steady rate in
// fixed-size writes (lines split across writes, as a buffered logger flushes them),
// then prints how many lines it wrote.
//
//	appender -file /tmp/x.log -rate 20 -seconds 20 -write 65536   # 20 MB/s
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sidetail/sidetail/bench/internal/command"
)

func main() { command.Main("appender", &appender{}) }

// appender is one run's settings, from the flags.
type appender struct {
	file    string
	rate    float64 // MB per second
	seconds float64
	size    int // bytes per write
}

func (a *appender) Flags(fs *flag.FlagSet) {
	fs.StringVar(&a.file, "file", "", "file to append to (created if missing)")
	fs.Float64Var(&a.rate, "rate", 20, "MB (10^6 bytes) per second")
	fs.Float64Var(&a.seconds, "seconds", 20, "how long to write")
	fs.IntVar(&a.size, "write", 64<<10, "bytes per write")
}

func (a *appender) Run([]string) error {
	if a.file == "" || a.rate <= 0 || a.size <= 0 {
		return command.UsageError("usage: appender -file F [-rate MB/s] [-seconds S] [-write BYTES]")
	}
	lines, err := appendLines(a.file, a.rate*1e6, time.Duration(a.seconds*float64(time.Second)), a.size)
	if err != nil {
		return err
	}
	fmt.Println(lines)
	return nil
}

// appendLines appends lines to file at rate bytes per second for d, in writes of
// size bytes, and returns how many lines it wrote.
func appendLines(file string, rate float64, d time.Duration, size int) (int, error) {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	pad := strings.Repeat("x", 89) // 9 digits, a space, 89 bytes and a newline
	var pending []byte
	lines, written := 0, 0
	begin := time.Now()
	for {
		elapsed := time.Since(begin)
		if elapsed >= d {
			break
		}
		due := int(elapsed.Seconds() * rate)
		for written+size <= due {
			for len(pending) < size {
				pending = fmt.Appendf(pending, "%09d %s\n", lines, pad)
				lines++
			}
			if _, err := f.Write(pending[:size]); err != nil {
				return lines, err
			}
			written += size
			pending = pending[:copy(pending, pending[size:])]
		}
		time.Sleep(time.Millisecond)
	}
	// The last line is completed, so every line written can be counted.
	if _, err := f.Write(pending); err != nil {
		return lines, err
	}
	return lines, nil
}
