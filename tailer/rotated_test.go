package tailer

import (
	"os"
	"path/filepath"
	"slices"
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

// A listing of a folder serves every look that needs one begun after the same
// moment, and no look that needs a later one: a file rotated away before the
// moment is in it.
func TestSiblingsShareAListing(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "app.log.1"), "", os.O_APPEND)
	var s siblings
	since := time.Now()
	first, err := s.list(dir, since)
	if err != nil || !slices.Equal(first, []string{"app.log.1"}) {
		t.Fatalf("listed %q, %v; want app.log.1", first, err)
	}
	write(t, filepath.Join(dir, "app.log.2"), "", os.O_APPEND)
	if again, _ := s.list(dir, since); !slices.Equal(again, first) {
		t.Errorf("a look needing a listing begun after the first one's moment listed again: %q", again)
	}
	later, _ := s.list(dir, time.Now())
	slices.Sort(later)
	if !slices.Equal(later, []string{"app.log.1", "app.log.2"}) {
		t.Errorf("a later look listed %q, want both files", later)
	}
	if other, _ := s.list(t.TempDir(), since); len(other) != 0 {
		t.Errorf("another folder listed %q", other)
	}
}
