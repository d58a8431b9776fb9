package rotate

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// base64Lines returns n bytes of lines of random base64: the low-redundancy logs
// (tokens, IDs, encrypted payloads) that compress worst and slowest.
func base64Lines(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	raw := make([]byte, 66)
	var out []byte
	for i := 0; len(out) < n; i++ {
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		out = fmt.Appendf(out, "%09d ", i)
		out = base64.StdEncoding.AppendEncode(out, raw)
		out = append(out, '\n')
	}
	return out
}

// BenchmarkArchiveGzip compares the archive compressor with the standard library's
// at its default and fastest levels; the compressed size is reported per input byte.
// rotate --compress must outpace the writer or the live file grows without bound.
// accessLines returns n bytes of access-log lines: the common, redundant case.
func accessLines(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	paths := []string{"/api/v1/items", "/api/v1/users/login", "/static/app.js", "/healthz"}
	var out []byte
	for i := 0; len(out) < n; i++ {
		out = fmt.Appendf(out, "10.0.%d.%d - - [23/Nov/2026:18:%02d:%02d +0000] \"GET %s?id=%d HTTP/1.1\" %d %d \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" rt=%.3f\n",
			rng.IntN(256), rng.IntN(256), i/60000%60, i/1000%60, paths[rng.IntN(len(paths))], rng.IntN(100000),
			[]int{200, 200, 200, 304, 404, 500}[rng.IntN(6)], rng.IntN(50000), rng.Float64())
	}
	return out
}

// BenchmarkArchiveGzip compares compressors and levels for the archives on
// low-redundancy lines (random base64) and access-log lines; the compressed size
// per input byte is reported as "ratio". rotate --compress must outpace the writer,
// or the live file grows without bound.
func BenchmarkArchiveGzip(b *testing.B) {
	std := func(level int) func(io.Writer) io.WriteCloser {
		return func(w io.Writer) io.WriteCloser { z, _ := stdgzip.NewWriterLevel(w, level); return z }
	}
	kp := func(level int) func(io.Writer) io.WriteCloser {
		return func(w io.Writer) io.WriteCloser { z, _ := gzip.NewWriterLevel(w, level); return z }
	}
	for _, data := range []struct {
		name  string
		lines []byte
	}{{"base64", base64Lines(8 << 20)}, {"access", accessLines(8 << 20)}} {
		for _, tc := range []struct {
			name string
			new  func(io.Writer) io.WriteCloser
		}{
			{"std-default", std(stdgzip.DefaultCompression)},
			{"std-1", std(stdgzip.BestSpeed)},
			{"std-huffman", std(stdgzip.HuffmanOnly)},
			{"kp-default", kp(gzip.DefaultCompression)},
			{"kp-1", kp(gzip.BestSpeed)},
			{"kp-2", kp(2)},
			{"kp-3", kp(3)},
			{"kp-4", kp(4)},
			{"kp-huffman", kp(gzip.HuffmanOnly)},
		} {
			b.Run(data.name+"/"+tc.name, func(b *testing.B) {
				var out countWriter
				b.SetBytes(int64(len(data.lines)))
				cpu0 := cpuTime()
				for b.Loop() {
					out = 0
					z := tc.new(&out)
					// In io.Copy's 32 KiB writes, as archive makes them.
					io.CopyBuffer(z, bytes.NewReader(data.lines), make([]byte, 32<<10))
					z.Close()
				}
				b.ReportMetric(float64(out)/float64(len(data.lines)), "ratio")
				// The machine is shared: MB per CPU-second is steadier than MB/s.
				b.ReportMetric(float64(b.N)*float64(len(data.lines))/1e6/(cpuTime()-cpu0).Seconds(), "MB/cpu-s")
			})
		}
	}
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// cpuTime is the CPU time the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
