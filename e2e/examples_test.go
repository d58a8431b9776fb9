// Package e2e holds the tests of examples/: each one valid for Kubernetes, and
// each played under podman with the image the Dockerfile builds. A package of its
// own, so that go test ./... runs these minutes of mostly waiting on containers
// beside the root package's tests instead of after them.
package e2e

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidetail/sidetail/internal/disk"
	"github.com/sidetail/sidetail/internal/podcheck"
	"github.com/sidetail/sidetail/internal/testbin"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// bin is the sidetail binary: TestExamplesRun pipes workloads through its inject.
var bin string

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, &bin)) }

// exampleCheck says what running an example must show: per sidetail container,
// how its output is formatted and which file each tag relays.
type exampleCheck struct {
	pod      string
	app      string // the containers writing the logs (space-separated): stopped first, like the kubelet does for native sidecars
	sidecars map[string]sidecarCheck
	minLines int // per file, before the pod is stopped
	// rotated > 0: the sidecar rotates its one file, app.log, keeping at most this
	// many archives. The file then holds the last lines only: what was relayed
	// must be the lines "0: …" up to the file's last, and the file stay small.
	rotated int
	// discarded: the same, with no archive (--rotate-max-files=0).
	discarded bool
}

type sidecarCheck struct {
	format string            // "raw", "prefix" ("[tag] ") or "json"
	files  map[string]string // tag ("" for raw) → file name in /var/log
}

// examples lists every file in examples/; TestExamplesRun fails for one not listed.
var examples = map[string]exampleCheck{
	"counter-sidecar-per-file.yaml": {pod: "counter", app: "count", minLines: 3, sidecars: map[string]sidecarCheck{
		"count-log-1": {format: "raw", files: map[string]string{"": "1.log"}},
		"count-log-2": {format: "raw", files: map[string]string{"": "2.log"}},
	}},
	"counter-tagged-prefix.yaml": {pod: "counter-prefix", app: "count", minLines: 3, sidecars: map[string]sidecarCheck{
		"sidetail": {format: "prefix", files: map[string]string{"one": "1.log", "two": "2.log"}},
	}},
	"counter-tagged-json.yaml": {pod: "counter-json", app: "count", minLines: 3, sidecars: map[string]sidecarCheck{
		"sidetail": {format: "json", files: map[string]string{"one": "1.log", "two": "2.log"}},
	}},
	"job-native-sidecar.yaml": {pod: "report", app: "report", minLines: 200, sidecars: map[string]sidecarCheck{
		"sidetail": {format: "prefix", files: map[string]string{"report": "report.log"}},
	}},
	// 50000 lines of about 90 bytes: 4 rotations at 1Mi.
	"app-log-rotate.yaml": {pod: "app-rotate", app: "app", minLines: 50000, rotated: 3,
		sidecars: map[string]sidecarCheck{"sidetail": {format: "raw", files: map[string]string{"": "app.log"}}}},
	"app-log-discard.yaml": {pod: "app-discard", app: "app", minLines: 50000, discarded: true,
		sidecars: map[string]sidecarCheck{"sidetail": {format: "raw", files: map[string]string{"": "app.log"}}}},
	// The apps keep in /var/log a copy of each message they sent over a socket.
	"syslog-sidecar.yaml": {pod: "syslog", app: "web haproxy", minLines: 100, sidecars: map[string]sidecarCheck{
		"sidetail": {format: "prefix", files: map[string]string{"app": "app.sent", "haproxy": "haproxy.sent"}},
	}},
}

func exampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../examples/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	return files
}

// Every example decodes strictly (unknown or misspelt fields fail) into the
// Kubernetes API types it declares, so it is valid for kubectl apply; and every
// sidetail container in it carries the hardening the README promises. Strict
// decoding into k8s.io/api catches what a schema check would, without a cluster or
// a downloaded OpenAPI document.
func TestExamplesValid(t *testing.T) {
	for _, file := range exampleFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			spec, _ := podSpecOf(t, file)
			podcheck.Hardened(t, spec)
		})
	}
}

