package tailer

import "sync/atomic"

// workers run followers, each until it parks or ends (see waker.park), on
// goroutines kept between runs. A goroutine started for each wakeup of a parked
// follower grew its stack anew each time, from 2 KiB to the 8 KiB that reading and
// writing take, by copies: that cost more than the wakeup itself (about a sixth
// more CPU following a live file, bench/compare.sh steady). A worker left with
// nothing to run waits for the next follower to wake, unless maxIdleWorkers
// already do: after a burst, the goroutines (and stacks) it took go.
type workers struct {
	work chan func() // to an idle worker
	idle atomic.Int32
}

// maxIdleWorkers is how many workers may wait for work: one follower busy while
// another wakes is the usual most.
const maxIdleWorkers = 2

func newWorkers() *workers { return &workers{work: make(chan func())} }

// run runs job on an idle worker, or on a new one when none is idle. A nil
// workers (tests) starts a goroutine each time.
func (w *workers) run(job func()) {
	if w == nil {
		go job()
		return
	}
	select {
	case w.work <- job:
	default:
		go w.loop(job)
	}
}

// loop runs job, then the jobs handed to it while it waits, until stop or enough
// other workers wait.
func (w *workers) loop(job func()) {
	for {
		job()
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		next, ok := <-w.work
		w.idle.Add(-1)
		if !ok {
			return
		}
		job = next
	}
}

// stop ends the idle workers, once every follower has ended: none may be run then.
func (w *workers) stop() { close(w.work) }
