package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sidetail/sidetail/rotate"
	"github.com/sidetail/sidetail/tailer"
)

// TailCmd follows files and writes their lines to stdout.
type TailCmd struct {
	Paths          []string      `arg:"" optional:"" name:"path" env:"SIDETAIL_PATHS" help:"File or glob to follow, or a socket to serve (unixgram:///PATH, unix:///PATH, udp://HOST:PORT, tcp://HOST:PORT); TAG=PATH sets the tag (default: base name without extension). Env: comma-separated."`
	From           string        `enum:"head,tail" default:"head" env:"SIDETAIL_FROM" help:"Start files present at start-up at their head (every line) or tail (new lines only): ${enum}."`
	Format         string        `enum:"raw,json" default:"raw" env:"SIDETAIL_FORMAT" help:"Output: raw lines or one JSON object per line (time, tag, file, message): ${enum}."`
	Prefix         string        `env:"SIDETAIL_PREFIX" placeholder:"TEMPLATE" help:"Text before each raw line, with {tag}, {file} and {time} (socket messages also {severity}, {facility}, {app}, {host}), e.g. '[{tag}] '."`
	Timestamps     bool          `env:"SIDETAIL_TIMESTAMPS" help:"Start each raw line with its read time (RFC 3339), like kubectl logs --timestamps."`
	MaxLine        Size          `default:"1Mi" env:"SIDETAIL_MAX_LINE" help:"Cut longer lines into pieces of at most this many bytes (Ki/Mi suffixes)."`
	DrainTimeout   time.Duration `default:"5s" env:"SIDETAIL_DRAIN_TIMEOUT" help:"On SIGTERM, time allowed to write every file up to its EOF."`
	MaxPinnedBytes Size          `default:"0" env:"SIDETAIL_MAX_PINNED_BYTES" help:"While stdout is slow, files rotated away and deleted are held open so no line is lost; past this much disk held, the oldest is given up, its unread lines lost and logged (0: no limit)."`
	MaxRate        Size          `default:"0" env:"SIDETAIL_MAX_RATE" help:"Write at most this many bytes per second (Ki/Mi suffixes; 0: no limit), e.g. 4Mi so a replay does not outrun the kubelet's log rotation; lines are delayed, never dropped."`
	Settle         time.Duration `default:"250ms" env:"SIDETAIL_SETTLE" help:"After a rotation, read the old file until it has been quiet this long."`
	Poll           bool          `env:"SIDETAIL_POLL" help:"Poll with stat instead of inotify (network filesystems)."`
	PollInterval   time.Duration `default:"250ms" env:"SIDETAIL_POLL_INTERVAL" help:"How often to stat files when polling."`
	Quiet          bool          `env:"SIDETAIL_QUIET" help:"Log errors only."`
	StateDir       string        `default:"auto" env:"SIDETAIL_STATE_DIR" placeholder:"DIR" help:"Where checkpoints live so a restart neither repeats nor skips lines. auto: a .sidetail folder beside the first file; empty: off."`

	MultilineStart   []string      `sep:"none" env:"SIDETAIL_MULTILINE_START" placeholder:"[TAG=]REGEX" help:"A line matching REGEX starts a record; the lines after it that do not match join it (stack traces). TAG=REGEX: for that tag only (repeat the flag). Env: one per line."`
	MultilineTimeout time.Duration `default:"1s" env:"SIDETAIL_MULTILINE_TIMEOUT" help:"End a record after this long without a new line."`
	MaxRecord        Size          `default:"1Mi" env:"SIDETAIL_MAX_RECORD" help:"End a record when it reaches this many bytes."`

	SocketFormat string `enum:"syslog,lines" default:"syslog" env:"SIDETAIL_SOCKET_FORMAT" help:"Socket messages: syslog (RFC 5424/3164 headers parsed; a message that does not parse is relayed as it is) or plain lines: ${enum}."`
	SocketMode   string `default:"0666" env:"SIDETAIL_SOCKET_MODE" placeholder:"OCTAL" help:"Permissions of unix socket files (0666: an app running as another user can write)."`
	SocketBuffer Size   `default:"4Mi" env:"SIDETAIL_SOCKET_BUFFER" help:"Receive buffer of datagram sockets: what they hold while stdout is slow, before the kernel drops (and we count) datagrams."`

	Rotate Limits `embed:"" prefix:"rotate-" envprefix:"SIDETAIL_ROTATE_" group:"Rotate the followed files (see sidetail rotate --help)"`

	MetricsAddr string `env:"SIDETAIL_METRICS_ADDR" placeholder:"ADDR" help:"Serve Prometheus /metrics, /healthz and /readyz on ADDR (HOST:PORT, e.g. :9090). Off when empty."`
	// StallTimeout exists for the tests, which cannot wait a minute for /healthz.
	StallTimeout time.Duration `hidden:"" default:"1m" env:"SIDETAIL_STALL_TIMEOUT" help:"/healthz fails when a follower made no progress this long with unread data and stdout not blocked (at least 4 times --settle and --multiline-timeout)."`

	sources   []tailer.Source
	sockets   []tailer.SocketSpec
	sockMode  fs.FileMode
	rotate    *rotate.Config
	prefix    tailer.Prefix
	multiline *tailer.Multiline
}