// podSpecOf decodes an example strictly and returns its pod spec and metadata name.
func podSpecOf(t *testing.T, file string) (*corev1.PodSpec, string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var kind struct{ Kind string }
	if err := yaml.Unmarshal(data, &kind); err != nil {
		t.Fatal(err)
	}
	switch kind.Kind {
	case "Pod":
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict(data, &pod); err != nil {
			t.Fatalf("not a valid Pod: %v", err)
		}
		return &pod.Spec, pod.Name
	case "Job":
		var job batchv1.Job
		if err := yaml.UnmarshalStrict(data, &job); err != nil {
			t.Fatalf("not a valid Job: %v", err)
		}
		return &job.Spec.Template.Spec, job.Name
	case "Deployment":
		var d appsv1.Deployment
		if err := yaml.UnmarshalStrict(data, &d); err != nil {
			t.Fatalf("not a valid Deployment: %v", err)
		}
		return &d.Spec.Template.Spec, d.Name
	}
	t.Fatalf("kind %q: examples are Pods, Jobs or Deployments", kind.Kind)
	return nil, ""
}

// TestExamplesRun plays every example with podman, as a kubelet would run it: the
// Dockerfile's image, the app from Debian's busybox, stdout captured by the runtime
// in CRI log format. It checks that each sidetail container relayed every line of
// its files, in order, formatted as configured, and exited 0 on SIGTERM.
//
// Needs root and podman (with runc, buildah and busybox-static); .ci/run installs
// them and sets SIDETAIL_E2E=1, which turns a missing podman into a failure.
func TestExamplesRun(t *testing.T) {
	for _, file := range exampleFiles(t) {
		if _, ok := examples[filepath.Base(file)]; !ok {
			t.Errorf("%s is not run: add it to examples in e2e/examples_test.go", file)
		}
	}
	if _, err := exec.LookPath("podman"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("SIDETAIL_E2E") != "" {
			t.Fatal("SIDETAIL_E2E is set but podman is missing or we are not root")
		}
		t.Skip("needs root and podman (apt-get install podman runc buildah busybox-static); .ci/run runs it")
	}
	e := newPodman(t)
	// One at a time: podman 4.3 makes each emptyDir a named volume ("varlog"), so
	// pods played together would share their volumes.
	for _, file := range exampleFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) { e.runExample(t, file, examples[filepath.Base(file)]) })
	}
	// Workloads without a sidecar, through sidetail inject, played the same way.
	for _, tc := range injectedExamples {
		t.Run("inject/"+tc.input, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"inject"}, append(tc.args, filepath.Join("../testdata/inject", tc.input))...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("sidetail inject: %v: %s", err, stderr.Bytes())
			}
			file := filepath.Join(t.TempDir(), tc.input)
			os.WriteFile(file, out, 0o644)
			e.runExample(t, file, tc.check)
		})
	}
}

// injectedExamples are run by TestExamplesRun after sidetail inject added the
// sidecar (a native one: the harness makes it an ordinary container for podman).
var injectedExamples = []struct {
	input string
	args  []string
	check exampleCheck
}{
	// The Kubernetes docs' counter, as the issue has it, and the prefix to tell the
	// files apart (the tag is the base name without extension).
	{"counter-pod.yaml", []string{"--file=/var/log/1.log", "--file=/var/log/2.log", "--prefix=[{tag}] "},
		exampleCheck{pod: "counter", app: "count", minLines: 3, sidecars: map[string]sidecarCheck{
			"sidetail": {format: "prefix", files: map[string]string{"1": "1.log", "2": "2.log"}}}}},
	// The files from the template's annotation; podman 4.3 plays a Deployment as
	// pod NAME-pod-0.
	{"counter-deployment.yaml", []string{"--prefix=[{tag}] "},
		exampleCheck{pod: "counter-deploy-pod-0", app: "count", minLines: 3, sidecars: map[string]sidecarCheck{
			"sidetail": {format: "prefix", files: map[string]string{"one": "1.log", "two": "2.log"}}}}},
}

