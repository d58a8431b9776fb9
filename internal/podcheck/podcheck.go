// Package podcheck checks that pod specs run sidetail hardened as the README
// promises: for the examples (e2e's tests) and for what sidetail inject writes (the
// command's tests), which must agree.
package podcheck

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Hardened checks that a pod spec has a sidetail container and that every sidetail
// container in it carries the hardening the README promises.
func Hardened(t testing.TB, spec *corev1.PodSpec) {
	t.Helper()
	n := 0
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if !strings.Contains(c.Image, "sidetail") {
			continue
		}
		n++
		sc := c.SecurityContext
		switch {
		case sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("%s: runAsNonRoot not set", c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s: readOnlyRootFilesystem not set", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: allowPrivilegeEscalation not false", c.Name)
		case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
			t.Errorf("%s: capabilities not dropped", c.Name)
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("%s: no memory limit or CPU request", c.Name)
		}
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
			return e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil
		}) {
			t.Errorf("%s: GOMEMLIMIT not taken from the memory limit", c.Name)
		}
	}
	if n == 0 {
		t.Error("no sidetail container")
	}
}
