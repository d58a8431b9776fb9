package tailer

import (
	"bytes"
	"strconv"
	"time"
)

// parseRFC3164 fills m from a BSD syslog message, "<PRI>TIMESTAMP [HOST] TAG: MSG",
// and reports whether raw was one. TIMESTAMP is "Mmm dd hh:mm:ss" (no year, no
// zone: the sender's clock is taken to be ours, this year, as syslog daemons do)
// or RFC 3339; HOST is left out by senders to /dev/log; TAG is APP or APP[PID].
// MSG is the rest, newlines and all: a frame (datagram, octet count) is one message.
func parseRFC3164(raw []byte, m *message) bool {
	pri, rest, ok := parsePRI(raw)
	if !ok {
		return false
	}
	stamp, rest, ok := parseStamp(rest)
	if !ok {
		return false
	}
	first, after, _ := bytes.Cut(rest, []byte{' '})
	host := []byte(nil)
	app, pid, msg, ok := parseTag(first, after)
	if !ok && len(first) > 0 {
		// Not a tag: a host name, and the tag comes next (or none: all is MSG).
		host = first
		second, after2, _ := bytes.Cut(after, []byte{' '})
		if app, pid, msg, ok = parseTag(second, after2); !ok {
			app, pid, msg = nil, nil, after
		}
	}
	m.severity, m.facility = pri%8, pri/8
	m.time = stamp
	m.host, m.app, m.procID = string(host), string(app), string(pid)
	m.text = append(m.text, msg...)
	return true
}

// parsePRI reads "<N>" with N from 0 to 191 (facility 0-23, severity 0-7).
func parsePRI(raw []byte) (pri int, rest []byte, ok bool) {
	end := bytes.IndexByte(raw, '>')
	if len(raw) < 3 || raw[0] != '<' || end < 2 || end > 4 {
		return 0, nil, false
	}
	n, err := strconv.Atoi(string(raw[1:end]))
	if err != nil || n < 0 || n > 191 || (end > 2 && raw[1] == '0') {
		return 0, nil, false
	}
	return n, raw[end+1:], true
}

// parseStamp reads "Mmm dd hh:mm:ss " (dd padded with a space) or an RFC 3339 time
// and the space after it.
func parseStamp(b []byte) (time.Time, []byte, bool) {
	if len(b) >= 16 && b[15] == ' ' {
		if t, err := time.Parse(time.Stamp, string(b[:15])); err == nil {
			return time.Date(time.Now().Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.Local), b[16:], true
		}
	}
	token, rest, found := bytes.Cut(b, []byte{' '})
	if !found {
		return time.Time{}, nil, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(token))
	return t, rest, err == nil
}

// parseTag reads "APP:" or "APP[PID]:" as token (the space after the colon was cut
// with it), and returns the message after it.
func parseTag(token, after []byte) (app, pid, msg []byte, ok bool) {
	colon := bytes.IndexByte(token, ':')
	if colon <= 0 {
		return nil, nil, nil, false
	}
	app, pid = token[:colon], nil
	if open := bytes.IndexByte(app, '['); open >= 0 {
		if open == 0 || app[len(app)-1] != ']' {
			return nil, nil, nil, false
		}
		app, pid = app[:open], app[open+1:len(app)-1]
	}
	// The message is what follows the colon: the rest of the token (a tag written
	// without a space) and the text after the space.
	msg = token[colon+1:]
	if len(after) > 0 || bytes.HasSuffix(token, []byte{':'}) {
		if len(msg) > 0 {
			msg = append(append(msg[:len(msg):len(msg)], ' '), after...)
		} else {
			msg = after
		}
	}
	return app, pid, msg, true
}
