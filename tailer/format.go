package tailer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
	"time"
	"unicode/utf8"
)

// Format says how lines are written to the output.
type Format struct {
	// JSON writes one object per line: {"time","tag","file","message"[,"partial"]}.
	JSON bool
	// Prefix is written before each raw line; see ParsePrefix.
	Prefix Prefix
}

// Prefix is a parsed --prefix template: literal text with {tag}, {file} and {time}.
type Prefix []prefixPart

type prefixPart struct {
	literal string
	field   string // "tag", "file", "time" or a syslog field; empty for a literal
}

// ParsePrefix parses a template such as "[{tag}] " or "{time} ".
func ParsePrefix(tmpl string) (Prefix, error) {
	var p Prefix
	for tmpl != "" {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			p = append(p, prefixPart{literal: tmpl})
			break
		}
		if open > 0 {
			p = append(p, prefixPart{literal: tmpl[:open]})
		}
		end := strings.IndexByte(tmpl[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed %q: use {tag}, {file} or {time}", tmpl[open:])
		}
		field := tmpl[open+1 : open+end]
		switch field {
		case "tag", "file", "time":
		case "severity", "facility", "app", "host": // socket messages; empty for files
		default:
			return nil, fmt.Errorf("unknown placeholder {%s}: use {tag}, {file}, {time}, {severity}, {facility}, {app} or {host}", field)
		}
		p = append(p, prefixPart{field: field})
		tmpl = tmpl[open+end+1:]
	}
	return p, nil
}

// encoder turns the segments of one file into output bytes. Tag and file are
// rendered once, when the file is opened, and the start of a line once per clock
// reading, so the per-line work is copying and the escape scan.
type encoder struct {
	json     bool
	plain    bool     // raw without prefix: segments go out as they are
	prefix   []string // rendered prefix pieces; "" at index i means the time goes there
	timeAt   []bool
	jsonHead []byte // `","tag":"…","file":"…","message":"`
	// head is what each line read at the time at starts with: the rendered prefix,
	// or `{"time":"…` and jsonHead. A batch of lines shares one clock reading.
	head  []byte
	at    time.Time
	built bool
}

func newEncoder(f Format, tag, file string) *encoder {
	e := &encoder{json: f.JSON, plain: !f.JSON && len(f.Prefix) == 0}
	if f.JSON {
		h := []byte(`","tag":"`)
		h = appendJSONString(h, []byte(tag))
		h = append(h, `","file":"`...)
		h = appendJSONString(h, []byte(file))
		e.jsonHead = append(h, `","message":"`...)
		return e
	}
	for _, part := range f.Prefix {
		switch part.field {
		case "tag":
			e.addLiteral(tag)
		case "file":
			e.addLiteral(file)
		case "time":
			e.prefix = append(e.prefix, "")
			e.timeAt = append(e.timeAt, true)
		default:
			e.addLiteral(part.literal)
		}
	}
	return e
}

func (e *encoder) addLiteral(s string) {
	if n := len(e.prefix); n > 0 && !e.timeAt[n-1] {
		e.prefix[n-1] += s
		return
	}
	e.prefix = append(e.prefix, s)
	e.timeAt = append(e.timeAt, false)
}

// lineHead returns what each line read at now starts with, formatting the time
// only when now is not the reading the last call had (the same value, copied: ==
// is the right test, as the formatted text depends on the location too).
func (e *encoder) lineHead(now time.Time) []byte {
	if e.built && now == e.at {
		return e.head
	}
	e.at, e.built = now, true
	if e.json {
		h := append(e.head[:0], `{"time":"`...)
		h = now.AppendFormat(h, time.RFC3339Nano)
		e.head = append(h, e.jsonHead...)
		return e.head
	}
	e.head = e.head[:0]
	for i, p := range e.prefix {
		if e.timeAt[i] {
			e.head = now.AppendFormat(e.head, time.RFC3339Nano)
		} else {
			e.head = append(e.head, p...)
		}
	}
	return e.head
}

// jsonTail ends a line's object; partial marks a piece of a longer line.
func jsonTail(partial bool) string {
	if partial {
		return `","partial":true}` + "\n"
	}
	return `"}` + "\n"
}

