package tailer

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
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

func BenchmarkJSON(b *testing.B) {
	data := bytes.Repeat([]byte(strings.Repeat("x", 99)+"\n"), 1<<10)
	e := newEncoder(Format{JSON: true}, "app", "/var/log/app.log")
	var out []byte
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		out = e.appendSegment(out[:0], data, false, goldenTime)
	}
}

// Pacing delays writes so the output keeps to the rate after the first second's
// worth, whole writes only, however large each is.
func TestOutputPace(t *testing.T) {
	var got bytes.Buffer
	out := NewOutput(&got)
	out.Pace(1 << 20)
	begin := time.Now()
	var last time.Duration
	// When each write may go, from the start: writing takes time too (under -race,
	// a good part of a second), which the bucket counts as refilling.
	out.sleep = func(d time.Duration) { last = max(last, time.Since(begin)+d) }
	chunk := bytes.Repeat([]byte("x"), 3<<20/7) // not a divisor of the bucket
	for range 7 {
		if err := out.write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// 3 MiB at 1 MiB/s with a 1 MiB bucket: the last byte may go 2 s from now.
	if last < 1900*time.Millisecond || last > 2100*time.Millisecond {
		t.Fatalf("the last write waits until %s from the start, want 2s", last)
	}
	if got.Len() != 7*len(chunk) {
		t.Fatalf("wrote %d bytes, want %d", got.Len(), 7*len(chunk))
	}
}
