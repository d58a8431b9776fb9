package rotate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The helper process of TestCrashAtEachStep reads what to do from these.
const (
	crashStepEnv  = "SIDETAIL_TEST_CRASH_STEP"
	crashPathEnv  = "SIDETAIL_TEST_CRASH_PATH"
	crashLimitEnv = "SIDETAIL_TEST_CRASH_LIMIT" // set: discard below it
)

// TestCrashHelper is the process TestCrashAtEachStep kills: it cuts the file
// once and SIGKILLs itself right after the step named, as a crash there would.
func TestCrashHelper(t *testing.T) {
	step := os.Getenv(crashStepEnv)
	if step == "" {
		t.Skip("the helper process of TestCrashAtEachStep")
	}
	cfg := crashConfig()
	limit := int64(-1)
	if s := os.Getenv(crashLimitEnv); s != "" {
		limit, _ = strconv.ParseInt(s, 10, 64)
		cfg.MaxFiles = 0
	}
	f := NewFile(os.Getenv(crashPathEnv), cfg)
	f.afterStep = func(s string) {
		if s == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	_, err := f.Cut(limit, nil)
	fmt.Fprintf(os.Stderr, "step %s never reached (err %v)\n", step, err)
	os.Exit(3)
}

func crashConfig() Config {
	return Config{MaxSize: MinSize, MaxFiles: 1000, Method: Auto}
}

// repetitive lines are all alike but for a counter at their end, and 128 bytes
// long: a cut falls on a line start, and 32 bytes there equal the file's head.
func repetitive(i int) string { return strings.Repeat("x", 117) + fmt.Sprintf(" %09d\n", i) }

// A SIGKILL right after each step of a cut, on ext4 (collapse) and tmpfs (punch),
// archiving (lines of varied lengths, and repetitive ones) or discarding; the writer goes on appending meanwhile (more than the cut, so the size
// alone cannot tell whether a collapse took place). After a restart: the
// archives and the live file hold every line once (discarding: the live file
// holds every line not yet read, once), the live file starts with a whole or
// blank line, and Removed counts exactly the bytes that left the front.
func TestCrashAtEachStep(t *testing.T) {
	steps := map[string][]string{
		"ext4":  {"archive-written", "archive-intent", "archive", "collapse-intent", "blanked", "collapse", "done"},
		"tmpfs": {"archive-written", "archive-intent", "archive", "collapse-intent", "blanked", "punch-intent", "punch", "done"},
	}
	dirs := map[string]func(*testing.T) string{"ext4": (*testing.T).TempDir, "tmpfs": tmpfsDir}
	contents := map[string]func(int) string{"varied": line, "repetitive": repetitive}
	for fs, all := range steps {
		for name, content := range contents {
			for _, discard := range []bool{false, true} {
				for i, step := range all {
					firstCut := i%2 == 1 // the restart's first call: Cut, or Removed
					if discard && (strings.HasPrefix(step, "archive") || name == "repetitive") {
						continue // nothing is archived; the evidence is that of archiving
					}
					t.Run(fmt.Sprintf("%s/%s/discard=%v/%s", fs, name, discard, step), func(t *testing.T) {
						t.Parallel() // the helper's start and the fsyncs wait, mostly
						crashAt(t, dirs[fs](t), content, discard, step, firstCut)
					})
				}
			}
		}
	}
}

func crashAt(t *testing.T, dir string, content func(int) string, discard bool, step string, firstCut bool) {
	path := filepath.Join(dir, "app.log")
	var written bytes.Buffer
	n := 0
	add := func(bytes int) { // appends at least this many bytes of lines
		file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		for end := written.Len() + bytes; written.Len() < end; n++ {
			file.WriteString(content(n))
			written.WriteString(content(n))
		}
	}
	size := func() int64 {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return info.Size()
	}
	cfg := crashConfig()
	if discard {
		cfg.MaxFiles = 0
	}
	// limit is the reader's offset in the file; read is where it is in what was
	// written (the file's front having been collapsed away).
	var limit, read int64 = -1, 0
	cut := func(f *File) {
		t.Helper()
		if discard {
			limit, read = size(), int64(written.Len())
		}
		if _, err := f.Cut(limit, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A cut before, so that the state holds a start and a total, then the
	// cut that crashes.
	add(200 << 10)
	cut(NewFile(path, cfg))
	add(200 << 10)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), crashStepEnv+"="+step, crashPathEnv+"="+path)
	if discard {
		limit, read = size(), int64(written.Len())
		cmd.Env = append(cmd.Env, crashLimitEnv+"="+strconv.FormatInt(limit, 10))
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper not killed at %s: %v\n%s", step, err, out)
	}
	add(300 << 10)
	// The restart: Removed resolves the interrupted cut first, as a follower
	// resuming calls it; or the cut itself does, as the rotate command's first.
	f := NewFile(path, cfg)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var removed int64
	if firstCut {
		cut(f)
		info, _ = os.Stat(path)
	}
	if removed, err = f.Removed(info); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if gone := int64(written.Len()) - size(); removed != gone {
			t.Fatalf("%s: Removed says %d bytes, %d left the front", when, removed, gone)
		}
		checkHead(t, path, content)
		got := contents(t, f)
		if !discard {
			if !bytes.Equal(got, written.Bytes()) {
				t.Fatalf("%s: archives + live file (%d bytes) differ from what was written (%d bytes) at %d", when, len(got), written.Len(), mismatch(got, written.Bytes()))
			}
			return
		}
		// Discarding: the live file is what was written from a line start on,
		// and nothing at or above the reader's offset went.
		from := int64(written.Len() - len(got))
		if from < 0 || from > read || !bytes.Equal(got, written.Bytes()[from:]) || from > 0 && written.Bytes()[from-1] != '\n' {
			t.Fatalf("%s: the live file is not what was written from a line start below %d on (%d bytes of %d)", when, read, len(got), written.Len())
		}
	}
	if onExt4(dir) {
		check("after Removed")
	}
	cut(f)
	if total, err := f.Removed(info); err != nil || total < removed {
		t.Fatalf("Removed after a cut: %d, %v; was %d", total, err, removed)
	} else {
		removed = total
	}
	check("after the next cut")
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(left) > 0 {
		t.Fatalf("left behind %v", left)
	}
}

