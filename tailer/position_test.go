package tailer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The mark is the last markLen bytes read, whatever the sizes of the reads, and
// its memory never grows past markLen: an idle file holds no more than that.
func TestMarkBounded(t *testing.T) {
	var p position
	var all []byte
	for i, n := range []int{7, 100, 1000, 3, 2000, 1, 1023, 1024, 500, 600, 5} {
		recent := bytes.Repeat([]byte{byte('a' + i)}, n)
		all = append(all, recent...)
		p.advance(recent)
		want := all[max(0, len(all)-markLen):]
		if !bytes.Equal(p.mark, want) || p.off != int64(len(all)) {
			t.Fatalf("after %d bytes: mark %d bytes at offset %d, want the last %d at %d", len(all), len(p.mark), p.off, len(want), len(all))
		}
		if cap(p.mark) > markLen {
			t.Fatalf("after a read of %d: the mark holds %d bytes of memory, more than %d", n, cap(p.mark), markLen)
		}
	}
}

// The check of the mark at a wakeup also tells whether there is anything to read:
// a wakeup that brings nothing then needs no read and no read buffer.
func TestMarkSaysMore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	write(t, path, "one\ntwo\n", os.O_APPEND)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := readHead(f)
	var p position
	p.at(f, 8)
	check := func(size int64, wantCut, wantMore bool) {
		t.Helper()
		if cut, more := p.truncated(f, size, h); cut != wantCut || more != wantMore {
			t.Fatalf("size %d: truncated %v, more %v; want %v, %v", size, cut, more, wantCut, wantMore)
		}
	}
	check(-1, false, false)
	check(8, false, false)
	write(t, path, "three\n", os.O_APPEND)
	check(-1, false, true)
	check(14, false, true)
	p.advance([]byte("three\n"))
	check(-1, false, false)
	// Truncated and refilled past our offset with other lines.
	write(t, path, "eins\nzwei\ndrei\nvier\n", os.O_TRUNC)
	check(-1, true, true)
}
