package syncbuf

import (
	"bufio"
	"io"
	"sync"
)

// Lines holds the lines a program wrote, collected on one goroutine while the
// test looks at them on another.
type Lines struct {
	mu    sync.Mutex
	lines []string
}

// Collect reads r line by line until it ends, keeping each line with its newline
// (the last one may have none). added, if not nil, is called after each line.
func (l *Lines) Collect(r io.Reader, added func()) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			l.mu.Lock()
			l.lines = append(l.lines, line)
			l.mu.Unlock()
			if added != nil {
				added()
			}
		}
		if err != nil {
			return
		}
	}
}

// Len returns how many lines came so far.
func (l *Lines) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// All returns a copy of the lines so far.
func (l *Lines) All() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Last returns the latest line so far, "" if none came yet.
func (l *Lines) Last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return ""
	}
	return l.lines[len(l.lines)-1]
}
