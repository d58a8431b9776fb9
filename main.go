// Command sidetail follows log files and writes their lines to stdout, for the
// streaming-sidecar pattern in Kubernetes pods.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags '-X main.version=…'.
var version = "dev"

// CLI is the command line: the tail command (the default), rotate and version.
type CLI struct {
	Tail    TailCmd    `cmd:"" default:"withargs" help:"Follow files and write their lines to stdout (the default command)."`
	Rotate  RotateCmd  `cmd:"" help:"Keep files bounded: archive their head and cut it from the live file, losing no concurrent write."`
	Inject  InjectCmd  `cmd:"" help:"Add the sidetail sidecar to workloads' YAML or JSON (stdin to stdout; also kubectl sidetail inject)."`
	Version VersionCmd `cmd:"" help:"Print the version."`
}

// streams are what commands write to; tests pass their own.
type streams struct {
	stdout, stderr io.Writer
}

// exitCode carries kong's request to exit (after --help) out of Parse.
type exitCode int

func main() {
	// A closed stdout must end us with an error line, not kill us with SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], streams{os.Stdout, os.Stderr}))
}

// run parses args and runs the command; it returns the exit code: 2 for usage
// errors, 1 for failures, 0 otherwise.
func run(ctx context.Context, args []string, s streams) (code int) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	var cli CLI
	kctx, err := newParser(&cli, s).Parse(args)
	if err != nil {
		fmt.Fprintf(s.stderr, "sidetail: %v (see sidetail --help)\n", err)
		return 2
	}
	kctx.BindTo(ctx, (*context.Context)(nil))
	kctx.Bind(s)
	if err := kctx.Run(); err != nil {
		lastWords(s.stderr, fmt.Sprintf("sidetail: %v\n", err))
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	return 0
}

// lastWords writes line, the one that ends a failed run, to w, waiting for it at
// most lastWordsWait: stderr may be a pipe that nobody reads (2>&1 into a stuck
// reader, the very case in which the drain timed out), and the exit must not wait
// for it. The write then goes unseen.
func lastWords(w io.Writer, line string) {
	done := make(chan struct{})
	go func() {
		io.WriteString(w, line)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(lastWordsWait):
	}
}

const lastWordsWait = time.Second

// newParser builds the command-line parser writing help to s. kong's exit after
// --help panics with an exitCode, which run recovers.
func newParser(cli *CLI, s streams) *kong.Kong {
	// Named kubectl-sidetail (a copy or symbolic link), the binary is a kubectl
	// plugin: kubectl sidetail inject runs kubectl-sidetail inject.
	name := "sidetail"
	if filepath.Base(os.Args[0]) == "kubectl-sidetail" {
		name = "kubectl sidetail"
	}
	parser, err := kong.New(cli,
		kong.Name(name),
		kong.Description("Follow log files (tail -n+1 -F, lossless across rotation) and write their lines to stdout.\n\n"+
			"Usage: sidetail [tail] [flags] [TAG=]PATH... or sidetail rotate [flags] PATH... (flags: sidetail tail --help, sidetail rotate --help)"),
		kong.Writers(s.stdout, s.stderr),
		kong.Exit(func(c int) { panic(exitCode(c)) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"version": version},
		defaultLimits().vars(),
	)
	if err != nil {
		panic(err) // the CLI struct itself is wrong: a programming error
	}
	return parser
}

// usageError is an error in what the user asked for, found after parsing.
type usageError struct{ error }

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(s streams) error {
	_, err := fmt.Fprintln(s.stdout, "sidetail", version)
	return err
}
