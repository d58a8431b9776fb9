package tailer

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// goroutineID returns the id of the goroutine it runs on, from its stack's header.
func goroutineID() int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _ := strconv.Atoi(string(bytes.Fields(buf)[1]))
	return id
}

// Followers that wake one after another run on one worker, whose stack stays
// grown; a burst takes one worker each, and after it at most maxIdleWorkers stay.
func TestWorkers(t *testing.T) {
	w := newWorkers()
	defer w.stop()
	ran := make(chan int)
	job := func() { ran <- goroutineID() }

	ids := map[int]bool{}
	for range 20 {
		w.run(job)
		ids[<-ran] = true
		waitIdle(t, w, 1)
	}
	if len(ids) != 1 {
		t.Fatalf("20 jobs one after another ran on %d goroutines, want 1", len(ids))
	}

	release := make(chan struct{})
	var started sync.WaitGroup
	burst := map[int]bool{}
	var mu sync.Mutex
	for range 10 {
		started.Add(1)
		w.run(func() {
			mu.Lock()
			burst[goroutineID()] = true
			mu.Unlock()
			started.Done()
			<-release
		})
	}
	started.Wait()
	if len(burst) != 10 {
		t.Fatalf("10 jobs at once ran on %d goroutines, want 10", len(burst))
	}
	close(release)
	waitIdle(t, w, maxIdleWorkers)
	after := map[int]bool{}
	for range 20 {
		w.run(job)
		after[<-ran] = true
	}
	for id := range after {
		if !burst[id] && !ids[id] {
			t.Fatalf("a new goroutine ran a job while workers were idle")
		}
	}
}

// waitIdle waits until n workers wait for work; the deadline is a hang guard.
func waitIdle(t *testing.T, w *workers, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.idle.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers idle, want %d", w.idle.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
