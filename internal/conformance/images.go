// Package conformance runs the Kubernetes project's own [Conformance] specs
// (e2e.test, built from the Go module proxy) against a cluster that reaches
// no registry: it builds the images the specs run, under the names e2e.test
// asks for, from local parts, and reads the suite's JUnit report.
package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/kubesalt/kubesalt/internal/ociimage"
)

// RootfsPackages are what the Debian-based images need beyond minbase: the
// tools agnhost's own (Alpine) image carries, which specs run in it (dig,
// curl, nc, ss, bash), nginx for the web server images, and busybox-static
// for the busybox image.
var RootfsPackages = []string{
	"bash", "bind9-dnsutils", "busybox-static", "curl", "iperf", "iproute2",
	"iputils-ping", "netcat-openbsd", "nginx-light", "procps",
}

// Sources are the local parts the images are made of.
type Sources struct {
	// Rootfs is the Debian tree with RootfsPackages (debian.Tree).
	Rootfs string
	// E2EDir is `make e2e-binaries`' directory: agnhost, nonewprivs (nnp) and
	// sample-apiserver, and the image files kept from the Kubernetes module
	// (porter/localhost.{crt,key}, kitten/, nautilus/).
	E2EDir string
	// Etcd is the etcd binary (make etcd); Pause the program the pause
	// image runs (kubesalt-pod, which pauses when called as /pause).
	Etcd, Pause string
}

// Built is an image tarball written for `ctr images import`.
type Built struct{ Ref, Tarball string }

// Unbuilt is an image e2e.test lists that is not made here, and why.
type Unbuilt struct{ Ref, Reason string }

// debianEnv is the Debian images' environment (what debian:bookworm sets).
var debianEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// notBuilt says why an image e2e.test lists has no recipe here: none of
// the [Conformance] specs runs it (a make conformance run that pulled one
// would fail that spec, naming it), or it must stay unpullable.
func notBuilt(repo string) string {
	switch {
	case repo == "invalid.registry.k8s.io/invalid/alpine":
		return "must not exist: the spec checks that pulling it fails"
	case strings.HasPrefix(repo, "gcr.io/k8s-authenticated-test/"):
		return "a private registry's image: only specs of pulling with credentials run it, none of them [Conformance]"
	case strings.HasPrefix(repo, "registry.k8s.io/sig-storage/"), strings.HasPrefix(repo, "registry.k8s.io/cloud-provider-gcp/"),
		strings.HasPrefix(repo, "registry.k8s.io/e2e-test-images/volume/"):
		return "a storage driver's or volume server's image: only the storage drivers' specs run it, none of them [Conformance]"
	default:
		return "no [Conformance] spec runs it"
	}
}

// builder makes one image of the sources.
type builder struct {
	src  Sources
	base ociimage.Layer // the Debian tree, made once
}

// recipes are the images made here, by repository (the reference without
// its tag).
var recipes = map[string]func(*builder, string) (ociimage.Image, error){
	"registry.k8s.io/e2e-test-images/agnhost":           (*builder).agnhost,
	"registry.k8s.io/e2e-test-images/kitten":            func(b *builder, ref string) (ociimage.Image, error) { return b.webserver(ref, "kitten") },
	"registry.k8s.io/e2e-test-images/nautilus":          func(b *builder, ref string) (ociimage.Image, error) { return b.webserver(ref, "nautilus") },
	"registry.k8s.io/e2e-test-images/busybox":           (*builder).busybox,
	"registry.k8s.io/e2e-test-images/glibc-dns-testing": (*builder).debian,
	"registry.k8s.io/e2e-test-images/nonroot":           (*builder).nonroot,
	"registry.k8s.io/e2e-test-images/nonewprivs":        (*builder).nonewprivs,
	"registry.k8s.io/e2e-test-images/nginx":             (*builder).nginx,
	"registry.k8s.io/e2e-test-images/sample-apiserver":  (*builder).sampleAPIServer,
	"registry.k8s.io/etcd":                              (*builder).etcd,
	"registry.k8s.io/pause":                             (*builder).pause,
}

// BuildImages writes into outDir an image tarball for every reference in
// refs (e2e.test --list-images) that has a recipe, and reports the others.
// A tarball already holding the same image is left as it is.
func BuildImages(src Sources, refs []string, outDir string) ([]Built, []Unbuilt, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, nil, err
	}
	b := &builder{src: src}
	var built []Built
	var unbuilt []Unbuilt
	for _, ref := range refs {
		repo, tag, err := ociimage.SplitRef(ref)
		if err != nil {
			return nil, nil, fmt.Errorf("e2e.test --list-images: %w", err)
		}
		recipe, ok := recipes[repo]
		if !ok {
			unbuilt = append(unbuilt, Unbuilt{ref, notBuilt(repo)})
			continue
		}
		img, err := recipe(b, ref)
		if err != nil {
			return nil, nil, fmt.Errorf("image %s: %w", ref, err)
		}
		tarball := filepath.Join(outDir, strings.ReplaceAll(strings.TrimPrefix(repo, "registry.k8s.io/"), "/", "_")+"_"+tag+".tar")
		if _, err := ociimage.WriteFile(tarball, img); err != nil {
			return nil, nil, err
		}
		built = append(built, Built{ref, tarball})
	}
	return built, unbuilt, nil
}

// debianBase is the Debian tree's layer, made on first use.
func (b *builder) debianBase() ([]ociimage.Layer, error) {
	if b.base.Size() == 0 {
		l, err := ociimage.DirLayer(b.src.Rootfs)
		if err != nil {
			return nil, err
		}
		b.base = l
	}
	return []ociimage.Layer{b.base}, nil
}

