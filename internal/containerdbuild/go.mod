// The build module for containerd 2 (make containerd): containerd, its runc
// shim and ctr, at the version its go.sum pins.
module github.com/kubesalt/kubesalt/internal/containerdbuild

go 1.25.0

require github.com/containerd/containerd/v2 v2.2.9
