package tailer

import (
	"bytes"
	"io"
)

// framing is how a stream connection separates its messages.
type framing int

const (
	framingUnknown framing = iota // nothing read yet
	framingLines                  // each message ends with '\n' (RFC 6587 non-transparent framing)
	framingOctets                 // "LEN SP MSG" (RFC 6587 octet counting, RFC 5425)
)

// maxFrameDigits bounds MSG-LEN: 9 digits (under 1 GB) is far above any real
// message, and more digits cannot be a length header.
const maxFrameDigits = 9

// Framer splits the bytes of one stream connection into messages. The framing is
// decided by the connection's first bytes: "LEN <" (digits, a space, then a syslog
// PRI) is octet counting, anything else is one message per line. Like LineReader it
// hands out a message longer than max in pieces, so memory stays within
// max+readSize whatever a client sends (a length header of 999999999 included).
type Framer struct {
	readBuf
	max  int
	mode framing
	left int // octet counting: bytes of the current frame still to hand out; -1 between frames
}

// NewFramer returns a framer that cuts messages longer than max bytes into pieces.
func NewFramer(max int) *Framer {
	if max < 1 {
		max = 1
	}
	return &Framer{max: max, left: -1}
}

// Octets reports whether the connection uses octet counting.
func (fr *Framer) Octets() bool { return fr.mode == framingOctets }

// Fill does one read from src into the buffer and returns what that read returned.
func (fr *Framer) Fill(src io.Reader) (int, error) {
	fr.room(readSize, fr.max, nil)
	return fr.read(src)
}

// Next returns the next message, without its framing (the newline or the length
// header), or a piece of at most max bytes of a longer one: partial is then true
// and the following call continues it. ok is false when more bytes are needed.
func (fr *Framer) Next() (msg []byte, partial, ok bool) {
	data := fr.buf[fr.r:fr.w]
	if fr.mode == framingUnknown {
		if fr.mode = detectFraming(data); fr.mode == framingUnknown {
			return nil, false, false
		}
	}
	if fr.mode == framingOctets {
		for fr.left < 0 {
			n, size, done := frameHeader(data)
			switch {
			case !done:
				return nil, false, false
			case size < 0:
				// Not a length header: the sender is not framing as it began. The
				// rest of the connection is read as lines, so nothing is dropped.
				fr.mode = framingLines
				return fr.Next()
			}
			fr.r += n
			data = data[n:]
			fr.left = size
		}
		switch {
		case fr.left <= len(data) && fr.left <= fr.max:
			msg = fr.take(fr.left)
			fr.left = -1
			return msg, false, true
		case len(data) > fr.max:
			msg = fr.take(cutPoint(data, fr.max))
			fr.left -= len(msg)
			return msg, true, true
		}
		return nil, false, false
	}
	nl := bytes.IndexByte(data, '\n')
	if nl >= 0 && nl <= fr.max {
		msg = fr.take(nl + 1)
		return msg[:nl], false, true
	}
	if len(data) > fr.max {
		return fr.take(cutPoint(data, fr.max)), true, true
	}
	return nil, false, false
}

// Rest returns what is left once the connection ended (a last line without its
// newline, a frame shorter than its header said) and forgets it: it is relayed as
// it is rather than dropped.
func (fr *Framer) Rest() []byte {
	fr.left = -1
	return fr.take(fr.w - fr.r)
}

func (fr *Framer) take(n int) []byte {
	msg := fr.buf[fr.r : fr.r+n]
	fr.r += n
	return msg
}

// detectFraming looks at a connection's first bytes: octet counting when they are
// "LEN <", lines otherwise. A line starting with digits ("2026-11-23 …", "200 OK")
// is not taken for a length: only a space and then a PRI's '<' are.
func detectFraming(data []byte) framing {
	for i, c := range data {
		switch {
		case c >= '0' && c <= '9' && i < maxFrameDigits && (i > 0 || c != '0'):
			continue
		case c == ' ' && i > 0:
			if i+1 == len(data) {
				return framingUnknown
			}
			if data[i+1] == '<' {
				return framingOctets
			}
		}
		return framingLines
	}
	return framingUnknown
}

// frameHeader parses "LEN SP" at the start of data. done is false when data ends
// inside it; size is -1 when data does not start with one.
func frameHeader(data []byte) (n, size int, done bool) {
	size = 0
	for i, c := range data {
		switch {
		case c >= '0' && c <= '9' && i < maxFrameDigits && (i > 0 || c != '0'):
			size = size*10 + int(c-'0')
		case c == ' ' && i > 0:
			return i + 1, size, true
		default:
			return 0, -1, true
		}
	}
	return 0, 0, false
}
