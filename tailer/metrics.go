package tailer

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sidetail/sidetail/internal/prom"
)

// Metrics counts what the followers do, per tag, and answers the probes: whether
// every follower keeps up (Health) and whether all have started (Ready).
//
// Followers publish plain numbers (an atomic add per read or write batch, never
// per line); what costs a system call (file sizes, the lag, the disk held by
// deleted files) is computed when Prometheus or a probe asks. A nil *Metrics, and
// the nil *FileMetrics it hands out, do nothing: followers call them
// unconditionally, and without --metrics-addr they cost a nil check.
type Metrics struct {
	stallAfter time.Duration

	mu    sync.Mutex
	tags  map[string]*tagCounters // counters outlive the files of a tag
	files map[*FileMetrics]struct{}
	// Readiness: what was registered before Started must each be ready once.
	started bool
	waiting int
	isReady bool // latched: a new glob match does not make us unready again
}

// NewMetrics returns the metrics of one run. A follower with unread data that
// makes no progress for stallAfter, while stdout is not blocked, is stuck.
func NewMetrics(stallAfter time.Duration) *Metrics {
	return &Metrics{stallAfter: stallAfter, tags: map[string]*tagCounters{}, files: map[*FileMetrics]struct{}{}}
}

// Rotation is a kind of rotation a follower saw.
type Rotation int

// The rotation kinds, the values of the kind label.
const (
	RotationRename   Rotation = iota // another file took the path
	RotationTruncate                 // the file got smaller, or was refilled past our offset
	RotationDelete                   // the path names nothing
	RotationSymlink                  // the path is a symbolic link that points elsewhere now
	numRotations
)

var rotationNames = [numRotations]string{"rename", "truncate", "delete", "symlink"}

// tagCounters are the counters of one tag, shared by its files.
type tagCounters struct {
	n         [numCounters]atomic.Int64
	rotations [numRotations]atomic.Int64
}

// counter is one of a tag's counters; counterFamilies says how each is exposed.
type counter int

const (
	cEmittedLines counter = iota
	cEmittedBytes
	cReadBytes
	cOpened
	cAbandoned
	cLongLinesCut
	cRecords
	cRecordsCut
	cSaves
	cSaveErrors
	cLastSave   // Unix nanoseconds
	cOutputWait // nanoseconds
	numCounters
)

// FileMetrics is what one follower publishes. Its methods are called from the
// follower's goroutine (Pin and Unpin also from its pinning goroutine).
type FileMetrics struct {
	m         *Metrics
	c         *tagCounters
	tag, path string

	file                atomic.Pointer[os.File] // the file being read
	readOff, emittedOff atomic.Int64            // offsets in it
	progress            atomic.Int64            // bytes read and emitted, ever: moves while we work

	pinMu  sync.Mutex
	pinned []pinnedFile

	ready, expected bool // guarded by m.mu
	// Liveness, guarded by m.mu: the progress seen by the last probe, and since
	// when probes have seen unread data and no progress.
	seenProgress int64
	stalledSince time.Time
}

type pinnedFile struct {
	file  *os.File
	start int64
}

// File returns the metrics of one followed file. Files registered before Started
// must each be Ready for Ready to report true. Close it when the follower ends.
func (m *Metrics) File(tag, path string) *FileMetrics {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	f := &FileMetrics{m: m, c: m.counters(tag), tag: tag, path: path, expected: !m.started}
	if f.expected {
		m.waiting++
	}
	m.files[f] = struct{}{}
	return f
}

// counters returns the counters of tag, creating them; m.mu is held.
func (m *Metrics) counters(tag string) *tagCounters {
	c := m.tags[tag]
	if c == nil {
		c = &tagCounters{}
		m.tags[tag] = c
	}
	return c
}

// Expect registers something else readiness waits for (a glob's first scan) and
// returns the call that says it is done.
func (m *Metrics) Expect() (done func()) {
	if m == nil {
		return func() {}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return func() {}
	}
	m.waiting++
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.waiting--
		})
	}
}

// Started says every source has been registered (File or Expect).
func (m *Metrics) Started() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started = true
}

// Ready reports whether every source registered before Started was opened, is
// being waited for, or (a glob) was scanned; once true it stays true.
func (m *Metrics) Ready() bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started && m.waiting == 0 {
		m.isReady = true
	}
	return m.isReady
}

