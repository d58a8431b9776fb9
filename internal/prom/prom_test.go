package prom

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestWriter(t *testing.T) {
	var w Writer
	w.Family("sidetail_emitted_lines_total", Counter, "Lines written to stdout.\nSecond line \\ here.")
	w.Int(3, "tag", "app")
	w.Int(0, "tag", `we"ird\`+"\n", "kind", "rename")
	w.Family("sidetail_lag_bytes", Gauge, "Bytes behind.")
	w.Sample(0.5)
	w.Sample(1e21)
	want := `# HELP sidetail_emitted_lines_total Lines written to stdout.\nSecond line \\ here.
# TYPE sidetail_emitted_lines_total counter
sidetail_emitted_lines_total{tag="app"} 3
sidetail_emitted_lines_total{tag="we\"ird\\\n",kind="rename"} 0
# HELP sidetail_lag_bytes Bytes behind.
# TYPE sidetail_lag_bytes gauge
sidetail_lag_bytes 0.5
sidetail_lag_bytes 1e+21
`
	if got := string(w.Bytes()); got != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", got, want)
	}
}

// unescape reverses the label value escaping, as Prometheus's parser does.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			if s[i] == 'n' {
				b.WriteByte('\n')
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FuzzLabelValue checks that any label value stays on its line, inside its quotes,
// valid UTF-8, and reads back as it was (invalid bytes as U+FFFD).
func FuzzLabelValue(f *testing.F) {
	for _, s := range []string{"", "app", `a"b`, `a\b`, "a\nb", "\xff\\\"", `\n`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var w Writer
		w.Family("m", Gauge, v)
		w.Int(1, "path", v)
		lines := strings.Split(strings.TrimSuffix(string(w.Bytes()), "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("%q: %d lines, want 3: %q", v, len(lines), w.Bytes())
		}
		sample := lines[2]
		if !utf8.ValidString(sample) {
			t.Fatalf("%q: invalid UTF-8 in %q", v, sample)
		}
		quoted, ok := strings.CutPrefix(sample, `m{path="`)
		quoted, ok2 := strings.CutSuffix(quoted, `"} 1`)
		if !ok || !ok2 {
			t.Fatalf("%q: sample %q", v, sample)
		}
		for i := 0; i < len(quoted); i++ {
			if quoted[i] == '\\' {
				i++
			} else if quoted[i] == '"' {
				t.Fatalf("%q: unescaped quote in %q", v, quoted)
			}
		}
		if got, want := unescape(quoted), strings.ToValidUTF8(v, "\uFFFD"); got != want {
			t.Fatalf("%q: reads back as %q, want %q", v, got, want)
		}
	})
}

func TestEach(t *testing.T) {
	var w Writer
	values := []float64{3, 0.5}
	w.Each("sidetail_lag_bytes", Gauge, "Bytes behind.", "tag", []string{"app", "db"}, func(i int) float64 { return values[i] })
	want := `# HELP sidetail_lag_bytes Bytes behind.
# TYPE sidetail_lag_bytes gauge
sidetail_lag_bytes{tag="app"} 3
sidetail_lag_bytes{tag="db"} 0.5
`
	if got := string(w.Bytes()); got != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", got, want)
	}
}
