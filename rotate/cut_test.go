package rotate

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/disk"
	"github.com/sidetail/sidetail/internal/fileid"
	"golang.org/x/sys/unix"
)

// maxPad makes line lengths vary, so cuts land at every position in a line.
const maxPad = 241

var pad = strings.Repeat("x", maxPad)

func line(i int) string { return fmt.Sprintf("%09d %s\n", i, pad[:i%maxPad]) }

// writeRate is the writer's pace in lines per second (13 MB/s): above the 50k
// asked for. Under the race detector gzip takes only 5 MB/s (14 at BestSpeed),
// less on a busy machine, so the test that compresses uses slowRate (1.3 MB/s),
// or it would measure gzip, not cuts.
const (
	writeRate = 100_000
	slowRate  = 10_000
)

// writer appends numbered lines to a file, one write each, until stopped.
type writer struct {
	lines, bytes atomic.Int64
	stop         chan struct{}
	done         chan error
}

// startWriter starts writing lines to path. Without O_APPEND it writes at its own
// offset, as an app that opened the file plainly does.
func startWriter(t *testing.T, path string, appendMode bool, rate int) *writer {
	t.Helper()
	flags := os.O_WRONLY | os.O_CREATE
	if appendMode {
		flags |= os.O_APPEND
	}
	file, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		defer file.Close()
		start := time.Now()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				w.done <- nil
				return
			default:
			}
			if ahead := time.Duration(i)*time.Second/time.Duration(rate) - time.Since(start); ahead > time.Millisecond {
				time.Sleep(ahead) // pacing, not synchronisation
			}
			l := line(i)
			if _, err := file.WriteString(l); err != nil {
				w.done <- err
				return
			}
			w.bytes.Add(int64(len(l)))
			w.lines.Add(1)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-w.stop:
		default:
			close(w.stop)
			<-w.done
		}
	})
	return w
}

func (w *writer) finish(t *testing.T) int {
	t.Helper()
	close(w.stop)
	if err := <-w.done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	return int(w.lines.Load())
}

// rotateWhileWriting checks the file every few milliseconds while a writer
// appends, until rotations archives were made, checking the disk usage before
// each check: at most MaxSize plus what was written since the previous check
// began (one check interval of growth, the cut's own time included: fsyncs on a
// busy disk take long), plus a block and a line of slack for the cut's rounding.
func rotateWhileWriting(t *testing.T, f *File, w *writer, rotations int, between func()) int {
	t.Helper()
	start := time.Now()
	blk := int64(64 << 10)
	made := 0
	prevWritten := w.bytes.Load()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Minute)
	for made < rotations {
		// Usage first: every byte it counts is then in written.
		u := disk.Usage(t, f.path)
		written := w.bytes.Load()
		if limit := f.cfg.MaxSize + (written - prevWritten) + blk + maxPad + 16; u > limit {
			info, _ := os.Stat(f.path)
			t.Fatalf("live file uses %d bytes, over max-size plus one interval's growth (%d); size %d, state %+v, rotations %d", u, limit, info.Size(), f.st, made)
		}
		prevWritten = written
		r, err := f.CutAll()
		if err != nil {
			t.Fatalf("cut %d: %v", made, err)
		}
		if r.Archive != "" {
			made++
			checkHead(t, f.path, line)
		}
		if between != nil {
			between()
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("only %d rotations in 5 minutes", made)
		}
	}
	n := w.finish(t)
	secs := time.Since(start).Seconds()
	t.Logf("%d rotations, %d lines in %.1fs: %.0f lines/s, %.1f MB/s", made, n, secs, float64(n)/secs, float64(w.bytes.Load())/secs/1e6)
	return n
}