// podman runs podman with a containers.conf of the test's own: runc (Debian's podman
// 4.3 default crun fails on hybrid cgroups), ulimits within the hard limit, and the
// k8s-file log driver, which writes the CRI format the kubelet does.
type podman struct {
	dir       string
	sidetail  string // image names
	busybox   string
	conf      string
	startTime time.Time
}

const e2eTag = "sidetail-e2e"

func newPodman(t *testing.T) *podman {
	t.Helper()
	e := &podman{dir: t.TempDir(), startTime: time.Now(),
		sidetail: "localhost/" + e2eTag + "/sidetail:test", busybox: "localhost/" + e2eTag + "/busybox:test"}
	e.conf = filepath.Join(e.dir, "containers.conf")
	os.WriteFile(e.conf, []byte(`[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
`), 0o644)
	builder := "localhost/" + e2eTag + "/go:test"
	t.Cleanup(func() { e.podman(t, "rmi", "-f", e.sidetail, e.busybox, builder) })

	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox-static is needed for the app image: ", err)
	}
	if bin, err := elf.Open(busybox); err != nil || slices.ContainsFunc(bin.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Fatalf("%s is not a static binary (%v): install busybox-static", busybox, err)
	}
	// The app image: Debian's static busybox, its applets as symlinks.
	root := filepath.Join(e.dir, "busybox")
	mkRootfs(t, root, busybox, "sh", "sleep", "date", "echo", "cat", "logger", "syslogd", "ln")
	e.importDir(t, root, e.busybox, "ENV PATH=/bin")

	// The builder stage's image: a shell, with this machine's Go toolchain mounted
	// in at the build (not copied into an image: 270 MB to import, ten seconds of
	// CPU taken from the tests beside), so the Dockerfile builds with no registry;
	// modules and build cache are mounted in too.
	goroot := strings.TrimSpace(e.output(t, "go", "env", "GOROOT"))
	root = filepath.Join(e.dir, "go")
	mkRootfs(t, root, busybox, "sh")
	e.importDir(t, root, builder, "ENV PATH=/usr/local/go/bin:/bin", "ENV HOME=/root", "ENV GOPATH=/go", "ENV GOTOOLCHAIN=local")
	// The build is offline (GOPROXY=off) from the host's module cache, and the
	// Dockerfile's go mod download needs more of the module graph than go test
	// fetched: complete the cache first, online, with the same command and flags.
	download := exec.Command("go", "mod", "download")
	download.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := download.CombinedOutput(); err != nil {
		t.Fatalf("go mod download (the image build needs every module in the host's cache): %v: %s", err, out)
	}
	begin := time.Now()
	// The build stage is left as an untagged image: remove it with the rest.
	dangling := strings.Fields(e.podman(t, "images", "-q", "--filter", "dangling=true"))
	t.Cleanup(func() {
		for _, id := range strings.Fields(e.podman(t, "images", "-q", "--filter", "dangling=true")) {
			if !slices.Contains(dangling, id) {
				e.podman(t, "rmi", "-f", id)
			}
		}
	})
	e.must(t, "build", "-q", "--network", "none",
		"--build-arg", "BUILDER="+builder, "--build-arg", "GOPROXY=off", "--build-arg", "GOFLAGS=-mod=mod",
		"--build-arg", "TARGETOS=linux", "--build-arg", "TARGETARCH="+runtime.GOARCH, "--build-arg", "VERSION=e2e",
		"-v", goroot+":/usr/local/go:ro",
		"-v", strings.TrimSpace(e.output(t, "go", "env", "GOMODCACHE"))+":/go/pkg/mod",
		"-v", strings.TrimSpace(e.output(t, "go", "env", "GOCACHE"))+":/root/.cache/go-build",
		"-t", e.sidetail, "..")
	size := e.must(t, "image", "inspect", "--format", "{{.Size}}", e.sidetail)
	t.Logf("image %s built from the Dockerfile in %s: %s bytes", e.sidetail, time.Since(begin).Round(time.Millisecond), strings.TrimSpace(size))
	return e
}

