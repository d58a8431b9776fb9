package fileid

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestKeyTellsFilesApart(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("a"), 0o644)
	os.WriteFile(b, []byte("b"), 0o644)
	fa, _ := os.Open(a)
	defer fa.Close()
	fb, _ := os.Open(b)
	defer fb.Close()
	ia, _ := fa.Stat()
	ib, _ := fb.Stat()
	if Of(fa, ia) == Of(fb, ib) {
		t.Fatal("two files have one key")
	}
	if Inode(ia) != (Key{Dev: Of(fa, ia).Dev, Ino: Of(fa, ia).Ino}) {
		t.Fatal("Inode and Of disagree on dev and inode")
	}
	// The same file renamed keeps its key.
	os.Rename(a, filepath.Join(dir, "c"))
	ic, _ := os.Stat(filepath.Join(dir, "c"))
	if Inode(ic) != Inode(ia) {
		t.Fatal("a renamed file changed its key")
	}
}

func TestReadAtAndDataStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, make([]byte, 64<<10), 0o644)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt([]byte("hello"), 64<<10-5)
	if got := string(ReadAt(f, 64<<10-5, 10)); got != "hello" {
		t.Fatalf("ReadAt at EOF = %q", got)
	}
	if ReadAt(f, -1, 4) != nil || ReadAt(f, 0, 0) != nil {
		t.Fatal("ReadAt before 0 or of nothing must return nothing")
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 32<<10); err != nil {
		t.Skipf("no hole punching here: %v", err)
	}
	if got := DataStart(f, 0); got != 32<<10 {
		t.Fatalf("DataStart after a 32 KiB hole = %d", got)
	}
	if got := DataStart(f, 40<<10); got != 40<<10 {
		t.Fatalf("DataStart in data = %d", got)
	}
}
