package tailer

import (
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// records feeds input through a LineReader and a recorder as a follower does, reading
// chunk bytes at a time, and returns the records with whether each ends mid-line.
func records(t *testing.T, input, pattern string, maxRecord, chunk int) (recs []string, cuts []bool) {
	t.Helper()
	r := &recorder{start: regexp.MustCompile(pattern), max: maxRecord}
	flush := func() error {
		rec, cut := r.take()
		if len(rec) > 0 {
			recs, cuts = append(recs, string(rec)), append(cuts, cut)
		}
		return nil
	}
	lr := NewLineReader(maxRecord)
	src := &chunkReader{s: input, n: chunk}
	for {
		n, err := lr.Fill(src)
		for n > 0 {
			seg, partial, ok := lr.Next()
			if !ok {
				break
			}
			r.add(seg, partial, time.Time{}, flush)
		}
		if err == io.EOF {
			break
		}
	}
	r.add(lr.Held(), false, time.Time{}, flush)
	flush()
	return recs, cuts
}

func TestRecorder(t *testing.T) {
	const start = `^\d`
	for _, c := range []struct {
		name, input string
		max         int
		want        []string
	}{
		{"trace", "1 a\n  at x\n  at y\n2 b\n3 c\n  at z\n", 100,
			[]string{"1 a\n  at x\n  at y\n", "2 b\n", "3 c\n  at z\n"}},
		{"lines before the first start form a record", "  at x\n1 a\n", 100,
			[]string{"  at x\n", "1 a\n"}},
		{"partial last line ends the last record", "1 a\n  at x", 100,
			[]string{"1 a\n  at x"}},
		{"max record", "1 a\nbb\ncc\ndd\n", 5,
			[]string{"1 a\n", "bb\ncc\n", "dd\n"}},
		{"a cut line is not a start", "1 aaaaaaa\n2 b\n", 4,
			[]string{"1 aa", "aaaa", "a\n", "2 b\n"}},
		{"empty lines join", "1 a\n\n\n2 b\n", 100,
			[]string{"1 a\n\n\n", "2 b\n"}},
	} {
		for chunk := 1; chunk <= len(c.input); chunk++ {
			got, _ := records(t, c.input, start, c.max, chunk)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s, chunk %d: %q, want %q", c.name, chunk, got, c.want)
				break
			}
		}
	}
}

// FuzzRecorder: records add up to the input, stay within the maximum, and encode as
// valid JSON.
func FuzzRecorder(f *testing.F) {
	f.Add("1 a\n  at x\n2 b\n", `^\d`, uint8(8), uint8(3))
	f.Add("x\n\xff\n1\n", `^1$`, uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, input, pattern string, max, chunk uint8) {
		if _, err := regexp.Compile(pattern); err != nil {
			t.Skip()
		}
		recs, cuts := records(t, input, pattern, int(max)+1, int(chunk)+1)
		if got := strings.Join(recs, ""); got != input {
			t.Fatalf("records %q do not add up to %q", recs, input)
		}
		e := newEncoder(Format{JSON: true}, "t", "f")
		for i, rec := range recs {
			if len(strings.TrimSuffix(rec, "\n")) > int(max)+1 {
				t.Fatalf("record %q longer than %d", rec, int(max)+1)
			}
			var obj struct{ Message string }
			out := e.appendRecord(nil, []byte(rec), cuts[i], time.Time{})
			if err := json.Unmarshal(out, &obj); err != nil || strings.Count(string(out), "\n") != 1 {
				t.Fatalf("record %q: invalid JSON object %q: %v", rec, out, err)
			}
		}
	})
}