// Validate checks what kong cannot, one subject at a time.
func (c *TailCmd) Validate() error {
	for _, check := range []func() error{c.checkOutput, c.checkTiming, c.checkSources, c.checkSockets, c.checkMultiline, c.checkRotate, c.checkStateDir, c.checkMetricsAddr} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkOutput checks the output format, prefix template and line size.
func (c *TailCmd) checkOutput() error {
	tmpl := c.Prefix
	if c.Timestamps && c.Format == "raw" {
		tmpl = "{time} " + tmpl
	}
	if c.Prefix != "" && c.Format != "raw" {
		return errors.New("--prefix: applies to --format=raw only; JSON already carries tag, file and time")
	}
	p, err := tailer.ParsePrefix(tmpl)
	if err != nil {
		return fmt.Errorf("--prefix: %w", err)
	}
	c.prefix = p
	if c.MaxLine < 1 {
		return errors.New("--max-line: must be at least 1 byte, e.g. 1Mi")
	}
	if c.MaxRate < 0 || (c.MaxRate > 0 && c.MaxRate < 1<<10) {
		return errors.New("--max-rate: bytes per second, at least 1Ki (or 0: no limit), e.g. 4Mi")
	}
	return nil
}

func (c *TailCmd) checkTiming() error {
	if c.PollInterval <= 0 {
		return errors.New("--poll-interval: must be positive, e.g. 250ms")
	}
	if c.DrainTimeout < 0 || c.Settle < 0 {
		return errors.New("--drain-timeout and --settle: must not be negative")
	}
	return nil
}

// checkSources parses the PATH arguments, from the command line or SIDETAIL_PATHS.
func (c *TailCmd) checkSources() error {
	// kong hands a positional its environment variable as one value; a list of paths
	// in SIDETAIL_PATHS is comma-separated, as the help says.
	c.Paths = envList("SIDETAIL_PATHS", ",", c.Paths)
	if len(c.Paths) == 0 {
		return errors.New("no PATH: name a file or glob to follow, e.g. sidetail /var/log/app/*.log")
	}
	c.sources, c.sockets = c.sources[:0], c.sockets[:0]
	for _, arg := range c.Paths {
		if spec, ok, err := parseSocket(arg); ok || err != nil {
			if err != nil {
				return err
			}
			c.sockets = append(c.sockets, spec)
			continue
		}
		src, err := parseSource(arg)
		if err != nil {
			return err
		}
		c.sources = append(c.sources, src)
	}
	return nil
}

// checkSockets checks the socket files' mode.
func (c *TailCmd) checkSockets() error {
	mode, err := strconv.ParseUint(c.SocketMode, 8, 32)
	if err != nil || mode > 0o777 {
		return fmt.Errorf("--socket-mode: %q is not an octal permission such as 0666", c.SocketMode)
	}
	c.sockMode = fs.FileMode(mode)
	return nil
}

func (c *TailCmd) checkMultiline() (err error) {
	c.multiline, err = c.parseMultiline()
	return err
}

// checkRotate builds the rotation config when --rotate-max-size turns it on.
func (c *TailCmd) checkRotate() (err error) {
	c.rotate, err = c.rotateConfig()
	return err
}

// checkStateDir places the checkpoints: auto is beside the first file.
func (c *TailCmd) checkStateDir() error {
	if c.StateDir == "auto" && len(c.sources) == 0 {
		c.StateDir = "" // sockets only: nothing to resume
	}
	if c.StateDir == "auto" {
		c.StateDir = filepath.Join(staticDir(c.sources[0].Path), ".sidetail")
	}
	if c.StateDir != "" {
		if info, err := os.Stat(c.StateDir); err == nil && !info.IsDir() {
			return fmt.Errorf("--state-dir: %s is a file; name a directory, or --state-dir='' to turn checkpoints off", c.StateDir)
		}
	}
	return nil
}

// rotateConfig checks the --rotate-* flags: rotation is on once --rotate-max-size
// is set, and then --rotate-max-files=0 discards what was written out.
func (c *TailCmd) rotateConfig() (*rotate.Config, error) {
	if c.Rotate.MaxSize == 0 {
		if c.Rotate != defaultLimits() {
			return nil, errors.New("--rotate-*: rotation is off until --rotate-max-size is set, e.g. --rotate-max-size=10Mi")
		}
		return nil, nil
	}
	paths := make([]string, len(c.sources))
	for i, s := range c.sources {
		paths[i] = s.Path
	}
	cfg, err := c.Rotate.config("--rotate-", paths, 0)
	if err != nil {
		return nil, err
	}
	return &cfg, nil
}

// parseMultiline compiles the --multiline-start patterns. A value is TAG=REGEX when
// what comes before its first '=' is a tag, *=REGEX or REGEX for every file.
func (c *TailCmd) parseMultiline() (*tailer.Multiline, error) {
	// Patterns may hold commas, so several are given one per line (a YAML block
	// scalar).
	values := envList("SIDETAIL_MULTILINE_START", "\n", c.MultilineStart)
	if len(values) == 0 {
		return nil, nil
	}
	if c.MultilineTimeout <= 0 {
		return nil, errors.New("--multiline-timeout: must be positive, e.g. 1s")
	}
	if c.MaxRecord < 1 {
		return nil, errors.New("--max-record: must be at least 1 byte, e.g. 1Mi")
	}
	known := knownTags(c.sources)
	m := &tailer.Multiline{Start: map[string]*regexp.Regexp{}, Timeout: c.MultilineTimeout, MaxRecord: int(c.MaxRecord)}
	for _, v := range values {
		tag, expr := "", v
		if t, e, ok := strings.Cut(v, "="); ok && (t == "*" || validTag(t)) {
			tag, expr = strings.TrimPrefix(t, "*"), e
		}
		if known != nil && tag != "" && !known[tag] {
			return nil, fmt.Errorf("--multiline-start: no PATH has tag %q; for every file write REGEX or *=REGEX", tag)
		}
		if _, dup := m.Start[tag]; dup {
			return nil, fmt.Errorf("--multiline-start: two patterns for %s; give one", tagName(tag))
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("--multiline-start: %q: %v", expr, err)
		}
		m.Start[tag] = re
	}
	return m, nil
}

// knownTags returns every tag the sources can carry, or nil when a glob without a
// tag makes them unknown until files appear.
func knownTags(sources []tailer.Source) map[string]bool {
	known := map[string]bool{}
	for _, s := range sources {
		switch {
		case s.Tag != "":
			known[s.Tag] = true
		case s.IsGlob():
			return nil
		default:
			known[tailer.DefaultTag(s.Path)] = true
		}
	}
	return known
}

func tagName(tag string) string {
	if tag == "" {
		return "every file"
	}
	return "tag " + strconv.Quote(tag)
}

// staticDir is the directory of path up to its first glob metacharacter.
func staticDir(path string) string {
	dir := filepath.Dir(path)
	for tailer.IsGlob(dir) {
		dir = filepath.Dir(dir)
	}
	return dir
}

// parseSource splits TAG=PATH and checks the path: a glob must be well formed and
// a plain path must not be a directory. A missing file is fine: it is waited for.
func parseSource(arg string) (tailer.Source, error) {
	src := tailer.Source{Path: arg}
	if tag, path, ok := strings.Cut(arg, "="); ok && validTag(tag) {
		src = tailer.Source{Tag: tag, Path: path}
	}
	if src.Path == "" {
		return src, fmt.Errorf("path %q: empty path; use TAG=PATH or PATH", arg)
	}
	if src.IsGlob() {
		if _, err := filepath.Match(src.Path, ""); err != nil {
			return src, fmt.Errorf("path %q: malformed glob: %v", src.Path, err)
		}
		return src, nil
	}
	if info, err := os.Stat(src.Path); err == nil && info.IsDir() {
		return src, fmt.Errorf("path %q is a directory: name the files, e.g. %s", src.Path, filepath.Join(src.Path, "*.log"))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
		return src, fmt.Errorf("path %q: %v", src.Path, err)
	}
	return src, nil
}

// parseSocket parses [TAG=]SCHEME://ADDRESS; ok is false for a file path.
func parseSocket(arg string) (spec tailer.SocketSpec, ok bool, err error) {
	tag, rest := "", arg
	if t, r, found := strings.Cut(arg, "="); found && validTag(t) {
		tag, rest = t, r
	}
	scheme, _, found := strings.Cut(rest, "://")
	if !found || scheme == "" || strings.Trim(scheme, "abcdefghijklmnopqrstuvwxyz") != "" {
		return spec, false, nil
	}
	spec, err = tailer.ParseSocketURL(tag, rest)
	if err != nil {
		return spec, true, fmt.Errorf("source %q: %v", rest, err)
	}
	return spec, true, nil
}

// validTag reports whether s is a tag: letters, digits, '.', '_' and '-'.
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

func (c *TailCmd) checkMetricsAddr() error { return checkMetricsAddr(c.MetricsAddr) }

// stallAfter is how long a follower may make no progress, with unread data and
// stdout not blocked, before /healthz calls it stuck: well above the waits that
// are part of following (the settle period, a multiline record's timeout).
func (c *TailCmd) stallAfter() time.Duration {
	return max(c.StallTimeout, 4*c.Settle, 4*c.MultilineTimeout)
}

// Run follows the files until SIGTERM/SIGINT, then drains them within the drain
// timeout.
func (c *TailCmd) Run(ctx context.Context, s streams) error {
	mon, err := listenMonitor(c.MetricsAddr)
	if err != nil {
		return err
	}
	if mon != nil {
		mon.tail = tailer.NewMetrics(c.stallAfter())
		mon.out = &tailer.Meter{}
		// Probes are answered while draining too: the server stops when Run returns.
		serveCtx, stopServing := context.WithCancel(context.Background())
		var serving sync.WaitGroup
		serving.Go(func() { mon.serve(serveCtx) })
		defer func() {
			stopServing()
			serving.Wait()
		}()
	}
	log := newLogger(s.stderr, c.Quiet)
	cfg := tailer.Config{
		Checkpoints:    c.openCheckpoints(log),
		Format:         tailer.Format{JSON: c.Format == "json", Prefix: c.prefix},
		MaxLine:        int(c.MaxLine),
		Settle:         c.Settle,
		FromTail:       c.From == "tail",
		LineEndWait:    min(lineEndWait, c.DrainTimeout/4),
		Poll:           c.Poll,
		PollInterval:   c.PollInterval,
		Log:            log,
		Multiline:      c.multiline,
		MaxPinnedBytes: int64(c.MaxPinnedBytes),
		Metrics:        mon.followers(),
	}
	c.wireRotation(&cfg, mon.rotated())
	if cfg.Sockets, err = c.listenSockets(log); err != nil {
		return err
	}
	mon.countDrops(c.sockets, cfg.Sockets)
	out := tailer.NewOutput(s.stdout)
	out.Measure(mon.meter())
	if c.MaxRate > 0 {
		out.Pace(int(c.MaxRate))
	}
	oneThread()
	releaseStartupMemory()
	return c.follow(ctx, cfg, out)
}

// openCheckpoints opens the state dir; checkpoints are off (nil) when it cannot be
// made, and read but not saved when it cannot be written.
func (c *TailCmd) openCheckpoints(log *slog.Logger) *tailer.Checkpoints {
	if c.StateDir == "" {
		return nil
	}
	cps, err := tailer.OpenCheckpoints(c.StateDir)
	switch {
	case errors.Is(err, tailer.ErrCheckpointsReadOnly):
		log.Warn("checkpoints read-only: a restart resumes from them but repeats what follows", "err", err)
	case err != nil:
		log.Warn("checkpoints off: a restart will repeat lines", "err", err)
	}
	return cps
}

// wireRotation lets each follower cut what it wrote out of its file, through a
// rotate.File per path: tailer and rotate do not know each other.
func (c *TailCmd) wireRotation(cfg *tailer.Config, cuts *rotateMetrics) {
	if c.rotate == nil {
		return
	}
	c.rotate.Log = cfg.Log
	files := map[string]*rotate.File{}
	for _, src := range c.sources {
		files[src.Path] = rotate.NewFile(src.Path, *c.rotate)
		cuts.track(src.Path)
	}
	// Each follower calls these for its own path only, from its own goroutine.
	cfg.Cut = func(path string, reading fs.FileInfo, emitted int64) (int64, error) {
		r, err := files[path].Cut(emitted, reading)
		cuts.cut(path, r, err)
		return r.Removed, err
	}
	cfg.Removed = func(path string, reading fs.FileInfo) (int64, error) {
		if files[path] == nil {
			return 0, nil // a path not rotated (a glob's): never cut
		}
		return files[path].Removed(reading)
	}
	cfg.CutInterval = c.Rotate.CheckInterval
}

// listenSockets makes the socket sources; one that cannot be made is a usage
// error, and the others are closed.
func (c *TailCmd) listenSockets(log *slog.Logger) ([]*tailer.Socket, error) {
	var socks []*tailer.Socket
	for _, spec := range c.sockets {
		sock, err := tailer.Listen(spec, tailer.SocketOptions{
			Syslog: c.SocketFormat == "syslog", Mode: c.sockMode, Buffer: int(c.SocketBuffer),
		}, log)
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
			return nil, usageError{err}
		}
		socks = append(socks, sock)
	}
	return socks, nil
}

// lineEndWait is the longest the drain waits for the rest of a line a file ends in
// the middle of (tailer.Config.LineEndWait); never more than a quarter of
// --drain-timeout, which must leave time for the other files.
const lineEndWait = time.Second

// follow runs the followers until SIGTERM/SIGINT, then gives them the drain
// timeout to write every file up to its EOF.
func (c *TailCmd) follow(ctx context.Context, cfg tailer.Config, out *tailer.Output) error {
	done := make(chan error, 1)
	go func() { done <- tailer.Run(ctx, cfg, c.sources, out) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	timeout := time.NewTimer(c.DrainTimeout)
	defer timeout.Stop()
	select {
	case err := <-done:
		return err
	case <-timeout.C:
		return fmt.Errorf("files not drained within --drain-timeout=%s; lines after that point were not written", c.DrainTimeout)
	}
}