// contents returns the archives, gunzipped, oldest first, then the live file as
// cat shows it, but for its blank head: a punched hole (NULs) and the one line of
// spaces a cut leaves where the fragment of an archived line was.
func contents(t *testing.T, f *File) []byte {
	t.Helper()
	names, err := f.Archives()
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, name := range names {
		file, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = file
		if strings.HasSuffix(name, ".gz") {
			if r, err = gzip.NewReader(file); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if _, err := io.Copy(&all, r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		file.Close()
	}
	file, err := os.Open(f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	// A punched hole reads as NULs: skip it rather than read it.
	live, err := io.ReadAll(io.NewSectionReader(file, fileid.DataStart(file, 0), 1<<62))
	if err != nil {
		t.Fatal(err)
	}
	all.Write(withoutBlankHead(live))
	return all.Bytes()
}

// withoutBlankHead returns b without its leading NULs (a punched hole) and, if it
// is made of spaces, its first line.
func withoutBlankHead(b []byte) []byte {
	b = bytes.TrimLeft(b, "\x00")
	if i := bytes.IndexByte(b, '\n'); i >= 0 && len(bytes.Trim(b[:i], " ")) == 0 {
		b = b[i+1:]
	}
	return b
}

// isLine reports whether l is one of the lines content makes: its number is the
// first or the last field.
func isLine(l string, content func(int) string) bool {
	fields := strings.Fields(l)
	for _, f := range []string{fields[0], fields[len(fields)-1]} {
		if n, err := strconv.Atoi(f); err == nil && content(n) == l {
			return true
		}
	}
	return false
}

// checkHead checks that the live file, as cat shows it, starts with a whole line
// or a blank one (spaces, after the NULs of a punched hole): never with the
// tail of an archived line.
func checkHead(t *testing.T, path string, content func(int) string) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	head := fileid.ReadAt(file, fileid.DataStart(file, 0), 2*maxPad)
	head = bytes.TrimLeft(head, "\x00")
	first, _, whole := bytes.Cut(head, []byte{'\n'})
	if !whole || len(bytes.Trim(first, " ")) == 0 {
		return // empty or blank (a line still being written is whole so far)
	}
	if !isLine(string(first)+"\n", content) {
		t.Fatalf("the live file starts with %.60q: not a whole line", first)
	}
}

// checkLines checks that b holds lines first..first+n-1, each once, whole, in order.
func checkLines(t *testing.T, b []byte, first, n int) {
	t.Helper()
	if i := bytes.IndexByte(b, 0); i >= 0 {
		t.Fatalf("NUL byte at %d of %d", i, len(b))
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	want := first
	for sc.Scan() {
		if got := sc.Text() + "\n"; got != line(want) {
			t.Fatalf("line %d: got %.40q, want %.40q", want-first, got, line(want))
		}
		want++
	}
	if want != first+n {
		t.Fatalf("got lines %d..%d, want up to %d", first, want-1, first+n-1)
	}
}

func testConfig() Config {
	return Config{MaxSize: 1 << 20, MaxFiles: 1000, Method: Auto}
}

// Auto takes the method the filesystem has: collapse on ext4, which shrinks the live
// file; punch on tmpfs, which has no collapse (EOPNOTSUPP).
func TestCutMethodByFilesystem(t *testing.T) {
	for _, tc := range []struct {
		fs   string
		dir  func(*testing.T) string
		want Method
	}{
		{"ext4", ext4Dir, Collapse},
		{"tmpfs", tmpfsDir, Punch},
	} {
		t.Run(tc.fs, func(t *testing.T) {
			path := filepath.Join(tc.dir(t), "app.log")
			f := NewFile(path, testConfig())
			w := startWriter(t, path, true, writeRate)
			n := rotateWhileWriting(t, f, w, 100, nil)
			if f.method != tc.want {
				t.Fatalf("method %s on %s, want %s", f.method, tc.fs, tc.want)
			}
			// Punch would leave the apparent size at everything written.
			if info, _ := os.Stat(path); tc.want == Collapse && info.Size() > w.bytes.Load()/10 {
				t.Fatalf("live file is %d bytes of %d written: collapse did not shrink it", info.Size(), w.bytes.Load())
			}
			checkLines(t, contents(t, f), 0, n)
		})
	}
}

// A writer without O_APPEND keeps writing at its own offset: with punch the file
// keeps its size, so no hole of NULs opens before the writer's next line.
func TestPunchWithoutAppend(t *testing.T) {
	for _, dir := range []string{t.TempDir(), tmpfsDir(t)} {
		path := filepath.Join(dir, "app.log")
		cfg := testConfig()
		cfg.Method = Punch
		f := NewFile(path, cfg)
		w := startWriter(t, path, false, writeRate)
		n := rotateWhileWriting(t, f, w, 30, nil)
		checkLines(t, contents(t, f), 0, n)
		if u := disk.Usage(t, path); u > 2<<20 {
			t.Fatalf("%s: punched file still uses %d bytes", dir, u)
		}
	}
}

// There are never more than MaxFiles archives, checked after every cut and by a
// goroutine listing the folder all along; those kept end where the live file
// starts.
func TestMaxFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	cfg := testConfig()
	cfg.MaxFiles = 3
	cfg.MaxSize = 256 << 10
	cfg.Compress = true
	f := NewFile(path, cfg)
	var most atomic.Int64
	stop := make(chan struct{})
	var lister sync.WaitGroup
	lister.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			names, _ := f.Archives()
			if int64(len(names)) > most.Load() {
				most.Store(int64(len(names)))
			}
			// A poll interval, not synchronisation: a busy loop would take the
			// CPU gzip needs under the race detector.
			time.Sleep(100 * time.Microsecond)
		}
	})
	w := startWriter(t, path, true, slowRate)
	n := rotateWhileWriting(t, f, w, 20, func() {
		if names, _ := f.Archives(); len(names) > cfg.MaxFiles {
			t.Fatalf("%d archives, max-files is %d", len(names), cfg.MaxFiles)
		}
	})
	close(stop)
	lister.Wait()
	if m := most.Load(); m > int64(cfg.MaxFiles) || m < 1 {
		t.Fatalf("the lister saw up to %d archives, max-files is %d", m, cfg.MaxFiles)
	}
	// What is kept is a run of whole lines ending with the last one written.
	b := contents(t, f)
	first, err := strconv.Atoi(string(b[:9]))
	if err != nil {
		t.Fatalf("kept archives do not start with a whole line: %.40q", b)
	}
	checkLines(t, b, first, n-first)
}

