// Package testbin builds the sidetail binary that end-to-end tests run as a
// subprocess, for every test package that needs one (the command's, e2e's): the
// go build cache makes each build after the first a link.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"testing"
)

// Main builds sidetail into *bin, runs the tests and removes the binary; it
// returns the exit code for os.Exit, from a package's TestMain. The binary has the
// inject command (the tests pipe workloads through it) and the race detector when
// the test binary has it, so the subprocess is checked as the tests are.
func Main(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "sidetail-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // the unreadable-file test runs it as another user
	*bin = filepath.Join(dir, "sidetail")
	args := []string{"build", "-tags", "inject", "-o", *bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/sidetail/sidetail")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sidetail:", err)
		return 1
	}
	return m.Run()
}

// raceEnabled reports whether the running (test) binary was built with -race.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	return ok && slices.Contains(info.Settings, debug.BuildSetting{Key: "-race", Value: "true"})
}
