//go:build !inject

package main

import "errors"

// InjectCmd, in a build without -tags inject, says how to get the real one: the
// Kubernetes API types it needs would take the sidecar's binary from 4.3 to
// 14.9 MiB (see inject_cmd.go).
type InjectCmd struct {
	Args []string `arg:"" optional:"" passthrough:"" help:"Ignored."`
}

// Run reports that this build has no inject.
func (InjectCmd) Run() error {
	return usageError{errors.New("inject: this sidetail is the sidecar's build, without the Kubernetes API types; " +
		"install the one with inject: go install -tags inject github.com/sidetail/sidetail@latest")}
}
