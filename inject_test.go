package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/sidetail/sidetail/inject"
	"github.com/sidetail/sidetail/internal/podcheck"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/inject")

// injectCases are the golden tests: testdata/inject/INPUT injected with cfg gives
// testdata/inject/NAME.golden (the output, then the report lines as comments).
var injectCases = []struct {
	name, input string
	files       []string
	classic     bool
	args        []string
	writable    bool
	fail        bool // every report an error: only the reports are golden
	lenient     bool // fields unknown to k8s.io/api on purpose: no strict decoding
}{
	{name: "counter-pod", input: "counter-pod.yaml", files: []string{"/var/log/1.log", "/var/log/2.log"}},
	{name: "counter-pod-classic", input: "counter-pod.yaml", files: []string{"/var/log/1.log"}, classic: true},
	{name: "counter-deployment-annotation", input: "counter-deployment.yaml"},
	{name: "kinds", input: "kinds.yaml", files: []string{"/var/log/app/*.log"}},
	{name: "kinds-classic", input: "kinds.yaml", files: []string{"/var/log/app/*.log"}, classic: true},
	{name: "list", input: "list.yaml", files: []string{"web=/var/log/web/access.log"}},
	{name: "json", input: "pod.json", files: []string{"/var/log/app/app.log"}},
	{name: "flags-over-annotation", input: "two-containers.yaml",
		files: []string{"/var/log/shop/shop.log", "worker:/var/log/worker/*.log"}},
	{name: "rotate-args", input: "counter-pod.yaml", files: []string{"/var/log/1.log"},
		args: []string{"--format=json", "--rotate-max-size=1Mi"}, writable: true},
	{name: "unknown-field", input: "unknown-field.yaml", files: []string{"/var/log/app/app.log"}, lenient: true},
	{name: "errors", input: "errors.yaml", fail: true},
}

func injectConfig(files, args []string, classic, writable bool) inject.Config {
	return inject.Config{Files: files, Image: "registry.example.com/sidetail:0.1.0", Classic: classic,
		StateDir: "/state", Args: args, Writable: writable}
}

// TestInjectGolden injects each case and compares with its golden file; checks
// that every output decodes strictly into the k8s.io/api types with each
// injected pod spec hardened like the examples; and that injecting the output
// again changes nothing.
func TestInjectGolden(t *testing.T) {
	for _, tc := range injectCases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata/inject", tc.input))
			if err != nil {
				t.Fatal(err)
			}
			cfg := injectConfig(tc.files, tc.args, tc.classic, tc.writable)
			out, reports := inject.Stream(cfg, in)
			var got bytes.Buffer
			failed := 0
			for _, r := range reports {
				if r.Err != nil {
					failed++
				}
			}
			if !tc.fail {
				got.Write(out)
			}
			got.WriteString("# --- reports\n")
			for _, r := range reports {
				got.WriteString("# " + r.String() + "\n")
			}
			golden := filepath.Join("testdata/inject", tc.name+".golden")
			if *update {
				os.WriteFile(golden, got.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestInjectGolden -update)", err)
			}
			if got.String() != string(want) {
				t.Errorf("output differs from %s (go test -run TestInjectGolden -update, then git diff):\n%s", golden, got.String())
			}
			if tc.fail {
				if failed != len(reports) {
					t.Errorf("%d of %d objects failed, want all", failed, len(reports))
				}
				return
			}
			if failed > 0 {
				t.Fatalf("%d objects failed", failed)
			}
			again, reports := inject.Stream(cfg, out)
			if !bytes.Equal(again, out) {
				t.Errorf("injecting the output again changed it:\n%s", again)
			}
			for _, r := range reports {
				if r.Err != nil || strings.HasPrefix(r.Outcome, "injected") && !strings.Contains(r.Outcome, "previous injection replaced") {
					t.Errorf("second run: %s", r)
				}
			}
			if !tc.lenient {
				for _, spec := range strictPodSpecs(t, out) {
					podcheck.Hardened(t, spec)
				}
			}
		})
	}
}

