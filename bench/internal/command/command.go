// Package command is what the main of every bench program does besides its own
// work: parse the flags, refuse a wrong command line with exit status 2, and report
// a failure as "name: error" with exit status 1. Results go to stdout, which
// bench/compare.sh reads; everything else to stderr.
package command

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

// A Program is one bench program: the flags it takes and the work they set up.
type Program interface {
	// Flags defines the program's flags on fs, bound to its own fields.
	Flags(fs *flag.FlagSet)
	// Run does the work, given the arguments after the flags. A UsageError says
	// the command line is wrong.
	Run(args []string) error
}

// UsageError is a wrong command line, printed as it is.
type UsageError string

func (e UsageError) Error() string { return string(e) }

// Main runs p with the process's command line and exits: 2 on a UsageError (or
// a flag the flag package refuses), 1 on any other error, after printing it.
func Main(name string, p Program) {
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	p.Flags(fs)
	fs.Parse(os.Args[1:]) // exits 2 itself on a bad flag
	err := p.Run(fs.Args())
	var usage UsageError
	switch {
	case err == nil:
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