// appendSegment appends seg (a run of whole lines, or one line without its newline)
// to dst. partial marks a piece of a longer line that continues in the next segment.
// The time is taken once per segment: it is when the bytes were read.
func (e *encoder) appendSegment(dst, seg []byte, partial bool, now time.Time) []byte {
	if e.plain {
		dst = append(dst, seg...)
		if len(seg) == 0 || seg[len(seg)-1] != '\n' {
			dst = append(dst, '\n')
		}
		return dst
	}
	head := e.lineHead(now)
	if e.json {
		// One pass over the segment: the escape scan stops at each newline, so
		// lines are not searched for first.
		for len(seg) > 0 {
			dst = append(dst, head...)
			var n int
			dst, n = appendJSON(dst, seg, true)
			seg = seg[min(n+1, len(seg)):]
			dst = append(dst, jsonTail(partial && len(seg) == 0)...)
		}
		return dst
	}
	for len(seg) > 0 {
		dst = append(dst, head...)
		nl := bytes.IndexByte(seg, '\n')
		if nl < 0 {
			dst = append(dst, seg...)
			return append(dst, '\n')
		}
		dst = append(dst, seg[:nl+1]...)
		seg = seg[nl+1:]
	}
	return dst
}

// appendRecord appends a multiline record (lines as read; cut: the last one is a
// piece of a line cut at the maximum length). JSON makes it one object whose message
// holds the lines joined by "\n"; raw writes its lines as appendSegment does.
func (e *encoder) appendRecord(dst, rec []byte, cut bool, now time.Time) []byte {
	if !e.json {
		return e.appendSegment(dst, rec, false, now)
	}
	dst = append(dst, e.lineHead(now)...)
	dst = appendJSONString(dst, bytes.TrimSuffix(rec, []byte{'\n'}))
	return append(dst, jsonTail(cut)...)
}

const hexDigits = "0123456789abcdef"

// Word masks for jsonUnsafe8: a byte of ones, and a byte of high bits, in each lane.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// jsonUnsafe8 returns a mask with the high bit set in the lane (byte) of x of the
// first byte that needs care in a JSON string (not ASCII, below 0x20, '"' or '\\'),
// maybe in lanes after it too; 0 when no byte does. Log lines are mostly bytes
// that need none, so appendJSON skips them a word at a time.
//
// A lane of 0x80 or more sets its own high bit in x. Each lane v of the others
// ends up in [0x00, 0x7f] after subtracting 0x20, or after xoring with '"' (or
// '\\') and subtracting 1, unless v is below 0x20 (or is that byte): then it
// wraps to 0x80 or more and borrows from the lane above, which may flag that one
// falsely; lanes below the first such byte are never flagged.
func jsonUnsafe8(x uint64) uint64 {
	ctl := x - 0x20*lanes01
	quote := (x ^ '"'*lanes01) - lanes01
	slash := (x ^ '\\'*lanes01) - lanes01
	return (x | ctl | quote | slash) & lanes80
}