func TestMaxAge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeLines(t, path, 0, 10)
	old := filepath.Join(dir, "app-2026-01-01T00-00-00.000.log.gz")
	recent := filepath.Join(dir, "app-2026-01-02T00-00-00.000.log")
	other := filepath.Join(dir, "other-2026-01-01T00-00-00.000.log")
	for _, p := range []string{old, recent, other} {
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, time.Now().Add(-8*24*time.Hour), time.Now().Add(-8*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(recent, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.MaxAge = 7 * 24 * time.Hour
	if _, err := NewFile(path, cfg).CutAll(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{old: false, recent: true, other: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

// writeLines writes lines first..first+n-1 to path.
func writeLines(t *testing.T, path string, first, n int) {
	t.Helper()
	var b strings.Builder
	for i := first; i < first+n; i++ {
		b.WriteString(line(i))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// An archive that cannot be written, for want of space or of a folder, leaves
// the live file as it was; the cut is tried again at the next check.
func TestArchiveFailureKeepsLiveFile(t *testing.T) {
	full := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", full).Run() })
	// A folder where the state file goes makes saving the state fail after the
	// archive was written: the archive must go too, or the next cut repeats it.
	stateBlocked := t.TempDir()
	if err := os.Mkdir(filepath.Join(stateBlocked, ".app.log.sidetail-rotate"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, archiveDir string }{
		{"archive does not fit", full},
		{"state cannot be saved", stateBlocked},
		{"archive dir missing", filepath.Join(full, "nope")},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), "app.log")
		writeLines(t, path, 0, 20000)
		before, _ := os.ReadFile(path)
		cfg := testConfig()
		cfg.MaxSize = MinSize
		cfg.ArchiveDir = c.archiveDir
		f := NewFile(path, cfg)
		if _, err := f.CutAll(); err == nil {
			t.Fatalf("%s: cut succeeded", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Fatalf("%s: live file changed", c.name)
		}
		for _, dir := range []string{full, stateBlocked} {
			if left, _ := os.ReadDir(dir); len(left) > 0 && left[0].Name() != ".app.log.sidetail-rotate" || len(left) > 1 {
				t.Fatalf("%s: left behind %v", c.name, left)
			}
		}
	}
}

func TestSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.log")
	writeLines(t, target, 0, 20000)
	link := filepath.Join(dir, "app.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(target)
	cfg := testConfig()
	cfg.MaxSize = MinSize
	if _, err := NewFile(link, cfg).CutAll(); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("cut through a link: err=%v", err)
	}
	if after, _ := os.ReadFile(target); !bytes.Equal(before, after) {
		t.Fatal("the link's target changed")
	}
	cfg.FollowSymlinks = true
	f := NewFile(link, cfg)
	if r, err := f.CutAll(); err != nil || r.Archive == "" {
		t.Fatalf("with FollowSymlinks: %+v, %v", r, err)
	}
	checkLines(t, contents(t, f), 0, 20000)
}

// A version 1 state file (saved before the collapse, with a 32-byte mark at the
// cut and nothing after) is read once, whether its collapse took place or not,
// and rewritten as version 2; no line is lost or archived twice.
func TestMigrateV1State(t *testing.T) {
	for _, collapsed := range []bool{true, false} {
		dir := ext4Dir(t)
		path := filepath.Join(dir, "app.log")
		writeLines(t, path, 0, 2000)
		live, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		// A cut as version 1 made it: the archive, the state, then the collapse.
		info, _ := live.Stat()
		cut := info.Size() / 2 / 4096 * 4096
		archEnd, err := nextLineEnd(live, cut, info.Size())
		if err != nil {
			t.Fatal(err)
		}
		head := fileid.ReadAt(live, 0, int(archEnd))
		if err := os.WriteFile(filepath.Join(dir, "app-2026-01-01T00-00-00.000.log"), head, 0o644); err != nil {
			t.Fatal(err)
		}
		k := fileid.Inode(info)
		v1 := fmt.Sprintf(`{"Dev":%d,"Ino":%d,"Start":%d,"Shift":%d,"MarkAt":0,"Mark":%q}`,
			k.Dev, k.Ino, archEnd-cut, cut, base64.StdEncoding.EncodeToString(fileid.ReadAt(live, cut, markLen)))
		if err := os.WriteFile(filepath.Join(dir, ".app.log.sidetail-rotate"), []byte(v1), 0o644); err != nil {
			t.Fatal(err)
		}
		if collapsed {
			if err := unix.Fallocate(int(live.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, cut); err != nil {
				t.Fatal(err)
			}
		}
		appendLines(t, path, 2000, 2000)
		cfg := testConfig()
		cfg.MaxSize = MinSize
		f := NewFile(path, cfg)
		r, err := f.CutAll()
		if err != nil || r.Archive == "" {
			t.Fatalf("collapsed %v: %+v, %v", collapsed, r, err)
		}
		checkLines(t, contents(t, f), 0, 4000)
		checkHead(t, path, line)
		// Version 1 kept no total: it counts from the migration on.
		st := loadState(f.statePath())
		if st.Version != stateVersion || st.Mark != nil || st.Removed != r.Removed {
			t.Fatalf("collapsed %v: state not rewritten as version %d with the cut's %d bytes: %+v", collapsed, stateVersion, r.Removed, st)
		}
	}
}

// appendLines appends lines first..first+n-1 to path.
func appendLines(t *testing.T, path string, first, n int) {
	t.Helper()
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for i := first; i < first+n; i++ {
		if _, err := file.WriteString(line(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// markLen is version 1's mark at the cut.
const markLen = 32

func TestCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeLines(t, path, 0, 20000)
	cfg := testConfig()
	cfg.MaxSize = MinSize
	cfg.Method = CopyTruncate
	f := NewFile(path, cfg)
	if r, err := f.CutAll(); err != nil || r.Archive == "" {
		t.Fatalf("%+v, %v", r, err)
	}
	if info, _ := os.Stat(path); info.Size() != 0 {
		t.Fatalf("live file is %d bytes after copytruncate", info.Size())
	}
	checkLines(t, contents(t, f), 0, 20000)
}

// tmpfsDir returns a fresh folder on tmpfs (an emptyDir with medium: Memory).
// ext4Dir is a temporary folder on ext4, where collapse works.
func ext4Dir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	requireFS(t, dir, unix.EXT4_SUPER_MAGIC, "ext4")
	return dir
}

func tmpfsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "sidetail-test-")
	if err != nil {
		t.Fatalf("need /dev/shm (tmpfs): %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	requireFS(t, dir, unix.TMPFS_MAGIC, "tmpfs")
	return dir
}

func requireFS(t *testing.T, dir string, magic int64, name string) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != magic {
		t.Fatalf("%s is not on %s (type %#x): this test needs %s", dir, name, st.Type, name)
	}
}
