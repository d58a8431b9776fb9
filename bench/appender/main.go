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
)

func main() {
	file := flag.String("file", "", "file to append to (created if missing)")
	rate := flag.Float64("rate", 20, "MB (10^6 bytes) per second")
	seconds := flag.Float64("seconds", 20, "how long to write")
	size := flag.Int("write", 64<<10, "bytes per write")
	flag.Parse()
	if *file == "" || *rate <= 0 || *size <= 0 {
		fmt.Fprintln(os.Stderr, "usage: appender -file F [-rate MB/s] [-seconds S] [-write BYTES]")
		os.Exit(2)
	}
	lines, err := run(*file, *rate*1e6, time.Duration(*seconds*float64(time.Second)), *size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "appender:", err)
		os.Exit(1)
	}
	fmt.Println(lines)
}

func run(file string, rate float64, d time.Duration, size int) (int, error) {
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
