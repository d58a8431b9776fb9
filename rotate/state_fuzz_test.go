package rotate

import (
	"os"
	"path/filepath"
	"testing"
)

// A damaged or hostile state file never makes recovery and a cut panic, hang,
// read without bound, grow the live file or touch a file outside the folder. On
// tmpfs (punch), where the fuzzer is not slowed by fsyncs.
func FuzzState(f *testing.F) {
	f.Add([]byte(`{"Dev":1,"Ino":2,"Start":100,"Shift":4096,"MarkAt":0,"Mark":"eHh4"}`))
	f.Add([]byte(`{"Version":2,"Start":10,"Step":"collapse","To":5000,"Cut":4096,"Size":9000,"SumAt":4096,"SumLen":4000}`))
	f.Add([]byte(`{"Version":2,"Step":"archive","Archive":"x","Temp":"y","From":0,"To":5000,"Cut":4096}`))
	f.Add([]byte(`{"Version":2,"Step":"truncate","To":70000,"SumAt":0,"SumLen":65536}`))
	f.Fuzz(func(t *testing.T, st []byte) {
		dir := tmpfsDir(t) // no fsync to wait for
		path := filepath.Join(dir, "app.log")
		writeLines(t, path, 0, 1000)
		if err := os.WriteFile(filepath.Join(dir, ".app.log.sidetail-rotate"), st, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := crashConfig()
		file := NewFile(path, cfg)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		file.Removed(info)
		file.CutAll()
		if after, err := os.Stat(path); err != nil || after.Size() > info.Size() {
			t.Fatalf("the live file grew from %d bytes: %v, %v", info.Size(), after, err)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if n := e.Name(); n != "app.log" && n != ".app.log.sidetail-rotate" && !file.isArchive(n) {
				t.Fatalf("%s in the folder", n)
			}
		}
	})
}
