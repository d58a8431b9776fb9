package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// oneThread runs Go code on one thread unless GOMAXPROCS is set. Every wakeup of a
// followed file passes from the goroutine reading inotify to the follower's; with
// two or more threads each pass wakes another thread that spins looking for
// work, the largest part of following a live file's CPU (bench/compare.sh steady).
// Since all lines go to one stdout, one thread costs nothing but encoding two busy
// files side by side. The runtime's cgroup-based default is at least 2, even under
// a limit of 100m.
func oneThread() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// releaseStartupMemory, once start-up is over, returns to the kernel the heap only
// start-up used (flag parsing, package init, the first scan), which the runtime's
// background scavenger would otherwise give back over minutes. (More collections
// first, to free the read buffers the pool keeps through one, left the process
// waking for seconds after, and saved nothing once idle followers hold no
// goroutine.) The pages of the binary that start-up touched stay mapped: dropping
// them would lower RSS but not the container's memory use, since they stay in the
// page cache charged to it.
func releaseStartupMemory() {
	time.AfterFunc(settledAfter, debug.FreeOSMemory)
}

// settledAfter is when start-up is taken to be over: files opened, folders watched.
const settledAfter = time.Second
