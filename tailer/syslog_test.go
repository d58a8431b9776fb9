package tailer

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var msgTime = time.Date(2026, 11, 23, 10, 0, 0, 123000000, time.UTC)

func TestSyslogParse(t *testing.T) {
	year := time.Now().Year()
	tests := []struct {
		name, in string
		want     message
	}{
		{"RFC 5424", `<165>1 2026-11-23T10:00:00.123Z web01 nginx 42 ID7 [ex@32473 a="1" b="x\"y"] GET / 200`,
			message{text: []byte("GET / 200"), time: msgTime, severity: 5, facility: 20, host: "web01", app: "nginx",
				procID: "42", msgID: "ID7", sd: map[string]map[string]string{"ex@32473": {"a": "1", "b": `x"y`}}}},
		{"RFC 5424 with BOM and nil values", "<14>1 - - - - - - \xef\xbb\xbfhé",
			message{text: []byte("hé"), severity: 6, facility: 1}},
		{"RFC 3164 from /dev/log (no host)", "<190>Nov 23 10:00:00 haproxy[7]: 127.0.0.1:1234 fe be 200",
			message{text: []byte("127.0.0.1:1234 fe be 200"), time: time.Date(year, 11, 23, 10, 0, 0, 0, time.Local),
				severity: 6, facility: 23, app: "haproxy", procID: "7"}},
		{"RFC 3164 with host", "<13>Nov  3 10:00:00 web01 app: two\nlines",
			message{text: []byte("two\nlines"), time: time.Date(year, 11, 3, 10, 0, 0, 0, time.Local),
				severity: 5, facility: 1, host: "web01", app: "app"}},
		{"no header", "plain text", message{text: []byte("plain text"), severity: -1, facility: -1}},
		{"PRI only", "<13>hello", message{text: []byte("<13>hello"), severity: -1, facility: -1}},
		{"bad 5424 timestamp", "<13>1 yesterday h a - - - x", message{text: []byte("<13>1 yesterday h a - - - x"), severity: -1, facility: -1}},
		{"PRI out of range", "<192>Nov 23 10:00:00 a: b", message{text: []byte("<192>Nov 23 10:00:00 a: b"), severity: -1, facility: -1}},
	}
	p := newSyslogParser()
	var m message
	for _, tt := range tests {
		p.parse([]byte(tt.in), &m)
		got, _ := json.Marshal(messageView(&m))
		want, _ := json.Marshal(messageView(&tt.want))
		if string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, want)
		}
	}
}

func messageView(m *message) map[string]any {
	return map[string]any{"text": string(m.text), "time": m.time.UnixNano(), "sev": m.severity, "fac": m.facility,
		"host": m.host, "app": m.app, "procid": m.procID, "msgid": m.msgID, "sd": m.sd}
}

func TestMessageEncoder(t *testing.T) {
	m := message{text: []byte("GET / 200\nsecond\n"), time: msgTime, severity: 5, facility: 20, host: "web01", app: "nginx",
		procID: "42", msgID: "ID7", sd: map[string]map[string]string{"z@1": {"b": "2", "a": "1"}, "a@1": {}}}
	plain := message{text: []byte("no header"), severity: -1, facility: -1}
	now := time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)
	prefix, err := ParsePrefix("{time} [{tag}] {severity}.{facility} {host} {app}: ")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		f       Format
		m       *message
		partial bool
		want    string
	}{
		{"raw", Format{}, &m, false, "GET / 200\nsecond\n"},
		{"raw piece", Format{}, &plain, true, "no header\n"},
		{"prefix, every line", Format{Prefix: prefix}, &m, false,
			"2026-11-23T11:00:00Z [web] notice.local4 web01 nginx: GET / 200\n2026-11-23T11:00:00Z [web] notice.local4 web01 nginx: second\n"},
		{"prefix without fields", Format{Prefix: prefix}, &plain, false, "2026-11-23T11:00:00Z [web] -.- - -: no header\n"},
		{"json", Format{JSON: true}, &m, false,
			`{"time":"2026-11-23T10:00:00.123Z","tag":"web","file":"udp://127.0.0.1:514","severity":"notice","facility":"local4",` +
				`"hostname":"web01","app":"nginx","procid":"42","msgid":"ID7","structured_data":{"a@1":{},"z@1":{"a":"1","b":"2"}},` +
				`"message":"GET / 200\nsecond"}` + "\n"},
		{"json without fields, partial", Format{JSON: true}, &plain, true,
			`{"time":"2026-11-23T11:00:00Z","tag":"web","file":"udp://127.0.0.1:514","message":"no header","partial":true}` + "\n"},
	}
	for _, tt := range tests {
		e := newMessageEncoder(tt.f, "web", "udp://127.0.0.1:514")
		if got := string(e.append(nil, tt.m, tt.partial, now)); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// FuzzMessageJSON checks that any bytes, parsed as syslog or not, become exactly one
// valid JSON object whose fields are valid UTF-8, and that a message that does not
// parse comes out whole.
func FuzzMessageJSON(f *testing.F) {
	f.Add([]byte(`<165>1 2026-11-23T10:00:00.123Z web01 nginx 42 ID7 [ex@32473 a="1" b="x\"y\\"] GET / 200`), "t", false)
	f.Add([]byte("<190>Nov 23 10:00:00 haproxy[7]: a\n\"b\"\x00\xff"), "t", true)
	f.Add([]byte("<13>1 - h\xffost a\"pp - - [x@1 k=\"\xc3\"] m"), "t\xfe", false)
	f.Fuzz(func(t *testing.T, raw []byte, tag string, partial bool) {
		p := newSyslogParser()
		var m message
		p.parse(raw, &m)
		out := newMessageEncoder(Format{JSON: true}, tag, "unix:///a").append(nil, &m, partial, msgTime)
		if len(out) == 0 || out[len(out)-1] != '\n' || strings.Count(string(out), "\n") != 1 {
			t.Fatalf("not one line: %q", out)
		}
		var obj map[string]any
		if err := json.Unmarshal(out, &obj); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		if !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8 in %q", out)
		}
		if m.severity < 0 {
			want := string([]rune(string(raw))) // each invalid byte is one U+FFFD
			if !partial {
				want = strings.TrimSuffix(want, "\n")
			}
			if obj["message"] != want {
				t.Fatalf("unparsed message %q came out as %q", raw, obj["message"])
			}
		}
		raw2 := newMessageEncoder(Format{}, tag, "unix:///a").append(nil, &m, partial, msgTime)
		if raw2[len(raw2)-1] != '\n' {
			t.Fatalf("raw output without its newline: %q", raw2)
		}
	})
}
