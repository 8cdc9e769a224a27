package main

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/kubesalt/kubesalt/internal/cli"
	"github.com/kubesalt/kubesalt/internal/ociimage"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// The images' default references. The kubelet's (and containerd's
// sandbox_image) default pause image is registry.k8s.io/pause:3.10 for
// Kubernetes 1.31+; the test image has a host so the CRI's normalised
// name is the name ctr stored.
const (
	PauseRef = "registry.k8s.io/pause:3.10"
	ServeRef = "kubesalt.local/kubesalt-pod:v1"
	// CoreDNSRef is CoreDNS's own image name (kubernetes:dns:image's
	// default): the image made of `make coredns`'s binary stands in for it.
	CoreDNSRef = "docker.io/coredns/coredns:1.14.7"
)

// imageKinds: each kind's default reference, the path of its one file and
// its default arguments.
var imageKinds = map[string]struct {
	ref, path string
	cmd       []string
}{
	"pause":   {PauseRef, "/pause", nil},
	"coredns": {CoreDNSRef, "/coredns", nil},
	"serve":   {ServeRef, "/kubesalt-pod", []string{"serve", "--port", "8080"}},
}

// images builds the image of kind with bin as its only file.
func images(kind, ref string, bin []byte) (ociimage.Image, error) {
	k, ok := imageKinds[kind]
	if !ok {
		return ociimage.Image{}, fmt.Errorf("--kind %q: use pause, serve or coredns", kind)
	}
	if ref == "" {
		ref = k.ref
	}
	return ociimage.Image{
		Ref: ref, Files: []ociimage.File{{Path: k.path, Mode: 0o755, Data: bin}},
		Entrypoint: []string{k.path}, Cmd: k.cmd, Architecture: runtime.GOARCH,
	}, nil
}

func runImage(s *cli.Streams, args []string) int {
	var o cli.Output
	fs := cli.NewFlags(s, "kubesalt-pod image", &o)
	kind := fs.String("kind", "", "pause (the sandbox image), serve (the test image) or coredns (the cluster DNS, from --from)")
	from := fs.String("from", "", "the static binary the image holds (coredns: bin/k8s/coredns); default this binary")
	ref := fs.String("ref", "", "image reference (default "+PauseRef+" for pause, "+ServeRef+" for serve)")
	out := fs.String("file", "", "the tarball to write, for `ctr -n k8s.io images import`")
	if code, ok := cli.Parse(fs, &o, args); !ok {
		return code
	}
	if *out == "" {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--file is empty: name the tarball to write, e.g. --file /var/lib/kubesalt/images/pause.tar"))
	}
	if *kind == "coredns" && *from == "" {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--kind coredns needs --from: the CoreDNS binary `make coredns` builds, bin/k8s/coredns"))
	}
	src := *from
	if src == "" {
		self, err := os.Executable()
		if err != nil {
			return saltio.Fail(s.Stdout, s.Stderr, err)
		}
		src = self
	}
	bin, err := os.ReadFile(src)
	if err != nil && *from != "" {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--from: reading %s to put it in the image: %v; run `make coredns`", src, err))
	} else if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, fmt.Errorf("reading %s to put it in the image: %w", src, err))
	}
	img, err := images(*kind, *ref, bin)
	if err == nil {
		_, _, err = ociimage.SplitRef(img.Ref)
	}
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	var changed bool
	if o.Test {
		changed, err = ociimage.NeedsWrite(*out, img)
	} else {
		changed, err = ociimage.WriteFile(*out, img)
	}
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	res := saltio.Result{Result: saltio.Outcome(o.Test, changed, false), Data: map[string]any{"ref": img.Ref, "file": *out}}
	switch {
	case changed && o.Test:
		res.Comment = fmt.Sprintf("%s would be written to %s", img.Ref, *out)
		res.Changes = map[string]any{*out: map[string]any{"ref": img.Ref}}
	case changed:
		res.Comment = fmt.Sprintf("%s written to %s", img.Ref, *out)
		res.Changes = map[string]any{*out: map[string]any{"ref": img.Ref}}
	default:
		res.Comment = fmt.Sprintf("%s is up to date in %s", img.Ref, *out)
	}
	return cli.Emit(s, &o, res, func(w io.Writer) {
		cli.Row(w, "FILE", "REF", "CHANGED")
		cli.Row(w, *out, img.Ref, changed)
	})
}