func mkRootfs(t *testing.T, root, busybox string, applets ...string) {
	t.Helper()
	for _, d := range []string{"bin", "tmp", "root", "usr/local"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755)
	for _, a := range applets {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
}

// importDir makes an image of a directory: podman import of its tar, no registry.
func (e *podman) importDir(t *testing.T, dir, image string, changes ...string) {
	t.Helper()
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	cmd := exec.Command("podman", append(args, "-", image)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+e.conf)
	tar := exec.Command("tar", "-C", dir, "-c", ".")
	var err error
	if cmd.Stdin, err = tar.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("podman import %s: %v: %s", image, err, out)
	}
	tar.Wait()
}

// podman runs a podman command; a failure fails the test and lets it go on, for
// steps whose failure leaves the rest worth checking (clean-ups, one example).
func (e *podman) podman(t *testing.T, args ...string) string {
	t.Helper()
	return e.check(t, t.Error, args)
}

// must runs a podman command every later step needs (the image build): a failure
// ends the test with that step's error alone, not one failure per example.
func (e *podman) must(t *testing.T, args ...string) string {
	t.Helper()
	return e.check(t, t.Fatal, args)
}

func (e *podman) check(t *testing.T, fail func(...any), args []string) string {
	t.Helper()
	out, err := e.exec(args...)
	if err != nil {
		fail(err)
	}
	return out
}

func (e *podman) exec(args ...string) (string, error) {
	cmd := exec.Command("podman", args...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+e.conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out), nil
}

func (e *podman) output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

var imageLine = regexp.MustCompile(`(?m)^(\s*image:\s*)(\S+)`)

// playable returns the example as podman kube play takes it: image names rewritten
// to the local ones, nothing else changed; except that native sidecars (init
// containers with restartPolicy: Always, which podman 4.3 would wait for) become
// ordinary containers, and a Job (which podman 4.3 cannot play) its pod template.
func (e *podman) playable(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data = imageLine.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := imageLine.FindSubmatch(m)
		image := e.busybox
		if bytes.Contains(sub[2], []byte("sidetail")) {
			image = e.sidetail
		} else if !bytes.HasPrefix(sub[2], []byte("busybox")) {
			t.Fatalf("%s: image %s has no local counterpart", file, sub[2])
		}
		return append(sub[1], image...)
	})
	if bytes.Contains(data, []byte("restartPolicy: Always")) || bytes.Contains(data, []byte("\nkind: Job")) {
		var obj any
		switch {
		case bytes.Contains(data, []byte("\nkind: Job")):
			var job batchv1.Job
			if err := yaml.UnmarshalStrict(data, &job); err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, Spec: job.Spec.Template.Spec}
			pod.Name = job.Name
			obj = pod
			unnativeSidecars(&pod.Spec)
		case bytes.Contains(data, []byte("\nkind: Deployment")):
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict(data, &d); err != nil {
				t.Fatal(err)
			}
			obj = &d
			unnativeSidecars(&d.Spec.Template.Spec)
		default:
			var pod corev1.Pod
			if err := yaml.UnmarshalStrict(data, &pod); err != nil {
				t.Fatal(err)
			}
			obj = &pod
			unnativeSidecars(&pod.Spec)
		}
		if data, err = yaml.Marshal(obj); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), filepath.Base(file))
	os.WriteFile(out, data, 0o644)
	return out
}

// unnativeSidecars makes native sidecars ordinary containers, first in the list.
func unnativeSidecars(spec *corev1.PodSpec) {
	var init []corev1.Container
	for _, c := range spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			c.RestartPolicy = nil
			spec.Containers = append([]corev1.Container{c}, spec.Containers...)
			continue
		}
		init = append(init, c)
	}
	spec.InitContainers = init
}

