package tailer

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var goldenTime = time.Date(2026, 11, 22, 19, 50, 0, 123456789, time.UTC)

// goldenInput is one file's segments: whole lines, a piece of a long line, and a
// partial line flushed at rotation; bytes JSON must escape or replace.
var goldenInput = []struct {
	seg     string
	partial bool
}{
	{"plain line\nquote \" backslash \\ tab \t\n", false},
	{"ansi \x1b[31mred\x1b[0m nul \x00 cr \r\n", false},
	{"invalid \xff\xfe utf8 é €\n", false},
	{"piece of a long li", true},
	{"ne\n", false},
	{"held at rotation", false},
}

func TestFormatGolden(t *testing.T) {
	formats := map[string]Format{
		"raw":    {},
		"prefix": {Prefix: mustPrefix(t, "{time} [{tag}] {file}: ")},
		"json":   {JSON: true},
	}
	for name, f := range formats {
		t.Run(name, func(t *testing.T) {
			e := newEncoder(f, "app", "/var/log/app \"x\".log")
			var got []byte
			for _, in := range goldenInput {
				got = e.appendSegment(got, []byte(in.seg), in.partial, goldenTime)
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./tailer -run Golden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestParsePrefix(t *testing.T) {
	for _, bad := range []string{"{tag", "{nope}", "x{}", "{TAG}"} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) succeeded, want an error", bad)
		}
	}
	p := mustPrefix(t, "<{tag}|{file}> ")
	e := newEncoder(Format{Prefix: p}, "t", "f")
	if got := string(e.appendSegment(nil, []byte("x\n"), false, goldenTime)); got != "<t|f> x\n" {
		t.Fatalf("got %q", got)
	}
}

func mustPrefix(t testing.TB, s string) Prefix {
	p, err := ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzJSON checks that any bytes become valid JSON objects, one per line, whose
// message is the input with each invalid UTF-8 byte replaced by U+FFFD.
func FuzzJSON(f *testing.F) {
	for _, in := range goldenInput {
		f.Add([]byte(in.seg), "tag", "/f.log", in.partial)
	}
	f.Fuzz(func(t *testing.T, seg []byte, tag, file string, partial bool) {
		if len(seg) == 0 {
			t.Skip("the reader never hands out an empty segment")
		}
		e := newEncoder(Format{JSON: true}, tag, file)
		out := e.appendSegment(nil, seg, partial, goldenTime)
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		wantLines := strings.Split(strings.TrimSuffix(string(seg), "\n"), "\n")
		if len(lines) != len(wantLines) {
			t.Fatalf("%d objects for %d lines: %q", len(lines), len(wantLines), out)
		}
		// Byte for byte as each line escaped alone by the encoding/json reference:
		// the one pass over the segment stops at newlines and escapes nothing else
		// differently.
		var want []byte
		for i, line := range wantLines {
			want = append(want, e.lineHead(goldenTime)...)
			want = appendJSONStringStd(want, []byte(line))
			want = append(want, jsonTail(partial && i == len(wantLines)-1)...)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("segment %q encodes to\n%q, want\n%q", seg, out, want)
		}
		for i, line := range lines {
			var obj struct {
				Time, Tag, File, Message string
				Partial                  bool
			}
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Fatalf("invalid JSON %q: %v", line, err)
			}
			if want := string([]rune(wantLines[i])); obj.Message != want {
				t.Fatalf("message %q, want %q", obj.Message, want)
			}
			if obj.Tag != string([]rune(tag)) || obj.File != string([]rune(file)) {
				t.Fatalf("tag/file %q %q, want %q %q", obj.Tag, obj.File, tag, file)
			}
			if obj.Partial != (partial && i == len(lines)-1) {
				t.Fatalf("partial=%v on line %d of %d", obj.Partial, i, len(lines))
			}
		}
	})
}

// FuzzLineReader checks that splitting loses, adds and reorders no byte and keeps
// every line within max, whatever the input, chunking and max.
func FuzzLineReader(f *testing.F) {
	f.Add("a\nbb\nccc", uint8(2), uint8(1))
	f.Add("aé€b\n\xff\xff\xff\xff\n", uint8(3), uint8(5))
	f.Fuzz(func(t *testing.T, input string, max, chunk uint8) {
		pieces := split(t, input, int(chunk)+1, int(max)+1, true)
		var got strings.Builder
		for _, p := range pieces {
			got.WriteString(p.text)
		}
		if got.String() != input {
			t.Fatalf("got %q, want %q", got.String(), input)
		}
	})
}

// BenchmarkEncode is a segment of the reader's usual size through each format
// that encodes line by line: 100-byte lines as bench/compare.sh writes them, and
// lines that carry a JSON payload, so escapes come every few bytes.
func BenchmarkEncode(b *testing.B) {
	plain := strings.Repeat("x", 99) + "\n"
	quoted := `level=info msg="request done" body={"id":42,"path":"/api/v1/items","ok":true}` + "\n"
	for _, tc := range []struct {
		name string
		f    Format
		line string
	}{
		{"json/plain", Format{JSON: true}, plain},
		{"json/quoted", Format{JSON: true}, quoted},
		{"timestamps/plain", Format{Prefix: Prefix{{field: "time"}, {literal: " "}}}, plain},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data := bytes.Repeat([]byte(tc.line), readSize/len(tc.line))
			e := newEncoder(tc.f, "app", "/var/log/app.log")
			var out []byte
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				out = e.appendSegment(out[:0], data, false, goldenTime)
			}
		})
	}
}

