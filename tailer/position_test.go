package tailer

import (
	"bytes"
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