// Ready says the file was opened (its checkpoint, if any, looked at) or is being
// waited for.
func (f *FileMetrics) Ready() {
	if f == nil {
		return
	}
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	f.markReady()
}

// markReady counts f as ready once; m.mu is held.
func (f *FileMetrics) markReady() {
	if f.expected && !f.ready {
		f.m.waiting--
	}
	f.ready = true
}

// Close says the follower ended: its file no longer counts for size, lag and
// liveness; its tag's counters stay.
func (f *FileMetrics) Close() {
	if f == nil {
		return
	}
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	f.markReady() // a glob's file gone before it was opened must not hold readiness
	delete(f.m.files, f)
	f.file.Store(nil)
	f.pinMu.Lock()
	f.pinned = nil
	f.pinMu.Unlock()
}

// Opened counts a file opened for reading.
func (f *FileMetrics) Opened() {
	if f != nil {
		f.c.n[cOpened].Add(1)
	}
}

// Reading says file is the one being read, at read offset off, with everything
// below emitted written out. Call it whenever the offsets jump: a new file, a
// truncation (0, 0), a cut that moved them down.
func (f *FileMetrics) Reading(file *os.File, off, emitted int64) {
	if f == nil {
		return
	}
	f.readOff.Store(off)
	f.emittedOff.Store(emitted)
	f.file.Store(file)
}

// Read counts n bytes read from the file.
func (f *FileMetrics) Read(n int) {
	if f == nil {
		return
	}
	f.c.n[cReadBytes].Add(int64(n))
	f.readOff.Add(int64(n))
	f.progress.Add(int64(n))
}

// Emitted counts the bytes of the file written out in one write, p, and the lines
// that end in it.
func (f *FileMetrics) Emitted(p []byte) {
	if f == nil {
		return
	}
	f.emitted(p, bytes.Count(p, []byte{'\n'}))
}

// EmittedLast is Emitted for a write that ends a line even without a newline:
// the partial last line written at rotation or shutdown, a whole multiline record.
func (f *FileMetrics) EmittedLast(p []byte) {
	if f == nil || len(p) == 0 {
		return
	}
	lines := bytes.Count(p, []byte{'\n'})
	if p[len(p)-1] != '\n' {
		lines++
	}
	f.emitted(p, lines)
}

func (f *FileMetrics) emitted(p []byte, lines int) {
	f.c.n[cEmittedLines].Add(int64(lines))
	f.c.n[cEmittedBytes].Add(int64(len(p)))
	f.emittedOff.Add(int64(len(p)))
	f.progress.Add(int64(len(p)))
}

// Rotation counts a rotation of the path.
func (f *FileMetrics) Rotation(kind Rotation) {
	if f != nil && kind >= 0 && kind < numRotations {
		f.c.rotations[kind].Add(1)
	}
}

// Replaced counts the rotation that made the follower leave old, read to its
// end, for the next file at the path: deleted (no name left), a symbolic link
// pointing elsewhere, or renamed. Call it before old is closed. It looks at the
// file when the follower leaves it, not when the path first changed: a rename
// followed by a create shows the path missing for a moment.
func (f *FileMetrics) Replaced(old *os.File) {
	if f == nil {
		return
	}
	kind := RotationRename
	if info, err := old.Stat(); err == nil && nlink(info) == 0 {
		kind = RotationDelete
	} else if info, err := os.Lstat(f.path); err == nil && info.Mode()&os.ModeSymlink != 0 {
		kind = RotationSymlink
	}
	f.Rotation(kind)
}

// Pin says file took the path while another was being read, and will be read
// from start.
func (f *FileMetrics) Pin(file *os.File, start int64) {
	if f == nil {
		return
	}
	f.pinMu.Lock()
	defer f.pinMu.Unlock()
	f.pinned = append(f.pinned, pinnedFile{file, start})
}

// Unpin says file is no longer waiting: it is being read now, or was let go.
func (f *FileMetrics) Unpin(file *os.File) {
	if f == nil {
		return
	}
	f.pinMu.Lock()
	defer f.pinMu.Unlock()
	f.pinned = slices.DeleteFunc(f.pinned, func(p pinnedFile) bool { return p.file == file })
}

// Abandoned counts bytes given up unread: a pinned file given up past
// --max-pinned-bytes. Any other policy that gives bytes up must count them here.
func (f *FileMetrics) Abandoned(n int64) {
	if f != nil {
		f.c.n[cAbandoned].Add(n)
	}
}