// The objects around the workloads and the separators pass through byte for
// byte, comments included; so do workloads that have nothing to follow.
func TestInjectPassthrough(t *testing.T) {
	in, err := os.ReadFile("testdata/inject/kinds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := inject.Stream(injectConfig([]string{"/var/log/app.log"}, nil, false, false), in)
	docs := strings.Split(string(in), "\n---\n")
	for _, doc := range []string{docs[0], docs[len(docs)-1]} { // the Service and the ConfigMap
		if !strings.Contains(string(out), doc) {
			t.Errorf("not passed through as it was:\n%s", doc)
		}
	}
	// No file given and no annotation: every workload is skipped, all unchanged.
	out, reports := inject.Stream(injectConfig(nil, nil, false, false), in)
	if !bytes.Equal(out, in) {
		t.Errorf("nothing to inject, yet the output differs from the input:\n%s", out)
	}
	if len(reports) != 8 || !strings.Contains(reports[1].String(), "statefulset/db: skipped (no files") {
		t.Errorf("reports: %v", reports)
	}
}

// strictPodSpecs decodes every document of a YAML stream strictly (an unknown
// or misspelt field fails) into its k8s.io/api type and returns the pod specs of
// those the sidecar was added to.
func strictPodSpecs(t *testing.T, stream []byte) []*corev1.PodSpec {
	t.Helper()
	var specs []*corev1.PodSpec
	for _, doc := range strings.Split(string(stream), "\n---\n") {
		var head struct {
			Kind  string
			Items []any
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, doc)
		}
		if head.Kind == "List" {
			for _, item := range head.Items {
				data, _ := yaml.Marshal(item)
				specs = append(specs, strictPodSpecs(t, data)...)
			}
			continue
		}
		// A fresh object of each kind the examples hold, to decode the document into.
		obj, ok := map[string]any{
			"Pod": &corev1.Pod{}, "ReplicationController": &corev1.ReplicationController{},
			"Service": &corev1.Service{}, "ConfigMap": &corev1.ConfigMap{},
			"Deployment": &appsv1.Deployment{}, "StatefulSet": &appsv1.StatefulSet{},
			"DaemonSet": &appsv1.DaemonSet{}, "ReplicaSet": &appsv1.ReplicaSet{},
			"Job": &batchv1.Job{}, "CronJob": &batchv1.CronJob{},
		}[head.Kind]
		if !ok {
			t.Fatalf("kind %q: add it to strictPodSpecs", head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("not a valid %s: %v\n%s", head.Kind, err, doc)
		}
		if spec := podSpecIn(t, head.Kind, doc); spec != nil {
			specs = append(specs, spec)
		}
	}
	return specs
}

// podSpecIn returns the pod spec of a document already checked strictly: a Pod's
// own, a workload's pod template's (a CronJob's inside its job template), or nil
// for a kind that runs no pods.
func podSpecIn(t *testing.T, kind, doc string) *corev1.PodSpec {
	t.Helper()
	var holder struct {
		Spec struct {
			corev1.PodSpec
			Template    corev1.PodTemplateSpec
			JobTemplate struct {
				Spec struct{ Template corev1.PodTemplateSpec }
			}
		}
	}
	if err := yaml.Unmarshal([]byte(doc), &holder); err != nil {
		t.Fatalf("not a valid %s: %v\n%s", kind, err, doc)
	}
	switch spec := &holder.Spec; kind {
	case "Service", "ConfigMap":
		return nil
	case "Pod":
		return &spec.PodSpec
	case "CronJob":
		return &spec.JobTemplate.Spec.Template.Spec
	default:
		return &spec.Template.Spec
	}
}

// TestInjectCommand runs the built binary's inject command: flags to the
// sidecar's args, reports on stderr, and on any error exit 1 with nothing on
// stdout; usage errors exit 2 naming the flag.
func TestInjectCommand(t *testing.T) {
	t.Parallel() // exit codes and output only: nothing here needs the CPU to itself
	runInject := func(stdin string, args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"inject"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if exit, ok := err.(*exec.ExitError); ok {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	pod, err := os.ReadFile("testdata/inject/counter-pod.yaml")
	if err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runInject(string(pod), "--file=one=/var/log/1.log", "--format=json", "--multiline-start=one=^\\d",
		"--rotate-max-size=1Mi", "--rotate-max-age=7d", "--quiet", "--image=example.com/sidetail:1", "--state-dir=/ckpt")
	if code != 0 || errOut != "pod/counter: injected (1 file)\n" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var p corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	c := p.Spec.InitContainers[0]
	want := []string{"--format=json", "--quiet", "--multiline-start=one=^\\d", "--rotate-max-size=1Mi", "--rotate-max-age=168h0m0s",
		"--state-dir=/ckpt", "one=/var/log/1.log"}
	if c.Image != "example.com/sidetail:1" || strings.Join(c.Args, " ") != strings.Join(want, " ") {
		t.Errorf("sidecar %s args %q, want %q", c.Image, c.Args, want)
	}
	if c.VolumeMounts[0].ReadOnly {
		t.Error("the log volume is read-only in a sidecar that rotates")
	}

	// Files and folders as inputs, one stream out.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), pod, 0o644)
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not read"), 0o644)
	out, errOut, code = runInject("", "--file=/var/log/1.log", dir, "testdata/inject/list.yaml")
	if code != 0 || strings.Count(out, "\n---\n") != 2 || strings.Count(errOut, "\n") != 4 {
		t.Errorf("exit %d; stderr:\n%s\nstdout:\n%s", code, errOut, out)
	}

	// One object failing: exit 1, nothing written, the file and object named.
	out, errOut, code = runInject("", "testdata/inject/counter-deployment.yaml", "testdata/inject/errors.yaml")
	if code != 1 || out != "" || !strings.Contains(errOut, "testdata/inject/errors.yaml: pod/subpath: error: /var/log/app.log: container app mounts volume data at /var/log with a subPath") ||
		!strings.Contains(errOut, "deployment/counter-deploy: injected (2 files)") || !strings.Contains(errOut, "nothing written") {
		t.Errorf("exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--format=xml"}, "--format"},
		{[]string{"--multiline-start=("}, "--multiline-start"},
		{[]string{"--prefix=[{nope}] "}, "--prefix"},
		{[]string{"--format=json", "--prefix=x"}, "--prefix"},
		{[]string{"--rotate-max-size=1Ki"}, "--rotate-max-size"},
		{[]string{"--rotate-max-files=3"}, "--rotate-max-size"},
		{[]string{"--state-dir=state"}, "--state-dir"},
		{[]string{"--file=/a.log,/b.log"}, "--file"},
		{[]string{"testdata/inject/missing.yaml"}, "missing.yaml"},
	} {
		out, errOut, code := runInject(string(pod), tt.args...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line naming %s", tt.args, code, out, errOut, tt.want)
		}
	}
}

// As kubectl-sidetail (a symbolic link), the binary is the kubectl plugin.
func TestKubectlPlugin(t *testing.T) {
	t.Parallel()
	link := filepath.Join(t.TempDir(), "kubectl-sidetail")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(link, "inject", "--help").Output()
	if err != nil || !strings.Contains(string(out), "Usage: kubectl sidetail inject") {
		t.Errorf("%v: %s", err, out)
	}
}

// The sidecar's build (the Dockerfile's flags, no inject tag) stays under 6 MiB
// and its inject command says how to get the real one.
func TestSidecarBinarySize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	small := filepath.Join(t.TempDir(), "sidetail")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", small, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	info, err := os.Stat(small)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sidecar binary: %d bytes", info.Size())
	if info.Size() > 6<<20 {
		t.Errorf("the sidecar binary is %d bytes, over 6 MiB", info.Size())
	}
	out, err := exec.Command(small, "inject", "-").CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "go install -tags inject") {
		t.Errorf("inject without the tag: %v: %s", err, out)
	}
}