func (e *podman) runExample(t *testing.T, file string, check exampleCheck) {
	play := e.playable(t, file)
	spec, _ := podSpecOf(t, play)
	for _, v := range spec.Volumes {
		if exec.Command("podman", "volume", "exists", v.Name).Run() == nil {
			t.Fatalf("a podman volume %q exists already; kube play would use it and kube down remove it: remove it, or run the test elsewhere", v.Name)
		}
	}
	// The kubelet makes an emptyDir writable to all (0777); podman's volumes are
	// root's 0755, which a non-root app could not write to.
	for _, v := range spec.Volumes {
		e.podman(t, "volume", "create", v.Name)
		t.Cleanup(func() { e.podman(t, "volume", "rm", "-f", v.Name) }) // after kube down
		os.Chmod(strings.TrimSpace(e.podman(t, "volume", "inspect", "--format", "{{.Mountpoint}}", v.Name)), 0o777)
	}
	t.Cleanup(func() { e.podman(t, "kube", "down", play) })
	e.podman(t, "kube", "play", "--network", "none", play)
	if t.Failed() {
		t.FailNow()
	}
	begin := time.Now()
	for name, sc := range check.sidecars {
		ctr := check.pod + "-" + name
		log := e.criLog(t, ctr)
		waitFor(t, func() bool {
			got := relayed(t, ctr, log, sc)
			for tag := range sc.files {
				if len(got[tag]) < check.minLines {
					return false
				}
			}
			return true
		}, func() string {
			return fmt.Sprintf("%s: fewer than %d lines per file: %v\n%s", name, check.minLines,
				relayed(t, ctr, log, sc), e.podman(t, "logs", ctr))
		})
	}
	// Stop the app first, then the sidecars with SIGTERM, as the kubelet does with
	// native sidecars: every line the app wrote must then be out.
	apps := strings.Fields(check.app)
	for _, app := range apps {
		e.podman(t, "stop", "-t", "0", check.pod+"-"+app)
	}
	logs := e.podman(t, "inspect", "--format", `{{range .Mounts}}{{if eq .Destination "/var/log"}}{{.Source}}{{end}}{{end}}`, check.pod+"-"+apps[0])
	for name := range check.sidecars {
		e.podman(t, "stop", "-t", "10", check.pod+"-"+name)
	}
	t.Logf("%s: ran %s", filepath.Base(file), time.Since(begin).Round(time.Millisecond))
	for name, sc := range check.sidecars {
		ctr := check.pod + "-" + name
		if code := strings.TrimSpace(e.podman(t, "inspect", "--format", "{{.State.ExitCode}}", ctr)); code != "0" {
			t.Errorf("%s exited %s, want 0; logs:\n%s", ctr, code, e.podman(t, "logs", ctr))
		}
		got := relayed(t, ctr, e.criLog(t, ctr), sc)
		if check.rotated > 0 || check.discarded {
			checkRotated(t, strings.TrimSpace(logs), got[""], check)
			continue
		}
		for tag, name := range sc.files {
			data, err := os.ReadFile(filepath.Join(strings.TrimSpace(logs), name))
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			if !slices.Equal(got[tag], want) {
				t.Errorf("%s: %s relayed %d lines, the file has %d:\n got %q\nwant %q", ctr, name, len(got[tag]), len(want), got[tag], want)
			}
		}
	}
}

