package tailer

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestRotatedName(t *testing.T) {
	for _, c := range []struct {
		base, name string
		want       bool
	}{
		{"app.log", "app.log.1", true},
		{"app.log", "app.log-20261122", true},
		{"app.log", "app-2026-11-22T19-50-00.000.log", true}, // lumberjack
		{"app.log", "app.1.log", true},                       // log4j
		{"app", "app.1", true},
		{"app.log", "app.log", false},
		{"app.log", "app.log.2.gz", false}, // compressed: not lines
		{"app.log", "app.audit.log.lock", false},
		{"app.log", "app.log.idx", true}, // looks rotated; only birth time can tell
		{"app.log", "application.log", false},
		{"app.log", "other.log.1", false},
		{"app.log", "app-.log", false},
	} {
		if got := rotatedName(c.base, c.name); got != c.want {
			t.Errorf("rotatedName(%q, %q) = %v, want %v", c.base, c.name, got, c.want)
		}
	}
}

func TestOlderName(t *testing.T) {
	names := []string{"app.log.1", "app.log.10", "app.log.2"}
	slices.SortFunc(names, func(a, b string) int { return olderName("app.log", a, b) })
	if want := []string{"app.log.10", "app.log.2", "app.log.1"}; !slices.Equal(names, want) {
		t.Errorf("numbered: %q, want %q", names, want)
	}
	names = []string{"app-2026-11-22T10-00-00.000.log", "app-2026-11-21T23-00-00.000.log"}
	slices.SortFunc(names, func(a, b string) int { return olderName("app.log", a, b) })
	if names[0] != "app-2026-11-21T23-00-00.000.log" {
		t.Errorf("timestamped: %q", names)
	}
}

// changedAt is a file's information with its change time set.
type changedAt struct {
	fs.FileInfo
	st syscall.Stat_t
}

func (c changedAt) Sys() any { return &c.st }

// A listing of a folder serves the looks for files rotated away before a file
// that arrived (by its change time, plus a tick of the coarse clock) before the
// listing began, for a short while: one listing, not one per look, when a
// thousand files of one folder are rotated at once. Any other look lists again.
func TestSiblingsShareAListing(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "app.log.1"), "", os.O_APPEND)
	info, err := os.Stat(filepath.Join(dir, "app.log.1"))
	if err != nil {
		t.Fatal(err)
	}
	arrived := func(at time.Time) fs.FileInfo {
		c := changedAt{FileInfo: info, st: *info.Sys().(*syscall.Stat_t)}
		c.st.Ctim = syscall.NsecToTimespec(at.UnixNano())
		return c
	}
	sorted := func(names []string, err error) []string {
		if err != nil {
			t.Fatal(err)
		}
		return slices.Sorted(slices.Values(names))
	}
	var s siblings
	long := arrived(time.Now().Add(-time.Second))
	if got := sorted(s.list(dir, long)); !slices.Equal(got, []string{"app.log.1"}) {
		t.Fatalf("listed %q, want app.log.1", got)
	}
	write(t, filepath.Join(dir, "app.log.2"), "", os.O_APPEND)
	if got := sorted(s.list(dir, long)); !slices.Equal(got, []string{"app.log.1"}) {
		t.Errorf("a file that arrived long before the listing began: listed again, %q", got)
	}
	both := []string{"app.log.1", "app.log.2"}
	if got := sorted(s.list(dir, arrived(time.Now()))); !slices.Equal(got, both) {
		t.Errorf("a file that arrived after the listing began: listed %q, want %q", got, both)
	}
	write(t, filepath.Join(dir, "app.log.3"), "", os.O_APPEND)
	s.began = s.began.Add(-maxListingAge)
	if got := sorted(s.list(dir, long)); len(got) != 3 {
		t.Errorf("a listing too old served a look: %q", got)
	}
	if got := sorted(s.list(t.TempDir(), long)); len(got) != 0 {
		t.Errorf("another folder: listed %q", got)
	}
}
