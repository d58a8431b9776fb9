package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kong"
	"github.com/sidetail/sidetail/internal/durable"
	"github.com/sidetail/sidetail/rotate"
	"github.com/sidetail/sidetail/tailer"
)

// RotateCmd keeps files bounded on their volume, on its own.
type RotateCmd struct {
	Paths  []string `arg:"" name:"path" env:"SIDETAIL_PATHS" help:"Live file to keep bounded. Env: comma-separated."`
	Limits `envprefix:"SIDETAIL_"`
	Quiet  bool `env:"SIDETAIL_QUIET" help:"Log errors only."`

	MetricsAddr string `env:"SIDETAIL_METRICS_ADDR" placeholder:"ADDR" help:"Serve Prometheus /metrics, /healthz and /readyz on ADDR (HOST:PORT, e.g. :9090). Off when empty."`

	cfg rotate.Config
}

// Limits are the rotate flags, shared by the rotate command and, prefixed with
// rotate-, the tail command.
type Limits struct {
	MaxSize        Size          `env:"MAX_SIZE" help:"Cut a file once it holds this many bytes, at least 64Ki (rotate: default 10Mi; tail: no rotation unless set)."`
	MaxFiles       int           `default:"${rotate_max_files}" env:"MAX_FILES" help:"Archives kept per file (tail command: 0 keeps none, discarding what was written out)."`
	MaxAge         Duration      `env:"MAX_AGE" help:"Delete archives older than this, e.g. 7d or 36h (default: keep)."`
	Compress       bool          `env:"COMPRESS" help:"Compress archives with gzip."`
	CheckInterval  time.Duration `default:"${rotate_check_interval}" env:"CHECK_INTERVAL" help:"How often file sizes are checked."`
	ArchiveDir     string        `env:"ARCHIVE_DIR" placeholder:"DIR" help:"Where archives go (default: beside each file)."`
	Method         string        `enum:"auto,collapse,punch,copytruncate" default:"${rotate_method}" env:"METHOD" help:"How the archived head leaves the live file: ${enum}. auto: collapse (ext4, xfs), else punch (tmpfs), else copytruncate (loses lines). punch also suits writers without O_APPEND."`
	FollowSymlinks bool          `env:"FOLLOW_SYMLINKS" help:"Allow a PATH that is a symbolic link (cuts the file it points to)."`
}

// defaultLimits are the rotate flags' defaults, given to kong as variables: the
// one place they are written, also for the tail command's check that no rotate
// flag is set without --rotate-max-size.
func defaultLimits() Limits {
	return Limits{MaxFiles: 5, CheckInterval: time.Second, Method: string(rotate.Auto)}
}

// vars are the defaults as kong reads them in the flags' default tags.
func (l Limits) vars() kong.Vars {
	return kong.Vars{
		"rotate_max_files":      strconv.Itoa(l.MaxFiles),
		"rotate_check_interval": l.CheckInterval.String(),
		"rotate_method":         l.Method,
	}
}

// defaultMaxSize is the trigger of the rotate command, like kubelet's
// containerLogMaxSize.
const defaultMaxSize = 10 << 20

// Validate checks the flags and the paths.
func (c *RotateCmd) Validate() error {
	c.Paths = envList("SIDETAIL_PATHS", ",", c.Paths)
	if len(c.Paths) == 0 {
		return errors.New("no PATH: name the file to keep bounded, e.g. sidetail rotate /var/log/app/app.log")
	}
	if c.MaxSize == 0 {
		c.MaxSize = defaultMaxSize
	}
	if err := checkMetricsAddr(c.MetricsAddr); err != nil {
		return err
	}
	cfg, err := c.Limits.config("--", c.Paths, 1)
	c.cfg = cfg
	return err
}

// Run rotates the files until SIGTERM/SIGINT.
func (c *RotateCmd) Run(ctx context.Context, s streams) error {
	mon, err := listenMonitor(c.MetricsAddr)
	if err != nil {
		return err
	}
	var serving sync.WaitGroup
	defer serving.Wait()
	serving.Go(func() { mon.serve(ctx) })
	c.cfg.Log = newLogger(s.stderr, c.Quiet)
	cutEvery(ctx, c.cfg, c.Paths, c.CheckInterval, mon.rotated())
	return nil
}

