package durable

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WriteFile replaces the content whole, at either durability, with the mode
// asked for, and leaves no temporary file behind, also when it fails.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	for i, s := range []Survives{PowerLoss, Crash, PowerLoss} {
		want := strings.Repeat("x", 1000*(i+1))
		if err := WriteFile(path, []byte(want), 0o640, s); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Fatalf("write %d: got %d bytes, %v; want %d", i, len(got), err, len(want))
		}
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640", info.Mode().Perm())
	}
	// A folder where the file should be: the rename fails.
	blocked := filepath.Join(dir, "blocked")
	os.Mkdir(blocked, 0o755)
	os.WriteFile(filepath.Join(blocked, "x"), nil, 0o644)
	if err := WriteFile(blocked, []byte("y"), 0o644, PowerLoss); err == nil {
		t.Fatal("replaced a folder")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
}

func TestCanWrite(t *testing.T) {
	dir := t.TempDir()
	if err := CanWrite(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Fatalf("the probe left %v", left)
	}
	if err := CanWrite(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing folder: %v", err)
	}
}