// Pacing delays writes so the output keeps to the rate after the first second's
// worth, whole writes only, however large each is.
func TestOutputPace(t *testing.T) {
	var got bytes.Buffer
	out := NewOutput(&got)
	out.Pace(1 << 20)
	// A clock that moves only when the output sleeps: how long the writes take
	// (under -race and load, a good part of a second) plays no part.
	begin := time.Now()
	var last time.Duration
	out.now = func() time.Time { return begin.Add(last) }
	out.sleep = func(d time.Duration) { last += d }
	chunk := bytes.Repeat([]byte("x"), 3<<20/7) // not a divisor of the bucket
	for range 7 {
		if err := out.write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// 3 MiB at 1 MiB/s with a 1 MiB bucket: the last byte may go 2 s from now.
	if last < 1990*time.Millisecond || last > 2010*time.Millisecond {
		t.Fatalf("the last write waits until %s from the start, want 2s", last)
	}
	if got.Len() != 7*len(chunk) {
		t.Fatalf("wrote %d bytes, want %d", got.Len(), 7*len(chunk))
	}
}

// stdEscapes are the escapes encoding/json writes that appendJSONString spells
// otherwise: \b and \f in the long form, and U+2028 and U+2029 as they are (JSON
// allows them raw; encoding/json escapes them only for JavaScript's sake).
var stdEscapes = map[string]string{`\b`: `\u0008`, `\f`: `\u000c`, `\u2028`: "\u2028", `\u2029`: "\u2029"}

// appendJSONStringStd is the reference appendJSONString must match byte for byte:
// encoding/json's escaping, without its HTML escapes, with stdEscapes swapped in.
func appendJSONStringStd(dst, s []byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(string(s)); err != nil {
		panic(err) // a string always encodes
	}
	inner := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	inner = inner[1 : len(inner)-1]
	for {
		i := bytes.IndexByte(inner, '\\')
		if i < 0 {
			return append(dst, inner...)
		}
		dst = append(dst, inner[:i]...)
		esc := inner[i : i+2]
		if esc[1] == 'u' {
			esc = inner[i : i+6]
		}
		if ours, ok := stdEscapes[string(esc)]; ok {
			dst = append(dst, ours...)
		} else {
			dst = append(dst, esc...)
		}
		inner = inner[i+len(esc):]
	}
}

// jsonWordCases are long ASCII runs with one byte that needs care at every offset
// within a word, and at the words' edges: the cases the word-at-a-time scan skips.
func jsonWordCases() [][]byte {
	var cases [][]byte
	for _, special := range []string{"\"", "\\", "\n", "\t", "\b", "\f", "\u2028", "\x00", "\x1f", "\x7f", " ", "\x80", "\xff", "é", "€", "\U0001F600", "\xe2\x82"} {
		for n := 0; n < 24; n++ {
			for at := 0; at <= n; at++ {
				s := strings.Repeat("a", at) + special + strings.Repeat("b", n-at)
				cases = append(cases, []byte(s))
			}
		}
	}
	return cases
}

func TestJSONStringWords(t *testing.T) {
	for _, in := range jsonWordCases() {
		got := appendJSONString([]byte("x"), in)
		want := appendJSONStringStd([]byte("x"), in)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %q, want %q", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(`"`+string(got[1:])+`"`), &back); err != nil || back != string([]rune(string(in))) {
			t.Fatalf("appendJSONString(%q) = %q decodes to %q (%v)", in, got, back, err)
		}
	}
}

// FuzzJSONString checks the escaping alone, so long runs reach the word-at-a-time
// scan: byte for byte against the encoding/json reference, and by decoding it.
func FuzzJSONString(f *testing.F) {
	for _, in := range jsonWordCases() {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		got := appendJSONString(nil, s)
		if want := appendJSONStringStd(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %q, want %q", s, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(`"`+string(got)+`"`), &back); err != nil || back != string([]rune(string(s))) {
			t.Fatalf("appendJSONString(%q) = %q decodes to %q (%v)", s, got, back, err)
		}
	})
}

