package tailer

import (
	"io"
	"strings"
	"testing"
)

// chunkReader returns at most n bytes per Read, like a file being appended to.
type chunkReader struct {
	s string
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	k := min(len(p), r.n, len(r.s))
	copy(p, r.s[:k])
	r.s = r.s[k:]
	return k, nil
}

// splitter is what LineReader and Framer share: one read in, pieces out.
type splitter interface {
	Fill(src io.Reader) (int, error)
	Next() (piece []byte, partial, ok bool)
}

// eachPiece hands emit each piece sp has ready.
func eachPiece(sp splitter, emit func(piece []byte, partial bool)) {
	for {
		p, partial, ok := sp.Next()
		if !ok {
			return
		}
		emit(p, partial)
	}
}

type piece struct {
	text    string
	partial bool
}

// split runs the reader the way the follower does and returns each output line.
func split(t *testing.T, input string, chunk, max int, flush bool) []piece {
	t.Helper()
	lr := NewLineReader(max)
	src := &chunkReader{s: input, n: chunk}
	var out []piece
	collect := func(seg []byte, partial bool) {
		for s := string(seg); s != ""; {
			line, rest, found := strings.Cut(s, "\n")
			if found {
				line += "\n"
			}
			out = append(out, piece{line, partial})
			s = rest
		}
	}
	for {
		n, err := lr.Fill(src)
		eachPiece(lr, func(seg []byte, partial bool) {
			for _, line := range strings.SplitAfter(string(seg), "\n") {
				if len(strings.TrimSuffix(line, "\n")) > max {
					t.Fatalf("line longer than max %d: %q", max, line)
				}
			}
			collect(seg, partial)
		})
		if lr.Buffered() > max {
			t.Fatalf("holding %d bytes, more than max %d", lr.Buffered(), max)
		}
		if n == 0 || err != nil {
			break
		}
	}
	if flush {
		collect(lr.Held(), false)
	}
	return out
}

func TestLineReader(t *testing.T) {
	tests := []struct {
		name, input string
		max         int
		want        []piece
	}{
		{"lines", "a\nbb\n\nccc\n", 10, []piece{{"a\n", false}, {"bb\n", false}, {"\n", false}, {"ccc\n", false}}},
		{"no final newline is held", "a\nbc", 10, []piece{{"a\n", false}, {"bc", false}}},
		{"crlf and NUL pass through", "a\r\n\x00b\x1b[31m\n", 10, []piece{{"a\r\n", false}, {"\x00b\x1b[31m\n", false}}},
		{"invalid utf8 passes through", "\xff\xfe\n", 10, []piece{{"\xff\xfe\n", false}}},
		{"exactly max", "abcd\nefgh\n", 4, []piece{{"abcd\n", false}, {"efgh\n", false}}},
		{"long line cut", "abcdefghij\nk\n", 4, []piece{{"abcd", true}, {"efgh", true}, {"ij\n", false}, {"k\n", false}}},
		{"cut at utf8 boundary", "aé€b\n", 3, []piece{{"aé", true}, {"€", true}, {"b\n", false}}},
		{"long partial at end", "abcdefghij", 4, []piece{{"abcd", true}, {"efgh", true}, {"ij", false}}},
		{"invalid utf8 cut at max", "\xff\xff\xff\xff\xff\xff\n", 4, []piece{{"\xff\xff\xff\xff", true}, {"\xff\xff\n", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for chunk := 1; chunk <= len(tt.input)+1; chunk++ {
				got := split(t, tt.input, chunk, tt.max, true)
				if !equalPieces(got, tt.want) {
					t.Fatalf("chunk %d: got %+v, want %+v", chunk, got, tt.want)
				}
			}
		})
	}
}

func TestLineReaderHoldsPartialUntilNewline(t *testing.T) {
	got := split(t, "done\nhalf", 4, 100, false)
	if !equalPieces(got, []piece{{"done\n", false}}) {
		t.Fatalf("got %+v; the partial line must be held", got)
	}
}

// TestLineReaderMemoryBounded follows the buffer through a line many times max: it
// never exceeds max+1+fileReadSize, and the buffers it grew through (garbage the
// collector may not have taken yet) add up to less than half of max, so peak memory
// stays under 2*max whatever the collector does. After the line it shrinks back.
func TestLineReaderMemoryBounded(t *testing.T) {
	for _, max := range []int{64 << 10, 1 << 20, 1<<20 + 1, 3 << 20} {
		for _, chunk := range []int{4 << 10, 1 << 30} {
			input := strings.Repeat("x", 5*max+max/3) + "\nshort\n"
			lr := NewLineReader(max)
			src := &chunkReader{s: input, n: chunk}
			total, allocated := 0, 0
			var current *byte
			for {
				n, err := lr.Fill(src)
				if len(lr.buf) > 0 && &lr.buf[0] != current {
					current = &lr.buf[0]
					allocated += cap(lr.buf)
				}
				for {
					seg, _, ok := lr.Next()
					if !ok {
						break
					}
					total += len(seg)
				}
				if cap(lr.buf) > max+1+fileReadSize {
					t.Fatalf("max %d: buffer grew to %d bytes, bound is %d", max, cap(lr.buf), max+1+fileReadSize)
				}
				if err != nil || n == 0 {
					break
				}
			}
			if total != len(input) {
				t.Fatalf("max %d: emitted %d bytes, want %d", max, total, len(input))
			}
			// The first buffer, the grown ones, and a fresh one after the line.
			if bound := fileReadSize + max/2 + max + 1 + fileReadSize + fileReadSize; allocated > bound {
				t.Fatalf("max %d, reads of %d: allocated %d bytes of buffers for one long line, bound is %d", max, chunk, allocated, bound)
			}
			if cap(lr.buf) != fileReadSize {
				t.Fatalf("max %d: buffer of %d bytes after the long line, want %d", max, cap(lr.buf), fileReadSize)
			}
		}
	}
}

func equalPieces(a, b []piece) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func BenchmarkLineReaderRaw(b *testing.B) {
	data := strings.Repeat(strings.Repeat("x", 99)+"\n", 1<<14) // 1.6 MB
	b.SetBytes(int64(len(data)))
	lr := NewLineReader(1 << 20)
	for b.Loop() {
		src := strings.NewReader(data)
		for {
			n, _ := lr.Fill(src)
			for {
				if _, _, ok := lr.Next(); !ok {
					break
				}
			}
			if n == 0 {
				break
			}
		}
	}
}
