package main

import (
	"runtime/debug"
	"time"
)

// releaseStartupMemory, once start-up is over, returns to the kernel the heap only
// start-up used (flag parsing, package init, the first scan), which the runtime's
// background scavenger would otherwise give back over minutes. The pages of the
// binary that start-up touched stay mapped: dropping them would lower RSS but not
// the container's memory use, since they stay in the page cache charged to it.
func releaseStartupMemory() {
	time.AfterFunc(settledAfter, debug.FreeOSMemory)
}

// settledAfter is when start-up is taken to be over: files opened, folders watched.
const settledAfter = time.Second
