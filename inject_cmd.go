//go:build inject

// The inject command carries the Kubernetes API types (k8s.io/api), which would
// take the binary from 4.3 to 14.9 MiB: it is built only with -tags inject, so
// the sidecar image stays small. See inject_off.go for the build without it.

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/sidetail/sidetail/inject"
	"github.com/sidetail/sidetail/tailer"
)

// InjectCmd adds the sidetail sidecar to workloads' YAML, like linkerd inject.
type InjectCmd struct {
	Inputs   []string     `arg:"" optional:"" name:"input" placeholder:"FILE|DIR|-" help:"YAML or JSON to read: a file, a folder (its *.yaml, *.yml and *.json files) or - for stdin (the default)."`
	File     []string     `sep:"none" placeholder:"[CONTAINER:][TAG=]PATH" help:"File or glob to follow, in the app container CONTAINER (repeat the flag). Default: each pod template's sidetail.io/files annotation, e.g. app:/var/log/app/*.log,/var/log/audit.log."`
	Image    string       `default:"registry.example.com/sidetail:0.1.0" env:"SIDETAIL_IMAGE" help:"The sidetail image."`
	Classic  bool         `help:"Add the sidecar to containers, for clusters before Kubernetes 1.29 (default: a native sidecar, an init container with restartPolicy: Always, which outlives the app and lets Jobs complete)."`
	StateDir string       `default:"/state" placeholder:"DIR" help:"Where the sidecar mounts its emptyDir for checkpoints."`
	Sidecar  sidecarFlags `embed:"" group:"Flags of the tail command, passed to the sidecar (see sidetail tail --help)"`

	cfg inject.Config
}

// sidecarGroup titles, in the help, the tail flags passed to the sidecar; it is
// how AfterApply tells them from inject's own.
const sidecarGroup = "Flags of the tail command, passed to the sidecar (see sidetail tail --help)"

// sidecarFlags are the tail command's flags that inject passes to the sidecar's
// args: each is declared with the tail command's type, so a malformed value is a
// usage error now rather than a crash-looping sidecar later, and only those given
// are passed. A new tail flag is one more line here.
type sidecarFlags struct {
	From             string        `enum:"head,tail" default:"head" help:"Start files present at start-up at their head or tail."`
	Format           string        `enum:"raw,json" default:"raw" help:"Output: raw lines or JSON objects."`
	Prefix           string        `placeholder:"TEMPLATE" help:"Text before each raw line, with {tag}, {file} and {time}."`
	Timestamps       bool          `help:"Start each raw line with its read time."`
	MaxLine          Size          `help:"Cut longer lines into pieces of at most this many bytes."`
	DrainTimeout     time.Duration `help:"On SIGTERM, time allowed to write every file up to its EOF."`
	Settle           time.Duration `help:"After a rotation, read the old file until it has been quiet this long."`
	Poll             bool          `help:"Poll with stat instead of inotify."`
	PollInterval     time.Duration `help:"How often to stat files when polling."`
	Quiet            bool          `help:"Log errors only."`
	MultilineStart   []string      `sep:"none" placeholder:"[TAG=]REGEX" help:"A line matching REGEX starts a record (repeat the flag)."`
	MultilineTimeout time.Duration `help:"End a record after this long without a new line."`
	MaxRecord        Size          `help:"End a record when it reaches this many bytes."`
	Rotate           Limits        `embed:"" prefix:"rotate-" envprefix:"SIDETAIL_INJECT_ROTATE_" group:"Flags of the tail command, passed to the sidecar (see sidetail tail --help)"`
}

// Validate checks what the sidecar would refuse at start: the prefix template,
// the patterns and the rotation limits.
func (c *InjectCmd) Validate() error {
	s := c.Sidecar
	if s.Prefix != "" && s.Format != "raw" {
		return errors.New("--prefix: applies to --format=raw only; JSON already carries tag, file and time")
	}
	if _, err := tailer.ParsePrefix(s.Prefix); err != nil {
		return fmt.Errorf("--prefix: %w", err)
	}
	for _, v := range s.MultilineStart {
		expr := v
		if t, e, ok := strings.Cut(v, "="); ok && (t == "*" || validTag(t)) {
			expr = e
		}
		if _, err := regexp.Compile(expr); err != nil {
			return fmt.Errorf("--multiline-start: %q: %v", expr, err)
		}
	}
	if s.Rotate.MaxSize != 0 {
		// No paths: they are checked in the pod, not on this machine.
		if _, err := s.Rotate.config("--rotate-", nil, 0); err != nil { // the tail command: 0 discards
			return err
		}
	}
	if !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("--state-dir: %q is not an absolute path; e.g. /state", c.StateDir)
	}
	for _, f := range c.File {
		if strings.Contains(f, ",") {
			return fmt.Errorf("--file: %q holds a comma; give one file per --file", f)
		}
	}
	return nil
}