func BenchmarkJSONString(b *testing.B) {
	for _, tc := range []struct{ name, line string }{
		{"ascii", strings.Repeat("GET /api/v1/items?id=42 HTTP/1.1 200 ", 3)},
		{"quotes", strings.Repeat(`{"k":"v","n":1} `, 6)},
		{"utf8", strings.Repeat("žluťoučký kůň ", 7)},
	} {
		// The reference alongside, so one run gives the ratio on a noisy machine.
		for _, impl := range []struct {
			name   string
			escape func(dst, s []byte) []byte
		}{{"words", appendJSONString}, {"std", appendJSONStringStd}} {
			b.Run(tc.name+"/"+impl.name, func(b *testing.B) {
				s := []byte(tc.line)
				var out []byte
				b.SetBytes(int64(len(s)))
				for b.Loop() {
					out = impl.escape(out[:0], s)
				}
			})
		}
	}
}

// writeRecorder keeps what is written, and the largest single write.
type writeRecorder struct {
	bytes.Buffer
	largest int
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.largest = max(w.largest, len(p))
	return w.Buffer.Write(p)
}

// TestWriteSegmentLong checks that segments too long for one encoding buffer go out
// byte for byte as appendSegment encodes them, while the output buffer stays small:
// a long line costs no second copy of itself.
func TestWriteSegmentLong(t *testing.T) {
	// Runes and escapes around every place a piece may be cut.
	var long strings.Builder
	for long.Len() < 16*writeChunk {
		long.WriteString(strings.Repeat("y", writeChunk-5))
		long.WriteString("é€\"\x01\xff😀")
	}
	short := strings.Repeat("short line\n", encodeRun/11+3)
	inputs := []struct {
		name    string
		seg     string
		partial bool
	}{
		{"piece", long.String(), true},
		{"held", long.String(), false},
		{"line", long.String() + "\n", false},
		{"lines", short + long.String() + "\n" + short + long.String() + "\n" + short, false},
		{"lines then piece", short + short + long.String(), true},
		{"short lines", short + short + short, false},
	}
	formats := map[string]Format{
		"raw":    {},
		"prefix": {Prefix: mustPrefix(t, "{time} [{tag}] ")},
		"json":   {JSON: true},
	}
	const bufBound = 8 * writeChunk
	for fname, f := range formats {
		for _, in := range inputs {
			e := newEncoder(f, "app", "/var/log/app.log")
			want := e.appendSegment(nil, []byte(in.seg), in.partial, goldenTime)
			var w writeRecorder
			buf, err := e.writeSegment(NewOutput(&w), nil, []byte(in.seg), in.partial, goldenTime)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.Bytes(), want) {
				t.Fatalf("%s %s: writeSegment wrote %d bytes unlike appendSegment's %d", fname, in.name, w.Len(), len(want))
			}
			if cap(buf) > bufBound {
				t.Fatalf("%s %s: output buffer grew to %d bytes for %d of input", fname, in.name, cap(buf), len(in.seg))
			}
			if f.JSON && w.largest > bufBound {
				t.Fatalf("%s %s: one write of %d bytes: the encoding was gathered whole", fname, in.name, w.largest)
			}
		}
	}
	for _, cut := range []bool{false, true} {
		rec := []byte(short + long.String() + "\n" + short)
		e := newEncoder(Format{JSON: true}, "app", "/var/log/app.log")
		want := e.appendRecord(nil, rec, cut, goldenTime)
		var w writeRecorder
		buf, err := e.writeRecord(NewOutput(&w), nil, rec, cut, goldenTime)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w.Bytes(), want) {
			t.Fatalf("record (cut %v): writeRecord wrote %d bytes unlike appendRecord's %d", cut, w.Len(), len(want))
		}
		if cap(buf) > bufBound || w.largest > bufBound {
			t.Fatalf("record: output buffer of %d bytes, a write of %d", cap(buf), w.largest)
		}
	}
}

// TestWriteSegmentLongNotInterleaved writes long lines of two files at once, in
// pieces: each output line must still hold one file's bytes only.
func TestWriteSegmentLongNotInterleaved(t *testing.T) {
	var w writeRecorder
	out := NewOutput(&w)
	var wg sync.WaitGroup
	for _, fill := range []string{"a", "b"} {
		wg.Go(func() {
			e := newEncoder(Format{}, fill, fill)
			seg := []byte(strings.Repeat(fill, 3*writeChunk))
			var buf []byte
			for i := range 20 {
				var err error
				if buf, err = e.writeSegment(out, buf, seg, i%2 == 0, goldenTime); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	if len(lines) != 40 {
		t.Fatalf("%d lines, want 40", len(lines))
	}
	for i, line := range lines {
		if strings.Trim(line, line[:1]) != "" || len(line) != 3*writeChunk {
			t.Fatalf("line %d mixes files or is cut: %d bytes starting %q", i, len(line), line[:10])
		}
	}
}