// LongLineCut counts a line longer than --max-line cut into pieces.
func (f *FileMetrics) LongLineCut() {
	if f != nil {
		f.c.n[cLongLinesCut].Add(1)
	}
}

// Record counts a multiline record written; cut: it ended at --max-record.
func (f *FileMetrics) Record(cut bool) {
	if f == nil {
		return
	}
	f.c.n[cRecords].Add(1)
	if cut {
		f.c.n[cRecordsCut].Add(1)
	}
}

// CheckpointSaved counts a checkpoint save and its outcome.
func (f *FileMetrics) CheckpointSaved(err error) {
	if f == nil {
		return
	}
	if err != nil {
		f.c.n[cSaveErrors].Add(1)
		return
	}
	f.c.n[cSaves].Add(1)
	f.c.n[cLastSave].Store(time.Now().UnixNano())
}

// Clock returns the time now, for OutputWait: the zero time, without reading
// the clock, when metrics are off.
func (f *FileMetrics) Clock() time.Time {
	if f == nil {
		return time.Time{}
	}
	return time.Now()
}

// OutputWait counts the time since start, spent writing a batch of lines (a
// read's worth, a record) to the output: waiting for the lock (other files'
// writes), for --max-rate and for stdout itself, and, with a prefix or JSON,
// encoding the batch. Callers time batches, not lines or writes: a clock read
// costs more than a batch's other counters.
func (f *FileMetrics) OutputWait(start time.Time) {
	if f != nil {
		f.c.n[cOutputWait].Add(int64(time.Since(start)))
	}
}

// fileState is what a scrape or probe finds of one follower's files.
type fileState struct {
	size, lag, unread, deletedHeld int64
	pinned                         int
	reading                        bool
}

// state stats the files f holds: the one being read and those pinned.
func (f *FileMetrics) state() fileState {
	var s fileState
	if file := f.file.Load(); file != nil {
		if info, err := file.Stat(); err == nil {
			s.reading = true
			s.size = info.Size()
			s.lag = max(0, s.size-f.emittedOff.Load())
			s.unread = max(0, s.size-f.readOff.Load())
			s.deletedHeld += deletedBytes(info)
		}
	}
	f.pinMu.Lock()
	pinned := slices.Clone(f.pinned)
	f.pinMu.Unlock()
	s.pinned = len(pinned)
	for _, p := range pinned {
		info, err := p.file.Stat()
		if err != nil {
			continue
		}
		rest := max(0, info.Size()-p.start)
		s.lag += rest
		s.unread += rest
		s.deletedHeld += deletedBytes(info)
	}
	return s
}

// deletedBytes is the disk a deleted file keeps in use while we hold it open.
func deletedBytes(info os.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink == 0 {
		return st.Blocks * 512
	}
	return 0
}