// checkRotated checks a rotating or discarding sidecar's output and volume: the
// relayed lines are numbered from 0 on without a gap up to the live file's last
// line, 1 to check.rotated archives were kept (none discarding), and the live
// file takes on disk no more than its 1Mi, one second of the app's writing (the
// check interval) and the blocks of the rounding.
func checkRotated(t *testing.T, dir string, got []string, check exampleCheck) {
	t.Helper()
	for i, line := range got {
		if !strings.HasPrefix(line, strconv.Itoa(i)+": ") {
			t.Fatalf("relayed line %d is %q: lost or repeated lines", i, line)
		}
	}
	live, err := os.ReadFile(filepath.Join(dir, "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(live), "\n"), "\n")
	if last := lines[len(lines)-1]; len(got) == 0 || got[len(got)-1] != last {
		t.Errorf("the file ends with %q, the last line relayed is not that", last)
	}
	archives, _ := filepath.Glob(filepath.Join(dir, "app-*.log*"))
	if check.discarded && len(archives) > 0 {
		t.Errorf("%d archives while discarding: %v", len(archives), archives)
	}
	if !check.discarded && (len(archives) < 1 || len(archives) > check.rotated) {
		t.Errorf("%d archives, want 1 to %d", len(archives), check.rotated)
	}
	used := disk.Usage(t, filepath.Join(dir, "app.log"))
	if len(live) > 3<<20 || used > 3<<20 {
		t.Errorf("live file is %d bytes, %d on disk: not kept near --rotate-max-size=1Mi", len(live), used)
	}
	size := 0
	for _, l := range got {
		size += len(l) + 1
	}
	t.Logf("%d lines (%d bytes) relayed; %d archives; live file %d bytes, %d on disk", len(got), size, len(archives), len(live), used)
}

// deadline bounds every wait: a hang guard, not a timing assertion.
const deadline = 60 * time.Second

// poll is how often a wait looks at a container's log: each look reads all of it,
// and this package's tests run beside other packages' (go test ./...), some of
// which need the CPU to keep up with their writers.
const poll = 100 * time.Millisecond

// waitFor waits until cond holds, and fails the test with what() once the
// deadline has passed.
func waitFor(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	for end := time.Now().Add(deadline); !cond(); time.Sleep(poll) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting: %s", what())
		}
	}
}

// criLog is the path of a container's log on the host, looked up once per
// container: a podman command takes a tenth of a second of CPU.
func (e *podman) criLog(t *testing.T, ctr string) string {
	t.Helper()
	return strings.TrimSpace(e.podman(t, "inspect", "--format", "{{.HostConfig.LogConfig.Path}}", ctr))
}

// relayed reads a container's CRI log at path (k8s-file: "TIME STREAM P|F TEXT", P
// for the pieces of a long line) and returns, per tag, the lines sidetail wrote to
// stdout. stderr is sidetail's own diagnostics: an error there fails the test.
func relayed(t *testing.T, ctr, path string, sc sidecarCheck) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%s: CRI log: %v", ctr, err)
	}
	defer f.Close()
	got := map[string][]string{}
	var partial string
	scan := bufio.NewScanner(f)
	scan.Buffer(nil, 1<<20)
	for scan.Scan() {
		fields := strings.SplitN(scan.Text(), " ", 4)
		if len(fields) < 3 {
			t.Fatalf("%s: not CRI format: %q", ctr, scan.Text())
		}
		if _, err := time.Parse(time.RFC3339Nano, fields[0]); err != nil {
			t.Fatalf("%s: CRI time %q: %v", ctr, fields[0], err)
		}
		text := ""
		if len(fields) == 4 {
			text = fields[3]
		}
		if fields[1] == "stderr" {
			if strings.Contains(text, "level=ERROR") {
				t.Errorf("%s: error on stderr: %s", ctr, text)
			}
			continue
		}
		if fields[2] == "P" {
			partial += text
			continue
		}
		line := partial + text
		partial = ""
		tag, msg := "", line
		switch sc.format {
		case "prefix":
			var ok bool
			if tag, msg, ok = strings.Cut(strings.TrimPrefix(line, "["), "] "); !ok {
				t.Fatalf("%s: no [tag] prefix: %q", ctr, line)
			}
		case "json":
			var o struct{ Time, Tag, File, Message string }
			if err := json.Unmarshal([]byte(line), &o); err != nil {
				t.Fatalf("%s: not JSON: %q: %v", ctr, line, err)
			}
			if o.Time == "" || o.File != "/var/log/"+sc.files[o.Tag] {
				t.Fatalf("%s: JSON without time or with the wrong file: %q", ctr, line)
			}
			tag, msg = o.Tag, o.Message
		}
		if _, ok := sc.files[tag]; !ok {
			t.Fatalf("%s: unexpected tag %q: %q", ctr, tag, line)
		}
		got[tag] = append(got[tag], msg)
	}
	return got
}
