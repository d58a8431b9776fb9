package inject

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzStream feeds any bytes to Stream, with files from flags or from the
// annotations: it must not panic, and an output it accepts must be a fixed point
// (injecting it again changes nothing).
func FuzzStream(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/inject/*.y*ml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, true)
		f.Add(data, false)
	}
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a"}]}}`), true)
	f.Fuzz(func(t *testing.T, data []byte, flags bool) {
		cfg := Config{Image: "sidetail", StateDir: "/state"}
		if flags {
			cfg.Files = []string{"/var/log/app/*.log", "a:/var/log/b.log"}
		}
		out, reports := Stream(cfg, data)
		for _, r := range reports {
			if r.Err != nil {
				return
			}
		}
		again, reports := Stream(cfg, out)
		for _, r := range reports {
			if r.Err != nil {
				t.Fatalf("the output fails: %v\ninput:\n%s\noutput:\n%s", r, data, out)
			}
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not a fixed point:\ninput:\n%s\nonce:\n%s\ntwice:\n%s", data, out, again)
		}
	})
}
