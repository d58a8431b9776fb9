package rotate

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// ramfsDir returns a fresh ramfs mount, a filesystem with neither collapse nor
// punch: auto falls back twice there.
func ramfsDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting ramfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ramfs", "ramfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount ramfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// Each cut says which method took the head off the live file, and the first cut
// on a filesystem that refuses a method says which fallbacks it made.
func TestResultMethodAndFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dir       func(*testing.T) string
		method    Method
		want      Method
		fallbacks []Fallback
	}{
		{"ext4 auto", func(t *testing.T) string { return t.TempDir() }, Auto, Collapse, nil},
		{"ext4 copytruncate", func(t *testing.T) string { return t.TempDir() }, CopyTruncate, CopyTruncate, nil},
		{"tmpfs auto", tmpfsDir, Auto, Punch, []Fallback{{Collapse, Punch}}},
		{"tmpfs punch", tmpfsDir, Punch, Punch, nil},
		{"ramfs auto", ramfsDir, Auto, CopyTruncate, []Fallback{{Collapse, Punch}, {Punch, CopyTruncate}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(tc.dir(t), "app.log")
			writeLines(t, path, 0, 2000) // 260 kB
			cfg := testConfig()
			cfg.MaxSize, cfg.Method = MinSize, tc.method
			f := NewFile(path, cfg)
			r, err := f.CutAll()
			if err != nil || r.Archive == "" || r.Method != tc.want || !slices.Equal(r.Fallbacks, tc.fallbacks) {
				t.Fatalf("first cut: %+v, %v; want method %s, fallbacks %v", r, err, tc.want, tc.fallbacks)
			}
			if (r.Removed > 0) != (tc.want == Collapse) {
				t.Errorf("first cut removed %d bytes with %s", r.Removed, r.Method)
			}
			// The file keeps to the method that worked: no fallback again.
			appendLines(t, path, 2000, 2000)
			if r, err = f.CutAll(); err != nil || r.Method != tc.want || r.Fallbacks != nil {
				t.Fatalf("second cut: %+v, %v; want method %s and no fallback", r, err, tc.want)
			}
			// Nothing new to cut: no method.
			if r, err = f.CutAll(); err != nil || r.Method != "" || r.Archive != "" {
				t.Fatalf("cut with nothing to cut: %+v, %v", r, err)
			}
		})
	}
}

// A cut reports the archives it deleted, those past MaxAge apart from those past
// MaxFiles.
func TestResultDeleted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	old := time.Now().Add(-8 * 24 * time.Hour)
	for _, name := range []string{"app-2026-01-01T00-00-00.000.log", "app-2026-01-02T00-00-00.000.log", "other-2026-01-01T00-00-00.000.log"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig()
	cfg.MaxSize, cfg.MaxFiles, cfg.MaxAge = MinSize, 2, 7*24*time.Hour
	f := NewFile(path, cfg)
	want := []Deleted{
		{ByAge: 2}, // the two old archives of app.log; other.log's are not its own
		{},         // two archives now: none deleted
		{ByCount: 1},
		{ByCount: 1},
	}
	writeLines(t, path, 0, 0)
	for i, d := range want {
		appendLines(t, path, i*2000, 2000)
		r, err := f.CutAll()
		if err != nil || r.Archive == "" || r.Deleted != d {
			t.Fatalf("cut %d: %+v, %v; want deleted %+v", i+1, r, err, d)
		}
	}
	if names, _ := f.Archives(); len(names) != 2 {
		t.Errorf("%d archives kept, want 2: %v", len(names), names)
	}
}
