package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Report is what happened to one object, for one line on stderr.
type Report struct {
	Object  string // kind/name, as kubectl prints it: deployment/web
	Outcome string // injected (2 files), skipped (no pod template)
	Err     error  // the object could not be injected: nothing may be written
}

func (r Report) String() string {
	if r.Err != nil {
		return r.Object + ": error: " + r.Err.Error()
	}
	return r.Object + ": " + r.Outcome
}

// Stream injects the sidecar into every workload of a YAML stream (documents
// separated by ---) or a JSON document, and returns the stream with each changed
// document replaced. Everything else, separators and comments between documents
// included, is returned byte for byte. A report with Err set means the output
// must not be used.
func Stream(cfg Config, data []byte) ([]byte, []Report) {
	var out bytes.Buffer
	var reports []Report
	for i, doc := range splitDocuments(data) {
		out.Write(doc.separator)
		changed, reps := document(cfg, doc.body, i+1)
		reports = append(reports, reps...)
		if changed == nil {
			out.Write(doc.body)
		} else {
			out.Write(changed)
		}
	}
	return out.Bytes(), reports
}

type rawDocument struct {
	separator []byte // the --- line before the body, or nothing for the first
	body      []byte
}

// splitDocuments cuts a YAML stream at its document separators: lines starting
// with --- followed by nothing, a space or a comment.
func splitDocuments(data []byte) []rawDocument {
	docs := []rawDocument{{}}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		data = data[len(line):]
		if rest, ok := bytes.CutPrefix(line, []byte("---")); ok && (len(bytes.TrimSpace(rest)) == 0 || rest[0] == ' ' || rest[0] == '\t') {
			docs = append(docs, rawDocument{separator: line})
			continue
		}
		docs[len(docs)-1].body = append(docs[len(docs)-1].body, line...)
	}
	return docs
}

// document injects one document (an object or a List of them). It returns the
// new text, or nil when the document stays as it is.
func document(cfg Config, body []byte, n int) ([]byte, []Report) {
	js, err := yaml.YAMLToJSON(body)
	if err != nil {
		return nil, []Report{{Object: fmt.Sprintf("document %d", n), Err: fmt.Errorf("parse YAML: %v", err)}}
	}
	if string(js) == "null" {
		return nil, nil // only comments or blank
	}
	var head struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil {
		return nil, []Report{{Object: fmt.Sprintf("document %d", n), Err: fmt.Errorf("parse document: not an object: %v", err)}}
	}
	var result any
	var reports []Report
	if head.Kind == "List" {
		list, err := decode(js)
		if err != nil {
			return nil, []Report{{Object: fmt.Sprintf("document %d", n), Err: err}}
		}
		items, _ := list.(map[string]any)["items"].([]any)
		changed := false
		for i, item := range head.Items {
			obj, rep := object(cfg, item)
			if obj != nil {
				items[i], changed = obj, true
			}
			reports = append(reports, rep)
		}
		if !changed {
			return nil, reports
		}
		result = list
	} else {
		obj, rep := object(cfg, js)
		if obj == nil {
			return nil, []Report{rep}
		}
		result, reports = obj, []Report{rep}
	}
	for _, r := range reports {
		if r.Err != nil {
			return nil, reports
		}
	}
	out, err := encode(result, body)
	if err != nil {
		return nil, []Report{{Object: fmt.Sprintf("document %d", n), Err: err}}
	}
	return out, reports
}

// encode writes an edited document as its input was written: indented JSON for
// JSON, else YAML after the comment lines the input started with. The YAML
// library sorts keys and drops every other comment.
func encode(v any, original []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(original)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		out, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode JSON: %v", err)
		}
		return append(out, '\n'), nil
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode YAML: %v", err)
	}
	var head []byte
	for _, line := range strings.SplitAfter(string(original), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			break
		}
		head = append(head, line...)
	}
	return append(head, out...), nil
}

// decode reads JSON into generic values, numbers kept as written.
func decode(js []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("parse JSON: %v", err)
	}
	return v, nil
}

// generic converts a typed value (a k8s.io/api struct) into generic JSON values.
func generic(v any) any {
	js, err := json.Marshal(v)
	if err != nil {
		panic(err) // k8s.io/api types always marshal
	}
	g, err := decode(js)
	if err != nil {
		panic(err)
	}
	return g
}
