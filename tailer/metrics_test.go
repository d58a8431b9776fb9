package tailer

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/prom"
)

// sample returns the value of the sample of name whose labels are labels, from
// the exposition of m.
func sample(t *testing.T, m *Metrics, name, labels string) float64 {
	t.Helper()
	var w prom.Writer
	m.Write(&w)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+"{"+labels+"}") + ` (\S+)$`)
	got := re.FindSubmatch(w.Bytes())
	if got == nil {
		t.Fatalf("no sample %s{%s} in:\n%s", name, labels, w.Bytes())
	}
	v, err := strconv.ParseFloat(string(got[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// logFile creates a file holding content and opens it for reading.
func logFile(t *testing.T, name, content string) *os.File {
	t.Helper()
	return createOpen(t, filepath.Join(t.TempDir(), name), content)
}

// createOpen writes content to path, replacing what it held, and opens it for
// reading until the test ends.
func createOpen(t *testing.T, path, content string) *os.File {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestNilMetricsDoNothing(t *testing.T) {
	var m *Metrics
	f := m.File("app", "/var/log/app.log")
	if f != nil {
		t.Fatal("nil Metrics handed out a FileMetrics")
	}
	// Every call a follower makes must be safe on nil.
	f.Opened()
	f.Reading(nil, 0, 0)
	f.Read(10)
	f.Emitted([]byte("a\n"))
	f.EmittedLast([]byte("a"))
	f.Rotation(RotationRename)
	f.Pin(nil, 0)
	f.Unpin(nil)
	f.Abandoned(1)
	f.LongLineCut()
	f.Record(true)
	f.CheckpointSaved(nil)
	f.OutputWait(f.Clock())
	f.Ready()
	f.Close()
	m.Expect()()
	m.Started()
	var w prom.Writer
	m.Write(&w)
	if m.Ready() || m.Health(time.Now(), false) != nil || len(w.Bytes()) != 0 {
		t.Error("nil Metrics reported something")
	}
}

func TestLagShrinksToZero(t *testing.T) {
	m := NewMetrics(time.Minute)
	f := m.File("app", "app.log")
	content := "one\ntwo\nthree\n"
	file := logFile(t, "app.log", content)
	f.Opened()
	f.Reading(file, 0, 0)
	n := int64(len(content))
	if got := sample(t, m, "sidetail_lag_bytes", `tag="app"`); got != float64(n) {
		t.Errorf("lag before reading = %v, want %d", got, n)
	}
	f.Read(len(content))
	// Read but held (a multiline record): still lag.
	if got := sample(t, m, "sidetail_lag_bytes", `tag="app"`); got != float64(n) {
		t.Errorf("lag after reading, before writing = %v, want %d", got, n)
	}
	f.Emitted([]byte("one\ntwo\n"))
	f.EmittedLast([]byte("three\n")[:5]) // as if the newline had not come
	f.Emitted([]byte("\n"))
	f.EmittedLast(nil)
	for name, want := range map[string]float64{
		"sidetail_lag_bytes":           0,
		"sidetail_file_size_bytes":     float64(n),
		"sidetail_read_bytes_total":    float64(n),
		"sidetail_emitted_bytes_total": float64(n),
		"sidetail_emitted_lines_total": 4, // the unterminated "three" counted, then its newline
		"sidetail_files_opened_total":  1,
		"sidetail_files_followed":      1,
	} {
		if got := sample(t, m, name, `tag="app"`); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// The file grows: lag again, until written.
	if err := os.WriteFile(file.Name(), []byte(content+"four\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := sample(t, m, "sidetail_lag_bytes", `tag="app"`); got != 5 {
		t.Errorf("lag after the file grew = %v, want 5", got)
	}
	// A cut moved the offsets down by what it removed.
	f.Reading(file, 5, 5)
	if got := sample(t, m, "sidetail_lag_bytes", `tag="app"`); got != float64(n) {
		t.Errorf("lag after offsets moved to 5 = %v, want %d", got, n)
	}
	f.Close()
	if got := sample(t, m, "sidetail_lag_bytes", `tag="app"`); got != 0 {
		t.Errorf("lag of a closed follower = %v, want 0", got)
	}
	if got := sample(t, m, "sidetail_emitted_lines_total", `tag="app"`); got != 4 {
		t.Errorf("a closed follower's lines = %v, want 4: counters outlive files", got)
	}
}

func TestPinnedFiles(t *testing.T) {
	m := NewMetrics(time.Minute)
	f := m.File("app", "app.log")
	cur := logFile(t, "app.log.1", "old\n")
	f.Reading(cur, 4, 4)
	next := logFile(t, "app.log", strings.Repeat("x", 9000)+"\n")
	f.Rotation(RotationRename)
	f.Pin(next, 1)
	if got := sample(t, m, "sidetail_lag_bytes", `tag="app"`); got != 9000 {
		t.Errorf("lag with a pinned file = %v, want 9000", got)
	}
	if got := sample(t, m, "sidetail_files_pinned", `tag="app"`); got != 1 {
		t.Errorf("pinned = %v, want 1", got)
	}
	if got := sample(t, m, "sidetail_pinned_deleted_bytes", `tag="app"`); got != 0 {
		t.Errorf("deleted bytes held before delete = %v, want 0", got)
	}
	if err := os.Remove(next.Name()); err != nil {
		t.Fatal(err)
	}
	if got := sample(t, m, "sidetail_pinned_deleted_bytes", `tag="app"`); got < 9001 {
		t.Errorf("deleted bytes held = %v, want the file's blocks (at least 9001)", got)
	}
	if got := sample(t, m, "sidetail_rotations_total", `tag="app",kind="rename"`); got != 1 {
		t.Errorf("rename rotations = %v, want 1", got)
	}
	if got := sample(t, m, "sidetail_rotations_total", `tag="app",kind="truncate"`); got != 0 {
		t.Errorf("truncate rotations = %v, want 0", got)
	}
	f.Unpin(next)
	f.Reading(next, 1, 1)
	if got := sample(t, m, "sidetail_files_pinned", `tag="app"`); got != 0 {
		t.Errorf("pinned after unpin = %v, want 0", got)
	}
}

func TestCounters(t *testing.T) {
	m := NewMetrics(time.Minute)
	a := m.File("app", "a.log")
	b := m.File("app", "b.log") // two files of one tag add up
	a.LongLineCut()
	b.LongLineCut()
	a.Record(false)
	a.Record(true)
	before := time.Now()
	a.CheckpointSaved(nil)
	a.CheckpointSaved(errors.New("disk full"))
	a.Abandoned(0)
	b.Rotation(RotationTruncate)
	b.Rotation(RotationDelete)
	b.Rotation(RotationSymlink)
	for name, want := range map[string]float64{
		"sidetail_long_lines_cut_total":    2,
		"sidetail_records_total":           2,
		"sidetail_records_cut_total":       1,
		"sidetail_checkpoint_saves_total":  1,
		"sidetail_checkpoint_errors_total": 1,
		"sidetail_abandoned_bytes_total":   0,
		"sidetail_files_followed":          2,
	} {
		if got := sample(t, m, name, `tag="app"`); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for _, kind := range []string{"truncate", "delete", "symlink"} {
		if got := sample(t, m, "sidetail_rotations_total", `tag="app",kind="`+kind+`"`); got != 1 {
			t.Errorf("%s rotations = %v, want 1", kind, got)
		}
	}
	saved := sample(t, m, "sidetail_checkpoint_last_save_timestamp_seconds", `tag="app"`)
	if saved < float64(before.Unix()) || saved > float64(time.Now().Unix()+1) {
		t.Errorf("last save at %v, want between %v and now", saved, before.Unix())
	}
}

func TestReadiness(t *testing.T) {
	m := NewMetrics(time.Minute)
	a := m.File("a", "a.log")
	b := m.File("b", "b.log")
	globScanned := m.Expect()
	m.Started()
	if m.Ready() {
		t.Fatal("ready before any file was opened")
	}
	a.Ready()
	b.Ready()
	if m.Ready() {
		t.Fatal("ready before the glob was scanned")
	}
	globScanned()
	globScanned() // twice is once
	if !m.Ready() {
		t.Fatal("not ready once every source started")
	}
	m.File("c", "c.log") // a glob's new match, not opened yet
	if !m.Ready() {
		t.Error("a new match made a started run unready")
	}

	// A globbed file gone before it was opened does not hold readiness.
	m = NewMetrics(time.Minute)
	m.File("a", "a.log").Close()
	m.Started()
	if !m.Ready() {
		t.Error("a closed file held readiness")
	}
}

func TestHealth(t *testing.T) {
	m := NewMetrics(time.Minute)
	f := m.File("app", "app.log")
	file := logFile(t, "app.log", "one\ntwo\n")
	f.Reading(file, 0, 0)
	t0 := time.Now()
	if stuck := m.Health(t0, false); stuck != nil {
		t.Fatalf("stuck at the first probe: %v", stuck)
	}
	if stuck := m.Health(t0.Add(59*time.Second), false); stuck != nil {
		t.Fatalf("stuck before the stall time: %v", stuck)
	}
	stuck := m.Health(t0.Add(time.Minute), false)
	if len(stuck) != 1 || !strings.Contains(stuck[0], "app.log") || !strings.Contains(stuck[0], "8 bytes unread") {
		t.Fatalf("after a minute without progress: %q, want one stuck follower of app.log with 8 bytes unread", stuck)
	}
	// Stdout blocked: the output holds the follower, not a bug in it.
	if stuck := m.Health(t0.Add(2*time.Minute), true); stuck != nil {
		t.Errorf("stuck while stdout is blocked: %v", stuck)
	}
	if stuck := m.Health(t0.Add(3*time.Minute), false); stuck != nil {
		t.Errorf("stuck right after stdout was unblocked: %v", stuck)
	}
	if stuck := m.Health(t0.Add(4*time.Minute), false); stuck == nil {
		t.Error("not stuck a minute after stdout was unblocked")
	}
	// Progress brings it back.
	f.Read(8)
	if stuck := m.Health(t0.Add(5*time.Minute), false); stuck != nil {
		t.Errorf("stuck after reading: %v", stuck)
	}
	// Caught up and idle for long: not stuck, and new data seen at the next probe
	// starts a new stall time instead of counting the idle time.
	if stuck := m.Health(t0.Add(time.Hour), false); stuck != nil {
		t.Errorf("stuck while caught up: %v", stuck)
	}
	if err := os.WriteFile(file.Name(), []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if stuck := m.Health(t0.Add(time.Hour+time.Second), false); stuck != nil {
		t.Errorf("stuck as soon as new data came after an idle hour: %v", stuck)
	}
}

// BenchmarkFileMetrics is what a follower adds per 16 KiB batch of 100-byte lines,
// its write timed from the clock reading the emitter takes anyway.
func BenchmarkFileMetrics(b *testing.B) {
	batch := []byte(strings.Repeat(strings.Repeat("x", 99)+"\n", 164))
	read := time.Now()
	for _, m := range []*Metrics{nil, NewMetrics(time.Minute)} {
		b.Run(map[bool]string{true: "off", false: "on"}[m == nil], func(b *testing.B) {
			f := m.File("app", "app.log")
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				f.Read(len(batch))
				f.Emitted(batch)
				f.OutputWait(read)
			}
		})
	}
}

func TestEmittedLastCountsWholeRecords(t *testing.T) {
	m := NewMetrics(time.Minute)
	f := m.File("app", "app.log")
	f.EmittedLast([]byte("Exception\n\tat a\n\tat b\n")) // a record of whole lines
	f.EmittedLast([]byte("tail without newline"))
	if got := sample(t, m, "sidetail_emitted_lines_total", `tag="app"`); got != 4 {
		t.Errorf("lines = %v, want 4", got)
	}
}

func TestReplacedKinds(t *testing.T) {
	m := NewMetrics(time.Minute)
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	f := m.File("app", path)
	open := func() *os.File { return createOpen(t, path, "x\n") }
	old := open()
	os.Rename(path, path+".1")
	open()
	f.Replaced(old) // renamed away, a new file created
	old = open()
	os.Remove(path)
	open()
	f.Replaced(old) // deleted and recreated
	target := filepath.Join(dir, "v2.log")
	os.WriteFile(target, nil, 0o644)
	old = open()
	os.Rename(path, filepath.Join(dir, "v1.log"))
	os.Symlink(target, path)
	f.Replaced(old) // the path became a link to another file
	for _, kind := range []string{"rename", "delete", "symlink"} {
		if got := sample(t, m, "sidetail_rotations_total", `tag="app",kind="`+kind+`"`); got != 1 {
			t.Errorf("%s rotations = %v, want 1", kind, got)
		}
	}
}

// gate is an output whose first write waits until the test opens it; it notes
// when that write began waiting and when it was let through.
type gate struct {
	entered chan time.Time
	open    chan struct{}
	opened  time.Time
	once    sync.Once
}

func (g *gate) Write(p []byte) (int, error) {
	g.once.Do(func() {
		g.entered <- time.Now()
		<-g.open
		g.opened = time.Now()
	})
	return len(p), nil
}

// The time a follower's write waits for the output counts in its tag's
// output wait, whichever way its lines go out: runs of raw lines, encoded
// (JSON), or multiline records.
func TestOutputWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte(strings.Repeat("a line of the log\n", 10_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"raw":       {},
		"json":      {Format: Format{JSON: true}},
		"multiline": {Multiline: &Multiline{Start: map[string]*regexp.Regexp{"": regexp.MustCompile(`^a`)}, Timeout: time.Minute, MaxRecord: 1 << 20}},
	} {
		t.Run(name, func(t *testing.T) {
			m := NewMetrics(time.Minute)
			cfg.Metrics, cfg.MaxLine, cfg.PollInterval, cfg.Log = m, 1<<20, time.Hour, slog.New(slog.DiscardHandler)
			g := &gate{entered: make(chan time.Time), open: make(chan struct{})}
			// A done context: Run reads the file to its end, writes it and returns.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			began := time.Now()
			done := make(chan error, 1)
			go func() { done <- Run(ctx, cfg, []Source{{Tag: "app", Path: path}}, NewOutput(g)) }()
			entered := <-g.entered
			close(g.open)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			took := time.Since(began)
			blocked := g.opened.Sub(entered)
			got := sample(t, m, "sidetail_output_wait_seconds_total", `tag="app"`)
			if got < blocked.Seconds() || got > took.Seconds() {
				t.Errorf("output wait %vs; the first write alone waited %v, the whole run took %v", got, blocked, took)
			}
		})
	}
}

// Every counter has its family, a counter or a gauge.
func TestCounterFamilies(t *testing.T) {
	n := 0
	for line := range strings.Lines(counterFamilies) {
		name, rest, _ := strings.Cut(line, " ")
		typ, help, _ := strings.Cut(rest, " ")
		if (typ != string(prom.Counter) && typ != string(prom.Gauge)) || help == "" || strings.HasSuffix(name, "_total") != (typ == string(prom.Counter)) {
			t.Errorf("family line %q: want NAME counter|gauge HELP, counters ending in _total", line)
		}
		n++
	}
	if n != int(numCounters) {
		t.Errorf("%d families for %d counters", n, numCounters)
	}
}
