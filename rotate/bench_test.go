package rotate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCut measures one cut of 1 MiB of lines on the test folder's
// filesystem (ext4 here: a collapse): the archive with its fsync, the state
// records with theirs, the fallocate. SIDETAIL_BENCH_DIR names another folder
// (/dev/shm for tmpfs).
func BenchmarkCut(b *testing.B) {
	dir := os.Getenv("SIDETAIL_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "bench"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	path := filepath.Join(dir, "app.log")
	var chunk strings.Builder
	for i := 0; chunk.Len() < 1<<20; i++ {
		chunk.WriteString(line(i))
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	f := NewFile(path, Config{MaxSize: MinSize, MaxFiles: 3, Method: Auto})
	b.SetBytes(int64(chunk.Len()))
	for b.Loop() {
		b.StopTimer()
		file.WriteString(chunk.String())
		b.StartTimer()
		if r, err := f.Cut(-1, nil); err != nil || r.Archive == "" {
			b.Fatalf("%+v, %v", r, err)
		}
	}
}
