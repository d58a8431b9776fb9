package inject

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// ContainerName is the sidecar's name in the pod.
const ContainerName = "sidetail"

// stateVolume is the sidecar's own emptyDir for checkpoints: it outlives a
// restart of the sidecar, so a restarted sidecar resumes where it stopped.
const stateVolume = "sidetail-state"

// Config is what to inject.
type Config struct {
	// Files to follow, [CONTAINER:][TAG=]PATH; when empty, each pod template's
	// sidetail.io/files annotation.
	Files    []string
	Image    string
	Classic  bool     // in containers, for clusters without native sidecars (< 1.29)
	StateDir string   // where the state emptyDir is mounted in the sidecar
	Args     []string // the tail command's flags, before the paths
	Writable bool     // the sidecar writes to the log volumes: it rotates the files
}

// source is one file to follow.
type source struct {
	container string // the app container writing it; "" to be found
	arg       string // [TAG=]PATH, as the sidecar gets it
	path      string
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// The tail command's tag rule (validTag in package main).
	tagRule = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

func parseSource(s string) (source, error) {
	var src source
	rest := s
	if c, r, ok := strings.Cut(s, ":"); ok && len(c) <= 63 && dnsLabel.MatchString(c) {
		src.container, rest = c, r
	}
	src.arg, src.path = rest, rest
	if tag, p, ok := strings.Cut(rest, "="); ok && tagRule.MatchString(tag) {
		src.path = p
	}
	if !path.IsAbs(src.path) || path.Clean(src.path) != src.path || src.path == "/" {
		return src, fmt.Errorf("file %q: want [CONTAINER:][TAG=]PATH with an absolute, clean PATH to a file or glob, e.g. app:/var/log/app/*.log", s)
	}
	return src, nil
}

// folder is the directory of a path up to its first glob metacharacter: what
// must be shared between the app and the sidecar.
func folder(p string) string {
	dir := path.Dir(p)
	for strings.ContainsAny(dir, "*?[") {
		dir = path.Dir(dir)
	}
	return dir
}

// imageFolders are folders an emptyDir must not cover: it would hide the image's
// own files there (binaries, libraries, configuration).
var imageFolders = []string{"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64",
	"/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/usr/bin", "/usr/lib",
	"/usr/local", "/usr/local/bin", "/usr/sbin", "/usr/share", "/var", "/var/lib"}

// plan is what the injection adds to one pod spec.
type plan struct {
	app       string                          // the app container kubectl should default to
	mounts    map[string][]corev1.VolumeMount // new mounts per app container
	volumes   []corev1.Volume
	sidecar   corev1.Container
	logMounts []corev1.VolumeMount // the sidecar's
	native    bool
	added     []string // names of the volumes added, for AnnotationInjected
	workingOn *corev1.PodSpec
}

// planInjection decides, for each file, which volume the sidecar reads it from,
// adding an emptyDir where the app has none; spec must not hold a previous
// injection.
func planInjection(cfg Config, spec *corev1.PodSpec, files []string, defaultContainer string) (*plan, error) {
	if len(spec.Containers) == 0 {
		return nil, fmt.Errorf("no containers in the pod spec")
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Name == "" {
			return nil, fmt.Errorf("a container without a name: not a valid pod spec")
		}
		if c.Name == ContainerName {
			return nil, fmt.Errorf("a container named %s is there already, not added by sidetail inject (no %s annotation): remove it, or add that annotation listing the volumes it added", ContainerName, AnnotationInjected)
		}
	}
	p := &plan{mounts: map[string][]corev1.VolumeMount{}, native: !cfg.Classic, workingOn: spec}
	var args []string
	for _, f := range files {
		src, err := parseSource(f)
		if err != nil {
			return nil, err
		}
		if err := p.follow(cfg, src, defaultContainer); err != nil {
			return nil, fmt.Errorf("%s: %w", src.path, err)
		}
		args = append(args, src.arg)
	}
	for _, m := range p.logMounts {
		if within(m.MountPath, cfg.StateDir) || within(cfg.StateDir, m.MountPath) {
			return nil, fmt.Errorf("--state-dir=%s: the sidecar mounts logs at %s; choose a state dir outside the log folders", cfg.StateDir, m.MountPath)
		}
	}
	if p.volumeExists(stateVolume) {
		return nil, fmt.Errorf("a volume named %s is there already, not added by sidetail inject: rename it", stateVolume)
	}
	p.addVolume(corev1.Volume{Name: stateVolume, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr(resource.MustParse("1Mi"))}}})
	mounts := append(p.logMounts, corev1.VolumeMount{Name: stateVolume, MountPath: cfg.StateDir})
	p.sidecar = sidecar(cfg, append(append(slices.Clone(cfg.Args), "--state-dir="+cfg.StateDir), args...), mounts)
	return p, nil
}