// cutEvery checks every path each interval and cuts those past MaxSize, until
// ctx is done, counting what each cut did. Errors are logged and retried at the
// next check; nothing is removed from a live file whose archive is not durable.
func cutEvery(ctx context.Context, cfg rotate.Config, paths []string, interval time.Duration, cuts *rotateMetrics) {
	files := make(map[string]*rotate.File, len(paths))
	for _, p := range paths {
		files[p] = rotate.NewFile(p, cfg)
		cuts.track(p)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for ctx.Err() == nil {
		for _, p := range paths {
			r, err := files[p].CutAll()
			cuts.cut(p, r, err)
			if err != nil {
				cfg.Log.Error("cannot rotate file, retrying", "path", p, "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// config checks the limits against the paths; flag is the flags' prefix in
// messages ("--" or "--rotate-"). minFiles is 0 where discarding is allowed: a
// follower cuts only what it wrote out, where the rotate command alone would
// throw away what nothing read.
func (l Limits) config(flag string, paths []string, minFiles int) (rotate.Config, error) {
	cfg := rotate.Config{
		MaxSize: int64(l.MaxSize), MaxFiles: l.MaxFiles, MaxAge: time.Duration(l.MaxAge),
		Compress: l.Compress, ArchiveDir: l.ArchiveDir, Method: rotate.Method(l.Method),
		FollowSymlinks: l.FollowSymlinks,
	}
	switch {
	case l.MaxSize < rotate.MinSize:
		return cfg, fmt.Errorf("%smax-size: %d bytes is below the 64Ki minimum; use e.g. 10Mi", flag, l.MaxSize)
	case l.MaxFiles < minFiles && minFiles == 1:
		return cfg, fmt.Errorf("%smax-files: keep at least 1 archive (0, discarding the bytes, needs the tail command, which reads them first)", flag)
	case l.MaxFiles < minFiles:
		return cfg, fmt.Errorf("%smax-files: must not be negative (0 discards what was written out)", flag)
	case l.MaxAge < 0:
		return cfg, fmt.Errorf("%smax-age: must not be negative", flag)
	case l.CheckInterval <= 0:
		return cfg, fmt.Errorf("%scheck-interval: must be positive, e.g. 1s", flag)
	}
	targets := map[string]string{}
	for _, p := range paths {
		if tailer.IsGlob(p) {
			return cfg, fmt.Errorf("path %q: rotation needs the file's own name, not a glob", p)
		}
		if info, err := os.Lstat(p); err == nil {
			if info.Mode()&fs.ModeSymlink != 0 && !l.FollowSymlinks {
				return cfg, fmt.Errorf("path %q is a symbolic link: name the file itself, or pass %sfollow-symlinks", p, flag)
			}
			if info.IsDir() {
				return cfg, fmt.Errorf("path %q is a directory: name the file to rotate", p)
			}
		}
		dir := l.ArchiveDir
		if dir == "" {
			dir = filepath.Dir(p)
		}
		target := filepath.Join(dir, filepath.Base(p))
		if other, dup := targets[target]; dup {
			return cfg, fmt.Errorf("paths %q and %q would share archive names in %s; give one of them its own %sarchive-dir", other, p, dir, flag)
		}
		targets[target] = p
		if err := durable.CanWrite(dir); err != nil {
			return cfg, fmt.Errorf("%sarchive-dir: %v; create it or name a writable directory", flag, err)
		}
	}
	return cfg, nil
}

// envList splits the value of an environment variable kong handed over as one
// value when it set a list from it.
func envList(name, sep string, values []string) []string {
	env, ok := os.LookupEnv(name)
	if !ok || len(values) != 1 || values[0] != env {
		return values
	}
	var out []string
	for _, v := range strings.Split(env, sep) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Duration is a time.Duration that also accepts days: 7d, 1d12h.
type Duration time.Duration

// Decode lets kong parse a Duration.
func (d *Duration) Decode(ctx *kong.DecodeContext) error {
	var text string
	if err := ctx.Scan.PopValueInto("duration", &text); err != nil {
		return err
	}
	v, err := ParseDuration(text)
	*d = Duration(v)
	return err
}

// ParseDuration parses a Go duration with an optional leading day count.
func ParseDuration(text string) (time.Duration, error) {
	bad := fmt.Errorf("invalid duration %q: use e.g. 7d, 36h or 90m", text)
	days, rest, hasDays := strings.Cut(strings.TrimSpace(text), "d")
	var total time.Duration
	if hasDays {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, bad
		}
		total = time.Duration(n) * 24 * time.Hour
		if rest == "" {
			return total, nil
		}
	} else {
		rest = days
	}
	v, err := time.ParseDuration(rest)
	if err != nil {
		return 0, bad
	}
	return total + v, nil
}
