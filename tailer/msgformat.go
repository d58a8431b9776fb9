package tailer

import (
	"bytes"
	"maps"
	"slices"
	"time"
)

// messageEncoder turns socket messages into output lines: raw (the message text,
// after a prefix that may hold the header's fields) or one JSON object with them.
type messageEncoder struct {
	json     bool
	prefix   Prefix
	tag, url string
	jsonHead []byte // `","tag":"…","file":"…"`
	stamp    []byte
}

func newMessageEncoder(f Format, tag, url string) *messageEncoder {
	e := &messageEncoder{json: f.JSON, prefix: f.Prefix, tag: tag, url: url}
	if f.JSON {
		h := []byte(`","tag":"`)
		h = appendJSONString(h, []byte(tag))
		h = append(h, `","file":"`...)
		e.jsonHead = append(appendJSONString(h, []byte(url)), '"')
	}
	return e
}

// append appends m as output lines to dst. partial marks a piece of a message cut
// at --max-line that continues in the next piece. One trailing newline of a whole
// message is its end, not an empty last line.
func (e *messageEncoder) append(dst []byte, m *message, partial bool, now time.Time) []byte {
	text := m.text
	if !partial {
		text = bytes.TrimSuffix(text, []byte{'\n'})
	}
	if e.json {
		return e.appendJSON(dst, m, text, partial, now)
	}
	if len(e.prefix) == 0 {
		dst = append(dst, text...)
		return append(dst, '\n')
	}
	e.stamp = e.stamp[:0]
	// Each line of a message gets the prefix, as lines of files do, so a reader
	// splitting on newlines sees every line tagged.
	for {
		line, rest, more := bytes.Cut(text, []byte{'\n'})
		dst = e.appendPrefix(dst, m, now)
		dst = append(dst, line...)
		dst = append(dst, '\n')
		if !more {
			return dst
		}
		text = rest
	}
}

func (e *messageEncoder) appendPrefix(dst []byte, m *message, now time.Time) []byte {
	for _, part := range e.prefix {
		var v string
		switch part.field {
		case "":
			dst = append(dst, part.literal...)
			continue
		case "time":
			if len(e.stamp) == 0 {
				e.stamp = now.AppendFormat(e.stamp, time.RFC3339Nano)
			}
			dst = append(dst, e.stamp...)
			continue
		case "tag":
			v = e.tag
		case "file":
			v = e.url
		case "severity":
			v = m.severityName()
		case "facility":
			v = m.facilityName()
		case "app":
			v = m.app
		case "host":
			v = m.host
		}
		if v == "" {
			v = "-" // syslog's NILVALUE: columns stay in place
		}
		dst = append(dst, v...)
	}
	return dst
}

func (e *messageEncoder) appendJSON(dst []byte, m *message, text []byte, partial bool, now time.Time) []byte {
	t := now
	if !m.time.IsZero() {
		t = m.time
	}
	dst = append(dst, `{"time":"`...)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, e.jsonHead...)
	if s := m.severityName(); s != "" {
		dst = appendJSONField(dst, "severity", s)
	}
	if s := m.facilityName(); s != "" {
		dst = appendJSONField(dst, "facility", s)
	}
	dst = appendJSONField(dst, "hostname", m.host)
	dst = appendJSONField(dst, "app", m.app)
	dst = appendJSONField(dst, "procid", m.procID)
	dst = appendJSONField(dst, "msgid", m.msgID)
	if len(m.sd) > 0 {
		dst = append(dst, `,"structured_data":{`...)
		for i, id := range slices.Sorted(maps.Keys(m.sd)) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONQuoted(dst, id)
			dst = append(dst, ":{"...)
			params := m.sd[id]
			for j, name := range slices.Sorted(maps.Keys(params)) {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendJSONQuoted(dst, name)
				dst = append(dst, ':')
				dst = appendJSONQuoted(dst, params[name])
			}
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"message":"`...)
	dst = appendJSONString(dst, text)
	if partial {
		return append(dst, `","partial":true}`+"\n"...)
	}
	return append(dst, `"}`+"\n"...)
}

// appendJSONField appends `,"name":"value"`, or nothing when value is empty.
func appendJSONField(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONQuoted(dst, value)
}

func appendJSONQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONString(dst, []byte(s))
	return append(dst, '"')
}