// follow finds or makes the volume holding src in its app container and mounts
// it in the sidecar at the same path, so the path is the same in both.
func (p *plan) follow(cfg Config, src source, defaultContainer string) error {
	dir := folder(src.path)
	var app *corev1.Container
	var mount *corev1.VolumeMount
	if src.container != "" {
		if app = p.container(src.container); app == nil {
			return fmt.Errorf("no container %q among %s", src.container, p.names())
		}
		mount = covering(app, dir)
	} else {
		// The app is the container that already shares the folder, else the
		// default container, else the only one.
		for i := range p.workingOn.Containers {
			if m := covering(&p.workingOn.Containers[i], dir); m != nil {
				app, mount = &p.workingOn.Containers[i], m
				break
			}
		}
		if app == nil && defaultContainer != "" {
			app = p.container(defaultContainer)
		}
		if app == nil && len(p.workingOn.Containers) == 1 {
			app = &p.workingOn.Containers[0]
		}
		if app == nil {
			return fmt.Errorf("%d containers (%s) and none mounts %s: name the one writing it, e.g. %s:%s",
				len(p.workingOn.Containers), p.names(), dir, p.workingOn.Containers[0].Name, src.arg)
		}
	}
	if p.app == "" {
		p.app = app.Name
	}
	if mount != nil {
		if mount.SubPath != "" || mount.SubPathExpr != "" {
			return fmt.Errorf("container %s mounts volume %s at %s with a subPath; sidetail inject mounts whole volumes: mount it without subPath, or give the logs a volume of their own", app.Name, mount.Name, mount.MountPath)
		}
		return p.mountInSidecar(mount.Name, mount.MountPath, cfg.Writable)
	}
	if slices.Contains(imageFolders, dir) {
		return fmt.Errorf("an emptyDir at %s would hide the image's files there: have the app write its logs to a folder of their own (e.g. /var/log/app), or mount a volume at the folder yourself", dir)
	}
	if app.WorkingDir != "" && within(path.Clean(app.WorkingDir), dir) {
		return fmt.Errorf("an emptyDir at %s would hide container %s's workingDir %s: have the app write its logs to a folder of their own, or mount a volume there yourself", dir, app.Name, app.WorkingDir)
	}
	if len(app.Command) > 0 && within(path.Clean(app.Command[0]), dir) {
		return fmt.Errorf("an emptyDir at %s would hide container %s's command %s: have the app write its logs to a folder of their own, or mount a volume there yourself", dir, app.Name, app.Command[0])
	}
	name := p.volumeName(dir)
	p.addVolume(corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	m := corev1.VolumeMount{Name: name, MountPath: dir}
	// The working copy sees the mount too, so later files in the folder use it.
	app.VolumeMounts = append(app.VolumeMounts, m)
	p.mounts[app.Name] = append(p.mounts[app.Name], m)
	return p.mountInSidecar(name, dir, cfg.Writable)
}

func (p *plan) mountInSidecar(volume, at string, writable bool) error {
	for _, m := range p.logMounts {
		if m.MountPath == at {
			if m.Name != volume {
				return fmt.Errorf("the sidecar would mount both volume %s and %s at %s (different containers mount them there): follow files of one of them per injection", m.Name, volume, at)
			}
			return nil
		}
	}
	p.logMounts = append(p.logMounts, corev1.VolumeMount{Name: volume, MountPath: at, ReadOnly: !writable})
	return nil
}

// covering returns c's mount whose path holds dir, the deepest one.
func covering(c *corev1.Container, dir string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if within(dir, m.MountPath) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	return best
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	dir = path.Clean(dir)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func (p *plan) container(name string) *corev1.Container {
	for i := range p.workingOn.Containers {
		if p.workingOn.Containers[i].Name == name {
			return &p.workingOn.Containers[i]
		}
	}
	return nil
}

func (p *plan) names() string {
	var names []string
	for _, c := range p.workingOn.Containers {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

func (p *plan) volumeExists(name string) bool {
	return slices.ContainsFunc(p.workingOn.Volumes, func(v corev1.Volume) bool { return v.Name == name })
}

func (p *plan) addVolume(v corev1.Volume) {
	p.workingOn.Volumes = append(p.workingOn.Volumes, v)
	p.volumes = append(p.volumes, v)
	p.added = append(p.added, v.Name)
}

// volumeName names the emptyDir for a folder after it, sidetail-var-log-app, a
// DNS label unused in the pod.
func (p *plan) volumeName(dir string) string {
	var b strings.Builder
	b.WriteString("sidetail")
	dash := true
	for _, r := range strings.ToLower(dir) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	base := b.String()
	if len(base) > 55 {
		base = strings.TrimRight(base[:55], "-")
	}
	name := base
	for i := 2; p.volumeExists(name) || name == stateVolume; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return name
}

// sidecar is the sidetail container, hardened like the examples in examples/.
func sidecar(cfg Config, args []string, mounts []corev1.VolumeMount) corev1.Container {
	c := corev1.Container{
		Name:  ContainerName,
		Image: cfg.Image,
		Args:  args,
		// The Go heap stays within the container's memory limit.
		Env: []corev1.EnvVar{{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{
			ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("8Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr(true),
			RunAsUser:                ptr(int64(65532)),
			RunAsGroup:               ptr(int64(65532)),
			ReadOnlyRootFilesystem:   ptr(true),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		VolumeMounts: mounts,
	}
	if !cfg.Classic {
		c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
	}
	return c
}

// apply adds the plan to the generic form of the pod spec it was made from.
func (p *plan) apply(spec map[string]any) {
	containers, _ := spec["containers"].([]any)
	for _, item := range containers {
		c, _ := item.(map[string]any)
		name, _ := c["name"].(string)
		for _, m := range p.mounts[name] {
			mounts, _ := c["volumeMounts"].([]any)
			c["volumeMounts"] = append(mounts, generic(m))
		}
	}
	for _, v := range p.volumes {
		list, _ := spec["volumes"].([]any)
		spec["volumes"] = append(list, generic(v))
	}
	key := "initContainers"
	if !p.native {
		key = "containers"
	}
	list, _ := spec[key].([]any)
	sidecar := generic(p.sidecar).(map[string]any)
	// A zero divisor means 1, and is written out only because Quantity is not
	// a pointer: leave it out, as the examples do.
	for _, e := range sidecar["env"].([]any) {
		if ref, ok := e.(map[string]any)["valueFrom"].(map[string]any)["resourceFieldRef"].(map[string]any); ok && ref["divisor"] == "0" {
			delete(ref, "divisor")
		}
	}
	spec[key] = append(list, sidecar)
}

func ptr[T any](v T) *T { return &v }
