package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
)

const (
	// AnnotationFiles on a pod template names what to follow when no file is
	// given on the command line: [CONTAINER:][TAG=]PATH, separated by commas.
	AnnotationFiles = "sidetail.io/files"
	// AnnotationInjected marks a template inject changed and lists the volumes it
	// added, so that a second run removes the first injection before adding its
	// own (the same output as one run).
	AnnotationInjected = "sidetail.io/injected"
	// annotationDefaultContainer keeps kubectl logs and exec on the app.
	annotationDefaultContainer = "kubectl.kubernetes.io/default-container"
)

// templatePaths says where each workload kind keeps its pod template, and under
// which apiVersion; an object of any other kind has none.
var templatePaths = map[string]struct {
	apiVersion string
	path       []string
}{
	"Pod":                   {"v1", nil},
	"ReplicationController": {"v1", []string{"spec", "template"}},
	"Deployment":            {"apps/v1", []string{"spec", "template"}},
	"StatefulSet":           {"apps/v1", []string{"spec", "template"}},
	"DaemonSet":             {"apps/v1", []string{"spec", "template"}},
	"ReplicaSet":            {"apps/v1", []string{"spec", "template"}},
	"Job":                   {"batch/v1", []string{"spec", "template"}},
	"CronJob":               {"batch/v1", []string{"spec", "jobTemplate", "spec", "template"}},
}

// object injects one object given as JSON. It returns the edited object as generic
// JSON values, or nil when the object stays as it is.
func object(cfg Config, js []byte) (map[string]any, Report) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	// Field names match case-sensitively, as the API server matches them.
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil {
		return nil, Report{Object: "object", Err: fmt.Errorf("parse object: %v", err)}
	}
	rep := Report{Object: strings.ToLower(head.Kind) + "/" + head.Metadata.Name}
	if head.Kind == "" {
		rep.Object = "object without kind"
	}
	where, ok := templatePaths[head.Kind]
	if !ok || head.APIVersion != where.apiVersion {
		rep.Outcome = "skipped (no pod template)"
		return nil, rep
	}
	v, err := decode(js)
	if err != nil {
		rep.Err = err
		return nil, rep
	}
	obj := v.(map[string]any)
	tmpl := obj
	for _, key := range where.path {
		if tmpl, ok = tmpl[key].(map[string]any); !ok {
			rep.Err = fmt.Errorf("no %s: not a valid %s", strings.Join(where.path, "."), head.Kind)
			return nil, rep
		}
	}
	outcome, changed, err := template(cfg, tmpl)
	rep.Outcome, rep.Err = outcome, err
	if err != nil || !changed {
		return nil, rep
	}
	if cfg.Classic && (head.Kind == "Job" || head.Kind == "CronJob") {
		rep.Outcome += "; warning: with --classic the sidecar keeps each Job from completing"
	}
	return obj, rep
}

// template injects the sidecar into a pod template (for a Pod, the Pod itself:
// both have metadata and spec), editing its generic form in place. It reports
// whether it changed the template.
func template(cfg Config, tmpl map[string]any) (outcome string, changed bool, err error) {
	spec, ok := tmpl["spec"].(map[string]any)
	if !ok {
		return "", false, errors.New("no pod spec")
	}
	meta, _ := tmpl["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		tmpl["metadata"] = meta
	}
	annotations, _ := meta["annotations"].(map[string]any)
	if annotations == nil {
		annotations = map[string]any{}
	}
	files, note := cfg.Files, ""
	if _, ok := annotations[AnnotationFiles]; ok && len(files) > 0 {
		note = "; --file overrides the " + AnnotationFiles + " annotation"
	}
	if len(files) == 0 {
		list, _ := annotations[AnnotationFiles].(string)
		for f := range strings.SplitSeq(list, ",") {
			if f = strings.TrimSpace(f); f != "" {
				files = append(files, f)
			}
		}
		if len(files) == 0 {
			return "skipped (no files: give --file or annotate the pod template with " + AnnotationFiles + ")", false, nil
		}
	}
	if prev, ok := annotations[AnnotationInjected].(string); ok {
		removeInjection(spec, strings.Split(prev, ","))
		delete(annotations, AnnotationInjected)
		note += "; the previous injection replaced"
	}
	var typed corev1.PodTemplateSpec
	js, _ := json.Marshal(tmpl)
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &typed); err != nil {
		return "", false, fmt.Errorf("parse pod template: %v", err)
	}
	defaultContainer, _ := annotations[annotationDefaultContainer].(string)
	p, err := planInjection(cfg, &typed.Spec, files, defaultContainer)
	if err != nil {
		return "", false, err
	}
	p.apply(spec)
	if defaultContainer == "" {
		annotations[annotationDefaultContainer] = p.app
	}
	annotations[AnnotationInjected] = strings.Join(p.added, ",")
	meta["annotations"] = annotations
	plural := "s"
	if len(files) == 1 {
		plural = ""
	}
	return fmt.Sprintf("injected (%d file%s%s)", len(files), plural, note), true, nil
}

// removeInjection takes out what a previous run added: the sidecar, the volumes
// listed in its annotation and every mount of them.
func removeInjection(spec map[string]any, volumes []string) {
	for _, key := range []string{"initContainers", "containers"} {
		filterList(spec, key, func(c map[string]any) bool {
			if c["name"] == ContainerName {
				return false
			}
			filterList(c, "volumeMounts", func(m map[string]any) bool {
				name, _ := m["name"].(string)
				return !slices.Contains(volumes, name)
			})
			return true
		})
	}
	filterList(spec, "volumes", func(v map[string]any) bool {
		name, _ := v["name"].(string)
		return !slices.Contains(volumes, name)
	})
}

// filterList keeps the objects of the list obj[key] that keep returns true for,
// and removes the key when none is left.
func filterList(obj map[string]any, key string, keep func(map[string]any) bool) {
	list, _ := obj[key].([]any)
	var kept []any
	for _, item := range list {
		if m, ok := item.(map[string]any); !ok || keep(m) {
			kept = append(kept, item)
		}
	}
	if len(kept) == 0 {
		delete(obj, key)
		return
	}
	obj[key] = kept
}
