package tailer

import (
	"bytes"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

// message is one message received on a socket: its text and, when it was syslog
// that parsed, the fields of its header.
type message struct {
	// text is the MSG part, or the whole message when it is a plain line or did not
	// parse: such a message is relayed as it came, never dropped.
	text     []byte
	time     time.Time // the header's timestamp; zero without one
	severity int       // 0-7, -1 without a header
	facility int       // 0-23, -1 without a header
	host     string
	app      string
	procID   string
	msgID    string
	sd       map[string]map[string]string // RFC 5424 structured data
}

// reset clears the header fields, keeping the text buffer's memory.
func (m *message) reset() {
	*m = message{text: m.text[:0], severity: -1, facility: -1}
}

// syslogParser parses RFC 5424 messages with leodido/go-syslog's machine
// (generated from a Ragel grammar, fuzzed upstream), and RFC 3164 ones with
// parseRFC3164: go-syslog's RFC 3164 machine costs 0.77 MB of the static binary,
// which the 6 MiB budget cannot hold, for a header of four fields. One parser per
// connection: the machine keeps state between calls.
type syslogParser struct {
	rfc5424 syslog.Machine
}

func newSyslogParser() *syslogParser {
	return &syslogParser{rfc5424: rfc5424.NewMachine()}
}

var utf8BOM = []byte("\xef\xbb\xbf")

// parse fills m from raw. A message that is not syslog, or that either grammar
// rejects, becomes m.text as it is, with no fields.
func (p *syslogParser) parse(raw []byte, m *message) {
	m.reset()
	switch {
	case isRFC5424(raw):
		// The machines can return neither a message nor an error: relay as is.
		if msg, err := p.rfc5424.Parse(raw); err == nil && msg != nil {
			sm := msg.(*rfc5424.SyslogMessage)
			m.setBase(&sm.Base)
			if sm.StructuredData != nil {
				m.sd = *sm.StructuredData
			}
			// The BOM marks the text as UTF-8 (RFC 5424 6.4): not part of it.
			m.text = bytes.TrimPrefix(m.text, utf8BOM)
			return
		}
	case len(raw) > 0 && raw[0] == '<':
		if parseRFC3164(raw, m) {
			return
		}
	}
	m.reset()
	m.text = append(m.text, raw...)
}

func (m *message) setBase(b *syslog.Base) {
	if b.Severity != nil && b.Facility != nil {
		m.severity, m.facility = int(*b.Severity), int(*b.Facility)
	}
	if b.Timestamp != nil {
		m.time = *b.Timestamp
	}
	m.host = str(b.Hostname)
	m.app = str(b.Appname)
	m.procID = str(b.ProcID)
	m.msgID = str(b.MsgID)
	if b.Message != nil {
		m.text = append(m.text, *b.Message...)
	}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// isRFC5424 reports whether raw starts like an RFC 5424 message: "<PRI>VERSION ",
// where RFC 3164 has a timestamp after the PRI.
func isRFC5424(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '<' {
		return false
	}
	end := bytes.IndexByte(raw[:min(len(raw), 5)], '>')
	if end < 0 {
		return false
	}
	v := raw[end+1:]
	for i, c := range v {
		switch {
		case c >= '1' && c <= '9' && i == 0, c >= '0' && c <= '9' && i > 0 && i < 3:
		case c == ' ' && i > 0:
			return true
		default:
			return false
		}
	}
	return false
}

// The keywords of RFC 5424's severity and facility codes, as syslog.conf and
// logger -p name them.
var (
	severityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}
	facilityNames = [24]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
		"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}
)

func (m *message) severityName() string {
	if m.severity < 0 || m.severity >= len(severityNames) {
		return ""
	}
	return severityNames[m.severity]
}

func (m *message) facilityName() string {
	if m.facility < 0 || m.facility >= len(facilityNames) {
		return ""
	}
	return facilityNames[m.facility]
}
