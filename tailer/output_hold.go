package tailer

import (
	"errors"
	"fmt"
	"syscall"
)

// hold locks the output for a run of puts that must reach it with no other file's
// bytes in between: a long line written in pieces rather than copied whole into one
// buffer. release ends the run.
func (o *Output) hold() { o.mu.Lock() }

func (o *Output) release() { o.mu.Unlock() }

// put writes p while the output is held; it fails as write does.
func (o *Output) put(p []byte) error {
	if o.err != nil {
		return o.err
	}
	if _, err := o.w.Write(p); err != nil {
		if errors.Is(err, syscall.EPIPE) {
			err = ErrOutputClosed
		}
		o.err = fmt.Errorf("write output: %w", err)
	}
	return o.err
}
