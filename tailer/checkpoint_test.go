package tailer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// posBytes is what wrote writes to NAME.pos.
func posBytes(gen uint16, off int64, mark []byte) []byte {
	h := packPos(gen, off, len(mark))
	return append(h[:], mark...)
}

// NAME.pos as sidetail before the mark wrote it: the word alone.
func TestUnpackPosWordAlone(t *testing.T) {
	word := binary.LittleEndian.AppendUint64(nil, 7<<48|12345)
	gen, off, mark, ok := unpackPos(word)
	if !ok || gen != 7 || off != 12345 || mark != nil {
		t.Fatalf("got %d %d %q %v", gen, off, mark, ok)
	}
}

// A shorter mark written over a longer one leaves its end behind: the length says
// where the mark stops.
func TestUnpackPosShorterMarkOverLonger(t *testing.T) {
	buf := posBytes(1, 900, bytes.Repeat([]byte("x"), 800))
	file := append([]byte(nil), buf...)
	copy(file, posBytes(2, 40, []byte("short mark\n")))
	gen, off, mark, ok := unpackPos(file)
	if !ok || gen != 2 || off != 40 || string(mark) != "short mark\n" {
		t.Fatalf("got %d %d %q %v", gen, off, mark, ok)
	}
}

func FuzzPos(f *testing.F) {
	f.Add(uint16(3), int64(5000), []byte("line\n"), []byte{})
	f.Add(uint16(0), int64(0), []byte{}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, gen uint16, off int64, mark, junk []byte) {
		off &= 1<<48 - 1
		mark = mark[:min(len(mark), markLen, int(off))]
		data := append(posBytes(gen, off, mark), junk...)
		g, o, m, ok := unpackPos(data)
		if !ok || g != gen || o != off || !bytes.Equal(m, mark) {
			t.Fatalf("packed %d %d %q, unpacked %d %d %q %v", gen, off, mark, g, o, m, ok)
		}
		// Whatever a crash or a disk leaves in the file reads as a position or none,
		// never a mark longer than the offset or past the data.
		if g, o, m, ok := unpackPos(junk); ok && (len(m) > int(o) || len(m) > markLen || g != uint16(binary.LittleEndian.Uint64(junk)>>48)) {
			t.Fatalf("junk %x read as %d %d %q", junk, g, o, m)
		}
	})
}

// The mark a restart finds in NAME.pos may predate a cut (SIGKILL between the cut
// and the next output write): rotation's blanks and hole over its front are no
// change, a refill is.
func TestMarkAfterRotationBlanks(t *testing.T) {
	var data []byte
	for i := range 300 {
		data = fmt.Appendf(data, "line %06d %s\n", i, strings.Repeat("x", 87)) // 100 bytes
	}
	const off = 200 * 100 // where the output reached: a line's end
	for _, c := range []struct {
		name   string
		to     int64 // where the cut's blanks end (what went out when it planned)
		refill bool
		want   bool // truncated
	}{
		{"blanks to the offset", off, false, false},
		{"blanks into the mark", off - 5*100, false, false},
		{"blanks below the mark", off - 30*100, false, false},
		{"refilled", 0, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			h := head(data[:headLen])
			at := position{off: off, mark: data[off-markLen : off]}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if c.refill {
				if err := f.Truncate(0); err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt(bytes.ReplaceAll(data, []byte("line 0001"), []byte("LINE 0001")), 0); err != nil {
					t.Fatal(err)
				}
			} else {
				// As rotate/cut.go does it: blanks up to the end of the last line
				// that went out, then a hole up to the block below it.
				cut := c.to &^ 4095
				blank := bytes.Repeat([]byte(" "), int(c.to-cut))
				blank[len(blank)-1] = '\n'
				if _, err := f.WriteAt(blank, cut); err != nil {
					t.Fatal(err)
				}
				if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, cut); err != nil {
					t.Fatal(err)
				}
			}
			o, err := newRegistry().open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if got := at.truncated(o, o.info.Size(), h); got != c.want {
				t.Fatalf("truncated: %v, want %v", got, c.want)
			}
		})
	}
}

// NAME.pos is made before the first offset is written: empty, it is no corrupt one.
func TestLoadEmptyOffsetFile(t *testing.T) {
	cps, err := OpenCheckpoints(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const path = "/logs/app.log"
	if err := cps.save(checkpoint{Path: path, Files: []filePoint{{Offset: 42}}, Gen: 1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pos     []byte
		corrupt bool
	}{{nil, false}, {[]byte{1, 2, 3}, true}} {
		if err := os.WriteFile(cps.posFile(path), c.pos, 0o644); err != nil {
			t.Fatal(err)
		}
		cp, found, err := cps.load(path)
		if !found || err != nil || cp.posCorrupt != c.corrupt || cp.Files[0].Offset != 42 {
			t.Fatalf("pos %v: found %v, err %v, corrupt %v, offset %d", c.pos, found, err, cp.posCorrupt, cp.Files[0].Offset)
		}
	}
}