// AfterApply gathers the sidecar's args from the tail flags given on the command
// line, in the order they are declared.
func (c *InjectCmd) AfterApply(kctx *kong.Context) error {
	c.cfg = inject.Config{Files: c.File, Image: c.Image, Classic: c.Classic, StateDir: c.StateDir}
	for _, f := range kctx.Flags() {
		// Only what differs from the tail command's default is passed: the
		// sidecar's args stay short, and kong marks defaults as set too.
		v := f.Target
		if f.Group == nil || f.Group.Title != sidecarGroup || f.Default == "" && v.IsZero() || f.Default != "" && flagText(v) == f.Default {
			continue
		}
		if v.Kind() == reflect.Slice {
			for i := range v.Len() {
				c.cfg.Args = append(c.cfg.Args, "--"+f.Name+"="+flagText(v.Index(i)))
			}
			continue
		}
		if v.Kind() == reflect.Bool {
			if v.Bool() {
				c.cfg.Args = append(c.cfg.Args, "--"+f.Name)
			}
			continue
		}
		c.cfg.Args = append(c.cfg.Args, "--"+f.Name+"="+flagText(v))
	}
	// Rotation writes to the files: the sidecar needs their volumes writable.
	c.cfg.Writable = c.Sidecar.Rotate.MaxSize != 0
	for _, a := range c.cfg.Args {
		if strings.HasPrefix(a, "--rotate-") && !c.cfg.Writable {
			// The sidecar would refuse it at start and crash-loop.
			return errors.New("--rotate-*: rotation is off until --rotate-max-size is set, e.g. --rotate-max-size=10Mi")
		}
	}
	return nil
}

// flagText writes a flag's value back as the tail command parses it.
func flagText(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case Duration:
		return time.Duration(x).String()
	case Size:
		for _, u := range []string{"Gi", "Mi", "Ki"} {
			if n, _ := ParseSize("1" + u); x != 0 && int64(x)%n == 0 {
				return fmt.Sprint(int64(x)/n) + u
			}
		}
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v.Interface())
}

// Run reads every input, injects, and writes the result only if no object failed.
func (c *InjectCmd) Run(s streams) error {
	inputs := c.Inputs
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	var out []byte
	failed := 0
	for _, in := range inputs {
		docs, err := readInputs(in, os.Stdin)
		if err != nil {
			return err
		}
		for _, d := range docs {
			data, reports := inject.Stream(c.cfg, d.data)
			for _, r := range reports {
				if r.Err != nil {
					failed++
					fmt.Fprintf(s.stderr, "%s: %s\n", d.name, r)
					continue
				}
				fmt.Fprintln(s.stderr, r)
			}
			if len(out) > 0 && len(data) > 0 {
				if out[len(out)-1] != '\n' {
					out = append(out, '\n')
				}
				out = append(out, "---\n"...)
			}
			out = append(out, data...)
		}
	}
	if failed > 0 {
		return fmt.Errorf("inject: %d objects could not be injected; nothing written", failed)
	}
	_, err := s.stdout.Write(out)
	return err
}

type input struct {
	name string
	data []byte
}

// readInputs reads a file, the YAML and JSON files of a folder, or stdin.
func readInputs(name string, stdin io.Reader) ([]input, error) {
	if name == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %v", err)
		}
		return []input{{"stdin", data}}, nil
	}
	info, err := os.Stat(name)
	if err != nil {
		return nil, usageError{fmt.Errorf("input %s: %v", name, errors.Unwrap(err))}
	}
	files := []string{name}
	if info.IsDir() {
		entries, err := os.ReadDir(name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %v", name, err)
		}
		files = files[:0]
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
				files = append(files, filepath.Join(name, e.Name()))
			}
		}
		if len(files) == 0 {
			return nil, usageError{fmt.Errorf("input %s: a folder without *.yaml, *.yml or *.json files", name)}
		}
	}
	var inputs []input
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %v", f, err)
		}
		inputs = append(inputs, input{f, data})
	}
	return inputs, nil
}
