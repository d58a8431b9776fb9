package tailer

import (
	"io"
	"strconv"
	"strings"
	"testing"
)

// frames runs a framer over input, chunk bytes per read, and returns each message
// (pieces joined, "+" after a piece cut at max) and, last, what Rest held.
func frames(t *testing.T, input string, chunk, max int) (msgs []string, octets bool, stream string) {
	t.Helper()
	fr := NewFramer(max)
	src := &chunkReader{s: input, n: chunk}
	var b strings.Builder // input rebuilt from what came out: nothing lost or added
	var cur strings.Builder
	for {
		_, err := fr.Fill(src)
		eachPiece(fr, func(msg []byte, partial bool) {
			if len(msg) > max {
				t.Fatalf("piece of %d bytes, max %d", len(msg), max)
			}
			cur.Write(msg)
			if partial {
				msgs = append(msgs, string(msg)+"+")
				return
			}
			msgs = append(msgs, string(msg))
			if fr.Octets() {
				b.WriteString(strconv.Itoa(cur.Len()) + " " + cur.String())
			} else {
				b.WriteString(cur.String() + "\n")
			}
			cur.Reset()
		})
		if len(fr.buf) > max+1+2*readSize {
			t.Fatalf("buffer grew to %d bytes, max %d", len(fr.buf), max)
		}
		if err == io.EOF {
			break
		}
	}
	// A frame cut short: its header is gone from the buffer, rebuild it.
	if fr.Octets() && fr.left >= 0 {
		b.WriteString(strconv.Itoa(cur.Len()+fr.left) + " " + cur.String())
	} else {
		b.WriteString(cur.String())
	}
	rest := fr.Rest()
	b.Write(rest)
	if len(rest) > 0 || cur.Len() > 0 {
		msgs = append(msgs, "rest:"+string(rest))
	}
	return msgs, fr.Octets(), b.String()
}

func TestFramer(t *testing.T) {
	tests := []struct {
		name, input string
		max         int
		want        []string
		octets      bool
	}{
		{"lines", "<13>a\n<13>b\n", 100, []string{"<13>a", "<13>b"}, false},
		{"last line without newline", "a\nb", 100, []string{"a", "rest:b"}, false},
		{"octets", "5 <13>a6 <13>bc", 100, []string{"<13>a", "<13>bc"}, true},
		{"octets with newlines inside", "7 <13>a\nb6 <13>\n\n", 100, []string{"<13>a\nb", "<13>\n\n"}, true},
		{"a line starting with digits is a line", "2026-11-23 hello\n200 OK\n", 100, []string{"2026-11-23 hello", "200 OK"}, false},
		{"digits and a space but no PRI", "12 apples\n", 100, []string{"12 apples"}, false},
		{"leading zero is no length", "05 <13>a\n", 100, []string{"05 <13>a"}, false},
		{"long line cut", "abcdefgh\nij\n", 3, []string{"abc+", "def+", "gh", "ij"}, false},
		{"long frame cut", "8 <1>abcde3 <2>", 3, []string{"<1>+", "abc+", "de", "<2>"}, true},
		{"frame cut short", "9 <13>ab", 100, []string{"rest:<13>ab"}, true},
		{"bad header later: the rest as lines", "5 <13>ax <13>b\n", 100, []string{"<13>a", "x <13>b"}, false},
		{"empty", "", 100, nil, false},
	}
	for _, tt := range tests {
		for chunk := 1; chunk <= len(tt.input)+1; chunk++ {
			got, octets, rebuilt := frames(t, tt.input, chunk, tt.max)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("%s, chunk %d: got %q, want %q", tt.name, chunk, got, tt.want)
			}
			if octets != tt.octets {
				t.Errorf("%s, chunk %d: octet counting %v, want %v", tt.name, chunk, octets, tt.octets)
			}
			if rebuilt != tt.input {
				t.Errorf("%s, chunk %d: rebuilt %q from the messages", tt.name, chunk, rebuilt)
			}
		}
	}
}

// FuzzFramer checks that framing loses, adds and reorders no byte, keeps every
// piece within max and the buffer bounded, whatever the bytes, chunking and max.
func FuzzFramer(f *testing.F) {
	f.Add("<13>a\n<13>b\n", uint8(2), uint8(10))
	f.Add("5 <13>a6 <13>bc", uint8(1), uint8(3))
	f.Add("999999999 <13>", uint8(7), uint8(1))
	f.Add("5 <13>ax <13>b\n\xff", uint8(3), uint8(2))
	f.Fuzz(func(t *testing.T, input string, chunk, max uint8) {
		_, _, rebuilt := frames(t, input, int(chunk)+1, int(max)+1)
		if rebuilt != input {
			t.Fatalf("rebuilt %q, input %q", rebuilt, input)
		}
	})
}
