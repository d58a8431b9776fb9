package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// traceApp writes log records to a file the way an app does: a header line, and for
// errors a stack trace, one write per line.
type traceApp struct {
	tag, path string
	header    func(i int, level string) string
	trace     []string // from testdata
}

func newTraceApp(t *testing.T, dir, tag, sample string, header func(int, string) string) *traceApp {
	data, err := os.ReadFile(filepath.Join("testdata", sample))
	if err != nil {
		t.Fatal(err)
	}
	return &traceApp{tag: tag, path: filepath.Join(dir, tag+".log"), header: header,
		trace: strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")}
}

// record returns record i's lines: every third one is an error with a trace.
func (a *traceApp) record(i int) []string {
	if i%3 != 0 {
		return []string{a.header(i, "INFO")}
	}
	return append([]string{a.header(i, "ERROR")}, a.trace...)
}

func (a *traceApp) write(t *testing.T, records int) {
	f := openAppend(t, a.path)
	defer f.Close()
	for i := range records {
		for _, l := range a.record(i) {
			if _, err := f.WriteString(l + "\n"); err != nil {
				t.Error(err)
				return
			}
		}
	}
}

func javaApp(t *testing.T, dir string) *traceApp {
	return newTraceApp(t, dir, "shop", "java-trace.txt", func(i int, level string) string {
		return fmt.Sprintf("2026-11-23 10:%02d:%02d.%03d %5s 1 --- [nio-8080-exec-%d] c.e.shop.order.OrderController : order %d", i/60%60, i%60, i%1000, level, i%8, i)
	})
}

func pythonApp(t *testing.T, dir string) *traceApp {
	return newTraceApp(t, dir, "worker", "python-trace.txt", func(i int, level string) string {
		return fmt.Sprintf("[2026-11-23 10:%02d:%02d,%03d] %s in worker: job %d", i/60%60, i%60, i%1000, level, i)
	})
}

// Two apps write Java and Python traces at the same time, one write per line, each
// with its own start pattern. Raw output must keep each record's lines together;
// JSON output must hold one object per record. The last records end by the timeout.
func TestMultiline(t *testing.T) {
	const records = 300
	for _, format := range []string{"raw", "json"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			apps := []*traceApp{javaApp(t, dir), pythonApp(t, dir)}
			args := []string{"--format=" + format, "--multiline-timeout=200ms",
				`--multiline-start=shop=^\d{4}-\d{2}-\d{2} `, `--multiline-start=worker=^\[\d{4}-`,
				"shop=" + apps[0].path, "worker=" + apps[1].path}
			if format == "raw" {
				args = append(args, "--prefix=[{tag}] ")
			}
			p := start(t, args...)
			var wg sync.WaitGroup
			want := 0
			for _, a := range apps {
				wg.Go(func() { a.write(t, records) })
				for i := range records {
					if format == "json" {
						want++
					} else {
						want += len(a.record(i))
					}
				}
			}
			wg.Wait()
			p.waitLines(t, want)
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit %d", code)
			}
			if format == "json" {
				checkJSONRecords(t, p.output(), apps, records)
			} else {
				checkRawRecords(t, p.output(), apps, records)
			}
		})
	}
}

// A record half written in one file while another file's record completes: the
// half stays held, and its lines come out together once its rest arrives.
func TestMultilineHeldAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	shop, worker := javaApp(t, dir), pythonApp(t, dir)
	p := start(t, "--prefix=[{tag}] ", "--multiline-timeout=1m",
		`--multiline-start=shop=^\d{4}-`, `--multiline-start=worker=^\[`,
		"shop="+shop.path, "worker="+worker.path)
	appendLines := func(a *traceApp, lines ...string) {
		f := openAppend(t, a.path)
		defer f.Close()
		f.WriteString(strings.Join(lines, "\n") + "\n")
	}
	waitFor := func(line string) {
		waitUntil(t, func() bool {
			return slices.ContainsFunc(p.output(), func(l string) bool { return strings.Contains(l, line) })
		},
			func() string { return fmt.Sprintf("no %q in output %q", line, p.output()) })
	}
	first := shop.record(0)
	appendLines(shop, first[:6]...)
	appendLines(worker, append(worker.record(0), worker.record(1)...)...) // record 1 ends record 0
	waitFor(worker.trace[len(worker.trace)-1])
	appendLines(shop, append(first[6:], shop.record(1)...)...)
	waitFor(shop.trace[len(shop.trace)-1])
	if code := p.stop(t); code != 0 { // ends the records 1
		t.Fatalf("exit %d", code)
	}
	checkRawRecords(t, p.output(), []*traceApp{shop, worker}, 2)
}

