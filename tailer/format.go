package tailer

import (
	"bytes"
	"encoding/binary"
	"fmt"
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
// rendered once, when the file is opened, so the per-line work is copying.
type encoder struct {
	json     bool
	plain    bool     // raw without prefix: segments go out as they are
	prefix   []string // rendered prefix pieces; "" at index i means the time goes there
	timeAt   []bool
	jsonHead []byte // `","tag":"…","file":"…","message":"`
	stamp    []byte
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
	e.stamp = now.AppendFormat(e.stamp[:0], time.RFC3339Nano)
	for len(seg) > 0 {
		line := seg
		next := []byte(nil)
		if nl := bytes.IndexByte(seg, '\n'); nl >= 0 {
			line, next = seg[:nl], seg[nl+1:]
		}
		seg = next
		if e.json {
			dst = append(dst, `{"time":"`...)
			dst = append(dst, e.stamp...)
			dst = append(dst, e.jsonHead...)
			dst = appendJSONString(dst, line)
			if partial && len(seg) == 0 {
				dst = append(dst, `","partial":true}`+"\n"...)
			} else {
				dst = append(dst, `"}`+"\n"...)
			}
			continue
		}
		for i, p := range e.prefix {
			if e.timeAt[i] {
				dst = append(dst, e.stamp...)
			} else {
				dst = append(dst, p...)
			}
		}
		dst = append(dst, line...)
		dst = append(dst, '\n')
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
	e.stamp = now.AppendFormat(e.stamp[:0], time.RFC3339Nano)
	dst = append(dst, `{"time":"`...)
	dst = append(dst, e.stamp...)
	dst = append(dst, e.jsonHead...)
	dst = appendJSONString(dst, bytes.TrimSuffix(rec, []byte{'\n'}))
	if cut {
		return append(dst, `","partial":true}`+"\n"...)
	}
	return append(dst, `"}`+"\n"...)
}

const hexDigits = "0123456789abcdef"

// Word masks for jsonSafe8: a byte of ones, and a byte of high bits, in each lane.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// jsonSafe8 reports whether none of the 8 bytes of x needs escaping: each is ASCII,
// at least 0x20, and neither '"' nor '\\'. Log lines are mostly such bytes, so
// appendJSONString skips them a word at a time. When every lane of v is below 0x80,
// (v-n*lanes01)&^v has some high bit set exactly when some lane is below n (the
// "hasless" bit trick; lanes above the first hit may be flagged falsely, which does
// not matter for "any"); a lane of 0x80 or more sets its own high bit in x.
func jsonSafe8(x uint64) bool {
	ctl := (x - 0x20*lanes01) &^ x
	quote := x ^ '"'*lanes01
	quote = (quote - lanes01) &^ quote
	slash := x ^ '\\'*lanes01
	slash = (slash - lanes01) &^ slash
	return (x|ctl|quote|slash)&lanes80 == 0
}

// appendJSONString appends s as the inside of a JSON string. Invalid UTF-8 becomes
// U+FFFD so the output is always valid JSON; the raw format keeps the bytes.
func appendJSONString(dst, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && jsonSafe8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
			continue
		}
		// This word needs care: take its bytes one at a time (a rune may end past
		// it), then try whole words again.
		for end := min(i+8, len(s)); i < end; {
			c := s[i]
			if c < utf8.RuneSelf {
				if c >= 0x20 && c != '"' && c != '\\' {
					i++
					continue
				}
				dst = append(dst, s[start:i]...)
				switch c {
				case '"', '\\':
					dst = append(dst, '\\', c)
				case '\n':
					dst = append(dst, '\\', 'n')
				case '\r':
					dst = append(dst, '\\', 'r')
				case '\t':
					dst = append(dst, '\\', 't')
				default:
					dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
				}
				i++
				start = i
				continue
			}
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
		}
	}
	return append(dst, s[start:]...)
}

const (
	// encodeRun is the most input one appendSegment call encodes when writing: it
	// bounds the output buffer whatever the lines (an empty line is about 100 bytes
	// of JSON), and is the reader's usual segment, which thus takes one call.
	encodeRun = readSize
	// writeChunk is how much encoded output is gathered before a write while a
	// long segment goes out in pieces.
	writeChunk = 64 << 10
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
	e.stamp = now.AppendFormat(e.stamp[:0], time.RFC3339Nano)
	if !e.json {
		if !e.plain {
			for i, p := range e.prefix {
				if e.timeAt[i] {
					buf = append(buf, e.stamp...)
				} else {
					buf = append(buf, p...)
				}
			}
		}
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
	buf = append(buf, `{"time":"`...)
	buf = append(buf, e.stamp...)
	buf = append(buf, e.jsonHead...)
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
	if partial {
		return append(buf, `","partial":true}`+"\n"...), nil
	}
	return append(buf, `"}`+"\n"...), nil
}
