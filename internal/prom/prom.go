// Package prom writes metrics in the Prometheus text exposition format (0.0.4).
//
// sidetail writes its own exposition instead of using a metrics library: both
// github.com/VictoriaMetrics/metrics and prometheus/client_golang pull in net/http
// (and client_golang protobuf too), which takes the static binary from 5.9 MiB to
// 7.2 MiB and 9.9 MiB, past the 6 MiB budget of a sidecar image. The format is a
// few lines of text; promtool and a real Prometheus check it in the tests.
package prom

import (
	"math"
	"strconv"
	"strings"
)

// Type is a metric family's type.
type Type string

// The types sidetail exposes.
const (
	Counter Type = "counter"
	Gauge   Type = "gauge"
)

// Writer builds one exposition. Every sample of a family must follow its Family
// call, before the next family starts.
type Writer struct {
	buf    []byte
	family string
}

// Family starts a metric family: its HELP and TYPE lines.
func (w *Writer) Family(name string, t Type, help string) {
	w.family = name
	w.buf = append(w.buf, "# HELP "...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, ' ')
	w.buf = appendHelp(w.buf, help)
	w.buf = append(w.buf, "\n# TYPE "...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, t...)
	w.buf = append(w.buf, '\n')
}

// Sample writes one sample of the current family. labels are name, value pairs.
func (w *Writer) Sample(v float64, labels ...string) {
	w.buf = append(w.buf, w.family...)
	if len(labels) > 0 {
		w.buf = append(w.buf, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = append(w.buf, labels[i]...)
			w.buf = append(w.buf, `="`...)
			w.buf = appendLabelValue(w.buf, labels[i+1])
			w.buf = append(w.buf, '"')
		}
		w.buf = append(w.buf, '}')
	}
	w.buf = append(w.buf, ' ')
	w.buf = appendValue(w.buf, v)
	w.buf = append(w.buf, '\n')
}

// Int writes a sample with an integer value.
func (w *Writer) Int(v int64, labels ...string) { w.Sample(float64(v), labels...) }

// Each writes a family with one sample per key, labelled label=key: the series
// of one metric across tags or paths.
func (w *Writer) Each(name string, t Type, help, label string, keys []string, v func(i int) float64) {
	w.Family(name, t, help)
	for i, k := range keys {
		w.Sample(v(i), label, k)
	}
}

// Bytes returns the exposition written so far.
func (w *Writer) Bytes() []byte { return w.buf }

// ContentType is the media type of the exposition.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

func appendValue(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// helpEscaper and labelEscaper follow the format: HELP escapes backslash and
// newline, label values also the double quote. Paths and tags may hold any of them.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func appendHelp(b []byte, s string) []byte { return append(b, helpEscaper.Replace(s)...) }

// appendLabelValue escapes s; the format wants UTF-8, and a path need not be.
func appendLabelValue(b []byte, s string) []byte {
	return append(b, labelEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD"))...)
}