func onExt4(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.EXT4_SUPER_MAGIC
}

// mismatch returns the first offset where a and b differ.
func mismatch(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Removed is 0 for a file never cut, the sum of the cuts' Removed after them,
// kept in the state for a restart, and 0 again for a new file at the path.
func TestRemovedTotal(t *testing.T) {
	path := filepath.Join(ext4Dir(t), "app.log")
	writeLines(t, path, 0, 1000)
	cfg := crashConfig()
	f := NewFile(path, cfg)
	removed := func(f *File) int64 {
		t.Helper()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		n, err := f.Removed(info)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := removed(f); n != 0 {
		t.Fatalf("never cut: Removed %d", n)
	}
	var sum int64
	for i := 1; i <= 3; i++ {
		appendLines(t, path, i*1000, 1000)
		r, err := f.CutAll()
		if err != nil || r.Removed == 0 {
			t.Fatalf("cut %d: %+v, %v", i, r, err)
		}
		sum += r.Removed
		if n := removed(f); n != sum {
			t.Fatalf("after cut %d: Removed %d, the cuts removed %d", i, n, sum)
		}
	}
	if n := removed(NewFile(path, cfg)); n != sum {
		t.Fatalf("after a restart: Removed %d, want %d", n, sum)
	}
	os.Remove(path)
	writeLines(t, path, 0, 10)
	if n := removed(f); n != 0 {
		t.Fatalf("a new file at the path: Removed %d, want 0", n)
	}
}