func (b *builder) read(name string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(b.src.E2EDir, name))
	if err != nil {
		return nil, fmt.Errorf("%w: run `make e2e-binaries`", err)
	}
	return data, nil
}

func (b *builder) debian(ref string) (ociimage.Image, error) {
	base, err := b.debianBase()
	return ociimage.Image{Ref: ref, Base: base, Env: debianEnv, Cmd: []string{"bash"}, Architecture: runtime.GOARCH}, err
}

// agnhost is agnhost's image on the Debian tree: /agnhost (and agnhost-2,
// its other name the entrypoint specs use), netexec's /uploads, porter's
// certificate, and the user and group a SupplementalGroups spec expects the
// image to define.
func (b *builder) agnhost(ref string) (ociimage.Image, error) {
	img, err := b.debian(ref)
	if err != nil {
		return img, err
	}
	files := []ociimage.File{
		{Path: "/agnhost-2", Link: "agnhost"},
		{Path: "/uploads", Mode: os.ModeDir | 0o755},
	}
	for _, f := range []struct{ from, to string }{
		{"agnhost", "/agnhost"}, {"porter/localhost.crt", "/localhost.crt"}, {"porter/localhost.key", "/localhost.key"},
	} {
		data, err := b.read(f.from)
		if err != nil {
			return img, err
		}
		files = append(files, ociimage.File{Path: f.to, Mode: 0o755, Data: data})
	}
	for _, f := range []struct{ path, add string }{
		{"etc/passwd", "user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n"},
		{"etc/group", "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"},
	} {
		data, err := os.ReadFile(filepath.Join(b.src.Rootfs, f.path))
		if err != nil {
			return img, err
		}
		files = append(files, ociimage.File{Path: "/" + f.path, Mode: 0o644, Data: append(data, f.add...)})
	}
	img.Files, img.Entrypoint, img.Cmd = files, []string{"/agnhost"}, []string{"pause"}
	return img, nil
}

// webserver is agnhost serving a page's files (kitten, nautilus): specs
// tell the two apart by what they serve.
func (b *builder) webserver(ref, page string) (ociimage.Image, error) {
	img, err := b.agnhost(ref)
	if err != nil {
		return img, err
	}
	for _, name := range []string{page + ".jpg", "data.json"} {
		data, err := b.read(filepath.Join(page, name))
		if err != nil {
			return img, err
		}
		img.Files = append(img.Files, ociimage.File{Path: "/" + name, Mode: 0o644, Data: data})
	}
	img.Cmd = []string{"test-webserver"}
	return img, nil
}

// busybox is Debian's busybox-static alone, with a link for each applet
// (sh is its ash, whose messages specs compare).
func (b *builder) busybox(ref string) (ociimage.Image, error) {
	bin := filepath.Join(b.src.Rootfs, "usr/bin/busybox")
	data, err := os.ReadFile(bin)
	if err != nil {
		return ociimage.Image{}, fmt.Errorf("%w: the Debian tree lacks busybox-static", err)
	}
	out, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return ociimage.Image{}, fmt.Errorf("%s --list-full: %w", bin, err)
	}
	files := []ociimage.File{
		{Path: "/bin/busybox", Mode: 0o755, Data: data},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnobody:x:65534:\n")},
		{Path: "/tmp", Mode: os.ModeDir | os.ModeSticky | 0o777},
		{Path: "/root", Mode: os.ModeDir | 0o700},
	}
	seen := map[string]bool{"/bin/busybox": true}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// Every applet in /bin: the image is one directory of tools, as
		// upstream's busybox image is.
		p := "/bin/" + filepath.Base(strings.TrimSpace(sc.Text()))
		if p == "/bin/" || seen[p] {
			continue
		}
		seen[p] = true
		files = append(files, ociimage.File{Path: p, Link: "busybox"})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return ociimage.Image{Ref: ref, Files: files, Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}, Architecture: runtime.GOARCH}, nil
}

func (b *builder) nonroot(ref string) (ociimage.Image, error) {
	img, err := b.debian(ref)
	img.User = "1234"
	return img, err
}

// nonewprivs runs nnp, setuid root: it reports whether it gained root.
func (b *builder) nonewprivs(ref string) (ociimage.Image, error) {
	img, err := b.debian(ref)
	if err != nil {
		return img, err
	}
	data, err := b.read("nonewprivs")
	if err != nil {
		return img, err
	}
	img.Files = []ociimage.File{{Path: "/usr/local/bin/nnp", Mode: os.ModeSetuid | 0o755, Data: data}}
	img.Cmd = []string{"nnp"}
	return img, nil
}

// nginx is Debian's nginx serving its default site on port 80.
func (b *builder) nginx(ref string) (ociimage.Image, error) {
	img, err := b.debian(ref)
	img.Entrypoint, img.Cmd = []string{"nginx", "-g", "daemon off;"}, nil
	return img, err
}

func (b *builder) binary(ref, from, to string) (ociimage.Image, error) {
	data, err := os.ReadFile(from)
	if err != nil {
		return ociimage.Image{}, err
	}
	return ociimage.Image{Ref: ref, Files: []ociimage.File{{Path: to, Mode: 0o755, Data: data}}, Entrypoint: []string{to}, Architecture: runtime.GOARCH}, nil
}

func (b *builder) sampleAPIServer(ref string) (ociimage.Image, error) {
	return b.binary(ref, filepath.Join(b.src.E2EDir, "sample-apiserver"), "/sample-apiserver")
}

// etcd: the aggregator spec runs /usr/local/bin/etcd beside the sample API
// server.
func (b *builder) etcd(ref string) (ociimage.Image, error) {
	return b.binary(ref, b.src.Etcd, "/usr/local/bin/etcd")
}

func (b *builder) pause(ref string) (ociimage.Image, error) {
	return b.binary(ref, b.src.Pause, "/pause")
}