// jsonSafeRun returns the index of the first byte of s from i on that needs care
// (as jsonUnsafe8 says), or len(s): the scan of a long run of plain text.
func jsonSafeRun(s []byte, i int) int {
	for ; i+16 <= len(s); i += 16 {
		// Two words a turn: their scans are independent, so they overlap.
		w := s[i : i+16]
		lo := jsonUnsafe8(binary.LittleEndian.Uint64(w))
		hi := jsonUnsafe8(binary.LittleEndian.Uint64(w[8:]))
		if lo|hi != 0 {
			if lo != 0 {
				return i + bits.TrailingZeros64(lo)/8
			}
			return i + 8 + bits.TrailingZeros64(hi)/8
		}
	}
	if i+8 <= len(s) {
		if m := jsonUnsafe8(binary.LittleEndian.Uint64(s[i : i+8])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
		i += 8
	}
	for ; i < len(s) && jsonSafe(s[i]); i++ {
	}
	return i
}

// jsonSafe reports whether c goes into a JSON string as it is.
func jsonSafe(c byte) bool { return c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' }

// appendJSONString appends s as the inside of a JSON string. Invalid UTF-8 becomes
// U+FFFD so the output is always valid JSON; the raw format keeps the bytes.
func appendJSONString(dst, s []byte) []byte {
	dst, _ = appendJSON(dst, s, false)
	return dst
}

// appendJSON appends s as appendJSONString does; with lineEnd, it stops at the first
// newline instead of escaping it. It returns where it stopped: the newline's index,
// or len(s).
func appendJSON(dst, s []byte, lineEnd bool) ([]byte, int) {
	start, i := 0, 0
	for i < len(s) {
		// Find the next byte that needs care: by words, then byte at a time to the
		// end of its word, as text that needs care here likely needs it again
		// soon (a rune may end past that word).
		end := len(s)
		if i+8 <= len(s) {
			if m := jsonUnsafe8(binary.LittleEndian.Uint64(s[i:])); m != 0 {
				end = i + 8
				i += bits.TrailingZeros64(m) / 8
			} else {
				i = jsonSafeRun(s, i+8)
				end = min(i+8, len(s))
			}
		}
		for i < end {
			c := s[i]
			if jsonSafe(c) {
				i++
				continue
			}
			if c >= utf8.RuneSelf {
				r, size := utf8.DecodeRune(s[i:])
				if r != utf8.RuneError || size > 1 {
					i += size
					continue
				}
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
			} else {
				if c == '\n' && lineEnd {
					return append(dst, s[start:i]...), i
				}
				dst = append(dst, s[start:i]...)
				dst = appendEscape(dst, c)
			}
			i++
			start = i
		}
	}
	return append(dst, s[start:]...), len(s)
}

// appendEscape appends the escape of c, an ASCII byte JSON does not take as it is.
func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

const (
	// encodeRun is the most input one appendSegment call encodes when writing: it
	// bounds the output buffer whatever the lines (an empty line is about 100 bytes
	// of JSON), and is the reader's usual segment, which thus takes one call.
	encodeRun = readSize
	// writeChunk is how much encoded output is gathered before a write while a
	// long segment goes out in pieces. A file's read (fileReadSize) of 100-byte
	// lines is about 140 KiB of JSON: at 64 KiB it took two writes, one of them
	// small; at 128 KiB (cat's writes too), one, and catching up into a pipe took
	// about a sixth less time (bench/compare.sh catchup, into drain).
	writeChunk = 128 << 10
)

// writeSegment writes seg to out as appendSegment encodes it, using buf as the output
// buffer, and returns buf for reuse. A segment longer than encodeRun (a long line,
// or a run of lines read into a buffer a long line grew) goes out in pieces under one
// hold of out: neither it nor its encoding is copied whole, so a line of --max-line
// bytes costs memory once, in the reader, and buf stays small.
func (e *encoder) writeSegment(out *Output, buf, seg []byte, partial bool, now time.Time) ([]byte, error) {
	if len(seg) <= encodeRun {
		buf = e.appendSegment(buf[:0], seg, partial, now)
		return buf, out.write(buf)
	}
	out.hold()
	defer out.release()
	buf = buf[:0]
	var err error
	for len(seg) > 0 && err == nil {
		run := seg[:min(len(seg), encodeRun)]
		if n := bytes.LastIndexByte(run, '\n'); n >= 0 || len(seg) <= encodeRun {
			if len(seg) > encodeRun {
				run = run[:n+1]
			}
			seg = seg[len(run):]
			buf = e.appendSegment(buf, run, partial && len(seg) == 0, now)
			if len(buf) >= writeChunk {
				err = out.put(buf)
				buf = buf[:0]
			}
			continue
		}
		line, rest, _ := bytes.Cut(seg, []byte{'\n'})
		seg = rest
		buf, err = e.putLongLine(out, buf, line, partial && len(seg) == 0, now)
	}
	if err == nil && len(buf) > 0 {
		err = out.put(buf)
	}
	return buf[:0], err
}

// writeRecord writes a multiline record to out as appendRecord encodes it, in
// pieces when it is long, as writeSegment does.
func (e *encoder) writeRecord(out *Output, buf, rec []byte, cut bool, now time.Time) ([]byte, error) {
	if !e.json {
		return e.writeSegment(out, buf, rec, false, now)
	}
	if len(rec) <= encodeRun {
		buf = e.appendRecord(buf[:0], rec, cut, now)
		return buf, out.write(buf)
	}
	out.hold()
	defer out.release()
	buf, err := e.putLongLine(out, buf[:0], bytes.TrimSuffix(rec, []byte{'\n'}), cut, now)
	if err == nil && len(buf) > 0 {
		err = out.put(buf)
	}
	return buf[:0], err
}

// putLongLine puts one line (without its newline) to the held out after what buf
// holds, encoded as appendSegment does: raw bytes straight from line, JSON escaped
// in pieces of about writeChunk. It returns what is left to put in buf.
func (e *encoder) putLongLine(out *Output, buf, line []byte, partial bool, now time.Time) ([]byte, error) {
	if !e.plain {
		buf = append(buf, e.lineHead(now)...)
	}
	if !e.json {
		if len(buf) > 0 {
			if err := out.put(buf); err != nil {
				return buf[:0], err
			}
		}
		if err := out.put(line); err != nil {
			return buf[:0], err
		}
		return append(buf[:0], '\n'), nil
	}
	for len(line) > 0 {
		// Cut at a rune's start, so each piece escapes as it would in the whole.
		n := len(line)
		if n > writeChunk {
			n = cutPoint(line, writeChunk)
		}
		buf = appendJSONString(buf, line[:n])
		line = line[n:]
		if len(buf) >= writeChunk {
			if err := out.put(buf); err != nil {
				return buf[:0], err
			}
			buf = buf[:0]
		}
	}
	return append(buf, jsonTail(partial)...), nil
}
