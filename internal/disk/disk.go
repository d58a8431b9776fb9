// Package disk tells tests how much of its volume a file takes: what rotation
// frees, whichever package's tests drive it (rotate's, or the command's end to end).
package disk

import (
	"os"
	"syscall"
	"testing"
)

// Usage is the space the file at path takes on its volume: its allocated blocks,
// so a punched hole counts for nothing while the apparent size stays.
func Usage(t testing.TB, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Sys().(*syscall.Stat_t).Blocks * 512
}
