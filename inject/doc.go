// Package inject adds the sidetail sidecar to the pod templates of Kubernetes
// workloads written as YAML or JSON, the way linkerd inject adds its proxy: stdin to
// stdout, so the result can be reviewed, committed or piped to kubectl apply.
//
// What is followed comes from the caller (--file) or from each pod template's
// sidetail.io/files annotation. The pod spec is read with the k8s.io/api types, but
// edited as generic JSON: fields this version of the types does not know survive,
// and nothing the injection did not touch changes meaning. Documents that hold no
// pod template are passed through byte for byte.
package inject