// nlink is the number of names the file has; 1 when unknown.
func nlink(info os.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// Health reports the followers that are stuck: unread data, and no progress for
// the stall time across probes, while stdout was not blocked (then the output is
// what holds them). Each probe compares with the last, so it is evaluated here,
// at request time, not by the followers.
func (m *Metrics) Health(now time.Time, outputBlocked bool) (stuck []string) {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.sortedFiles() {
		s := f.state()
		p := f.progress.Load()
		if outputBlocked || s.unread == 0 || p != f.seenProgress {
			f.seenProgress, f.stalledSince = p, time.Time{}
			continue
		}
		if f.stalledSince.IsZero() {
			f.stalledSince = now
		}
		if d := now.Sub(f.stalledSince); d >= m.stallAfter {
			stuck = append(stuck, fmt.Sprintf("follower of %s (tag %s) stuck: %d bytes unread, no progress for %s",
				f.path, f.tag, s.unread, d.Round(time.Second)))
		}
	}
	return stuck
}

// sortedFiles returns the live files by tag and path; m.mu is held.
func (m *Metrics) sortedFiles() []*FileMetrics {
	files := make([]*FileMetrics, 0, len(m.files))
	for f := range m.files {
		files = append(files, f)
	}
	slices.SortFunc(files, func(a, b *FileMetrics) int {
		return cmp.Or(cmp.Compare(a.tag, b.tag), cmp.Compare(a.path, b.path))
	})
	return files
}

// snapshot returns the tags in order, their counters, and the state of their files
// measured now (sizes, lag, pinned and deleted-but-held bytes).
func (m *Metrics) snapshot() (tags []string, counters []*tagCounters, states []tagState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tags = slices.Sorted(maps.Keys(m.tags))
	counters = make([]*tagCounters, len(tags))
	for i, t := range tags {
		counters[i] = m.tags[t]
	}
	states = make([]tagState, len(tags))
	for _, f := range m.sortedFiles() {
		i, _ := slices.BinarySearch(tags, f.tag) // a file's tag has counters
		states[i].add(f.state())
	}
	return tags, counters, states
}

// tagState sums what the files of one tag hold now.
type tagState struct {
	followed, size, lag, pinned, deletedHeld int64
}

func (ts *tagState) add(s fileState) {
	ts.followed++
	ts.size += s.size
	ts.lag += s.lag
	ts.pinned += int64(s.pinned)
	ts.deletedHeld += s.deletedHeld
}

// Write appends the followers' metric families to w.
func (m *Metrics) Write(w *prom.Writer) {
	if m == nil {
		return
	}
	tags, counters, states := m.snapshot()
	writeCounters(w, tags, counters)
	w.Family("sidetail_rotations_total", prom.Counter, "Rotations seen, by kind.")
	for i, t := range tags {
		for k, name := range rotationNames {
			w.Int(counters[i].rotations[k].Load(), "tag", t, "kind", name)
		}
	}
	for _, f := range stateFamilies {
		w.Each(f.name, prom.Gauge, f.help, "tag", tags, func(i int) float64 { return float64(f.value(&states[i])) })
	}
}

// counterFamilies exposes the counters, a line each in their order: name, type
// and help text. A name in seconds is exposed from nanoseconds.
const counterFamilies = `sidetail_emitted_lines_total counter Lines of the tag's files written to stdout (a line cut into pieces counts once).
sidetail_emitted_bytes_total counter Bytes of the tag's files written to stdout, before formatting.
sidetail_read_bytes_total counter Bytes read from the tag's files.
sidetail_files_opened_total counter Files opened for reading (each file that took the path).
sidetail_abandoned_bytes_total counter Bytes given up without being written to stdout: only past --max-pinned-bytes (off by default), so 0 unless that is set.
sidetail_long_lines_cut_total counter Lines longer than --max-line, cut into pieces.
sidetail_records_total counter Multiline records written.
sidetail_records_cut_total counter Multiline records ended at --max-record.
sidetail_checkpoint_saves_total counter Checkpoints saved.
sidetail_checkpoint_errors_total counter Checkpoints that could not be saved.
sidetail_checkpoint_last_save_timestamp_seconds gauge When a checkpoint was last saved (Unix time; 0: never); its age is time() minus this.
sidetail_output_wait_seconds_total counter Time the tag's followers spent writing to stdout, timed per batch (a read's worth of lines, a multiline record), not per line: waiting for other files' writes, for --max-rate and for stdout's reader (with a prefix or JSON, encoding the batch too).
`

// writeCounters writes a family per counter.
func writeCounters(w *prom.Writer, tags []string, counters []*tagCounters) {
	c := counter(0)
	for line := range strings.Lines(counterFamilies) {
		name, rest, _ := strings.Cut(line, " ")
		typ, help, _ := strings.Cut(strings.TrimSuffix(rest, "\n"), " ")
		unit := 1.0
		if strings.HasSuffix(strings.TrimSuffix(name, "_total"), "_seconds") {
			unit = 1e9
		}
		w.Each(name, prom.Type(typ), help, "tag", tags, func(i int) float64 { return float64(counters[i].n[c].Load()) / unit })
		c++
	}
}

// stateFamilies are the gauges of what the tags' files hold now.
var stateFamilies = []struct {
	name, help string
	value      func(*tagState) int64
}{
	{"sidetail_file_size_bytes", "Size of the files being read.", func(s *tagState) int64 { return s.size }},
	{"sidetail_lag_bytes", "Bytes in the tag's files not written to stdout yet: size minus the emitted offset of the file being read, plus all of the pinned files after it.", func(s *tagState) int64 { return s.lag }},
	{"sidetail_files_followed", "Files being followed.", func(s *tagState) int64 { return s.followed }},
	{"sidetail_files_pinned", "Files held open that took the path while an older one was still being read.", func(s *tagState) int64 { return s.pinned }},
	{"sidetail_pinned_deleted_bytes", "Disk space held by deleted files we still hold open to read them.", func(s *tagState) int64 { return s.deletedHeld }},
}