// checkRawRecords walks the output: every line is the next expected line of its tag,
// and a record's continuation lines follow the line before them with nothing from
// the other file in between.
func checkRawRecords(t *testing.T, lines []string, apps []*traceApp, records int) {
	t.Helper()
	type cursor struct{ rec, line int }
	pos := map[string]*cursor{}
	byTag := map[string]*traceApp{}
	for _, a := range apps {
		pos[a.tag], byTag[a.tag] = &cursor{}, a
	}
	prevTag := ""
	for i, l := range lines {
		tag, text, ok := strings.Cut(strings.TrimPrefix(strings.TrimSuffix(l, "\n"), "["), "] ")
		a := byTag[tag]
		if !ok || a == nil {
			t.Fatalf("line %d: no known tag: %q", i, l)
		}
		c := pos[tag]
		if c.rec >= records {
			t.Fatalf("line %d: %s has no more records: %q", i, tag, l)
		}
		rec := a.record(c.rec)
		if text != rec[c.line] {
			t.Fatalf("line %d: %s record %d line %d: got %q, want %q", i, tag, c.rec, c.line, text, rec[c.line])
		}
		if c.line > 0 && prevTag != tag {
			t.Fatalf("line %d: %s record %d split: line %d comes after a line of %s", i, tag, c.rec, c.line, prevTag)
		}
		if c.line++; c.line == len(rec) {
			c.rec, c.line = c.rec+1, 0
		}
		prevTag = tag
	}
	for tag, c := range pos {
		if c.rec != records || c.line != 0 {
			t.Errorf("%s: stopped at record %d line %d, want %d records", tag, c.rec, c.line, records)
		}
	}
}

func checkJSONRecords(t *testing.T, lines []string, apps []*traceApp, records int) {
	t.Helper()
	next := map[string]int{}
	byTag := map[string]*traceApp{}
	for _, a := range apps {
		byTag[a.tag] = a
	}
	for i, l := range lines {
		var o struct{ Tag, Message string }
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("line %d: %v: %q", i, err, l)
		}
		a := byTag[o.Tag]
		if a == nil || next[o.Tag] >= records {
			t.Fatalf("line %d: unexpected record %q", i, l)
		}
		if want := strings.Join(a.record(next[o.Tag]), "\n"); o.Message != want {
			t.Fatalf("line %d: %s record %d:\n got %q\nwant %q", i, o.Tag, next[o.Tag], o.Message, want)
		}
		next[o.Tag]++
	}
	for _, a := range apps {
		if next[a.tag] != records {
			t.Errorf("%s: %d records, want %d", a.tag, next[a.tag], records)
		}
	}
}

// A record longer than --max-record is written in pieces of at most that size, none
// lost; one longer line is cut at the record size.
func TestMultilineMaxRecord(t *testing.T) {
	dir := t.TempDir()
	app := javaApp(t, dir)
	var want strings.Builder // a header, 39 traces (about 60 KiB) and a 10 kB line
	want.WriteString(app.header(0, "ERROR") + "\n")
	for range 39 {
		want.WriteString(strings.Join(app.trace, "\n") + "\n")
	}
	want.WriteString(strings.Repeat("x", 10_000) + "\n")
	os.WriteFile(app.path, []byte(want.String()+app.header(1, "INFO")+"\n"), 0o644)
	p := start(t, "--format=json", "--max-record=4Ki", `--multiline-start=^\d{4}-`, app.path)
	last := app.header(1, "INFO")
	waitUntil(t, func() bool {
		out := p.output()
		return len(out) > 0 && strings.Contains(out[len(out)-1], last)
	}, func() string { return "no last record; stderr: " + p.stderr.String() })
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var got strings.Builder
	out := p.output()
	for i, l := range out[:len(out)-1] {
		var o struct {
			Message string
			Partial bool
		}
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatal(err)
		}
		if n := len(o.Message); n > 4096 {
			t.Errorf("record %d: %d bytes, more than --max-record", i, n)
		}
		got.WriteString(o.Message)
		if !o.Partial {
			got.WriteString("\n")
		}
	}
	if got.String() != want.String() {
		t.Errorf("records do not add up to the input: %d bytes, want %d", got.Len(), want.Len())
	}
}
