package tailer

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"time"
)

// parking lets an idle follower give up its goroutine: a goroutine blocked in a wait
// keeps its stack (4 KiB or more) and the runtime's records of the wait, which for a
// thousand idle files is most of the sidecar's memory. A parked follower keeps its
// whole state in its struct; the next wakeup (an event in its folder, a poll, ctx
// done) starts a goroutine that goes on where it stopped.
//
// The follower marks itself parked and then looks for a wakeup that came before;
// a waker sends its wakeup and then takes the mark. Whichever order they run in,
// one of them sees the other, and the mark is taken once: exactly one goroutine
// goes on.
type parking struct {
	parked atomic.Bool
	resume func() // starts a goroutine that goes on following
	// bases are the base names of the path and of its link target: a write to
	// another file of the folders (see written) leaves the follower parked, so
	// one busy file among a thousand idle ones does not start a thousand
	// goroutines at each write.
	bases atomic.Pointer[[2]string]
}

// own records the names under which writes to the file being read come: path,
// and target when path is a symbolic link ("" when it is not).
func (p *parking) own(path, target string) {
	b := [2]string{filepath.Base(path), filepath.Base(path)}
	if target != "" {
		b[1] = filepath.Base(target)
	}
	if old := p.bases.Load(); old == nil || *old != b {
		p.bases.Store(&b)
	}
}

// concerns reports whether a wakeup for a write to written ("": anything else
// happened) may concern the file being read. A file written under another name
// (a hard link) is seen at the next safety poll.
func (p *parking) concerns(written string) bool {
	b := p.bases.Load()
	if written == "" || b == nil {
		return true
	}
	base := filepath.Base(written)
	return base == b[0] || base == b[1]
}

// park reports whether the follower parked: its goroutine must then return without
// touching the follower again. False means a wakeup came meanwhile: go on here.
func (p *parking) park(wake chan struct{}) bool {
	p.parked.Store(true)
	select {
	case <-wake:
		// Whoever takes the mark goes on: us, or the goroutine the waker starts.
		return !p.parked.CompareAndSwap(true, false)
	default:
		return true
	}
}

// unpark goes on with a parked follower, on a new goroutine, unless the wakeup is
// for a write to another file. Called after a wakeup was sent to its subscription.
func (p *parking) unpark(written string) {
	if p.concerns(written) && p.parked.CompareAndSwap(true, false) {
		p.resume()
	}
}

// pause waits like wait, but when nothing but a wakeup (or ctx) can end the wait,
// that is a and b are nil, it parks instead and reports true: the caller's goroutine
// must then end.
func (k *waker) pause(ctx context.Context, a, b <-chan time.Time) (parked bool) {
	if a != nil || b != nil || k.park.resume == nil || ctx.Err() != nil {
		k.wait(ctx, a, b)
		return false
	}
	if k.idle != nil {
		k.idle()
	}
	k.lr.Release()
	return k.park.park(k.sub.wake)
}
