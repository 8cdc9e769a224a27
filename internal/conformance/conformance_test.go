package conformance

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/ociimage"
)

// fakeSources are sources with every file the recipes read: a tiny tree, a
// busybox that lists two applets, and programs that are text.
func fakeSources(t *testing.T) Sources {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"rootfs/etc/passwd":         "root:x:0:0:root:/root:/bin/bash\n",
		"rootfs/etc/group":          "root:x:0:\n",
		"rootfs/usr/bin/busybox":    "#!/bin/sh\necho /bin/sh; echo /usr/bin/wget; echo /bin/sh\n",
		"e2e/agnhost":               "agnhost",
		"e2e/nonewprivs":            "nnp",
		"e2e/sample-apiserver":      "sample",
		"e2e/porter/localhost.crt":  "crt",
		"e2e/porter/localhost.key":  "key",
		"e2e/kitten/kitten.jpg":     "kitten",
		"e2e/kitten/data.json":      `{"image": "kitten"}`,
		"e2e/nautilus/nautilus.jpg": "nautilus",
		"e2e/nautilus/data.json":    `{"image": "nautilus"}`,
		"etcd":                      "etcd",
		"kubesalt-pod":              "pause",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Sources{Rootfs: filepath.Join(dir, "rootfs"), E2EDir: filepath.Join(dir, "e2e"), Etcd: filepath.Join(dir, "etcd"), Pause: filepath.Join(dir, "kubesalt-pod")}
}

// image reads a tarball's config and its layers' entries (the top layer's
// last).
func image(t *testing.T, tarball string) (ociimage.Config, []map[string][]byte, []map[string]*tar.Header) {
	t.Helper()
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blobs := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		blobs[h.Name] = b
	}
	blob := func(d string) []byte { return blobs["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")] }
	var idx ociimage.Index
	var man ociimage.Manifest
	var cfg ociimage.Config
	if err := json.Unmarshal(blobs["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(blob(idx.Manifests[0].Digest), &man); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(blob(man.Config.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	var contents []map[string][]byte
	var headers []map[string]*tar.Header
	for _, l := range man.Layers {
		zr, err := gzip.NewReader(strings.NewReader(string(blob(l.Digest))))
		if err != nil {
			t.Fatal(err)
		}
		c, h := map[string][]byte{}, map[string]*tar.Header{}
		lr := tar.NewReader(zr)
		for {
			hdr, err := lr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(lr)
			c[hdr.Name], h[hdr.Name] = b, hdr
		}
		contents, headers = append(contents, c), append(headers, h)
	}
	return cfg, contents, headers
}

func TestBuildImages(t *testing.T) {
	src := fakeSources(t)
	out := t.TempDir()
	refs := []string{
		"registry.k8s.io/e2e-test-images/agnhost:2.63.0",
		"registry.k8s.io/e2e-test-images/busybox:1.37.0-1",
		"registry.k8s.io/e2e-test-images/kitten:1.8",
		"registry.k8s.io/e2e-test-images/nonewprivs:1.4",
		"registry.k8s.io/e2e-test-images/nonroot:1.5",
		"registry.k8s.io/e2e-test-images/nginx:1.15-4",
		"registry.k8s.io/etcd:3.6.8-0",
		"registry.k8s.io/pause:3.10.2",
		"invalid.registry.k8s.io/invalid/alpine:3.1",
		"registry.k8s.io/e2e-test-images/volume/iscsi:2.7",
	}
	built, unbuilt, err := BuildImages(src, refs, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != 8 || len(unbuilt) != 2 {
		t.Fatalf("built %d, unbuilt %v: want 8 and the 2 without a recipe", len(built), unbuilt)
	}
	if !strings.Contains(unbuilt[0].Reason, "pulling it fails") || !strings.Contains(unbuilt[1].Reason, "storage driver") {
		t.Errorf("reasons: %+v", unbuilt)
	}
	tarball := map[string]string{}
	for _, b := range built {
		tarball[b.Ref] = b.Tarball
	}

	cfg, layers, hdrs := image(t, tarball["registry.k8s.io/e2e-test-images/agnhost:2.63.0"])
	if len(layers) != 2 {
		t.Fatalf("agnhost has %d layers: want the Debian tree and its own", len(layers))
	}
	top := layers[1]
	if string(top["agnhost"]) != "agnhost" || hdrs[1]["agnhost-2"].Linkname != "agnhost" || hdrs[1]["uploads/"] == nil {
		t.Errorf("agnhost's layer lacks agnhost, agnhost-2 or /uploads: %v", slices.Sorted(maps.Keys(top)))
	}
	if !strings.Contains(string(top["etc/passwd"]), "root:x:0:0") || !strings.Contains(string(top["etc/passwd"]), "user-defined-in-image:x:1000:") ||
		!strings.Contains(string(top["etc/group"]), "group-defined-in-image:x:50000:user-defined-in-image") {
		t.Errorf("agnhost's passwd/group lack the tree's root or the spec's user and group:\n%s%s", top["etc/passwd"], top["etc/group"])
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/agnhost"}) || !slices.Equal(cfg.Config.Cmd, []string{"pause"}) {
		t.Errorf("agnhost runs %v %v", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}

	cfg, layers, _ = image(t, tarball["registry.k8s.io/e2e-test-images/kitten:1.8"])
	if string(layers[1]["kitten.jpg"]) != "kitten" || !slices.Equal(cfg.Config.Cmd, []string{"test-webserver"}) {
		t.Errorf("kitten serves %v with %v", slices.Sorted(maps.Keys(layers[1])), cfg.Config.Cmd)
	}

	cfg, layers, hdrs = image(t, tarball["registry.k8s.io/e2e-test-images/busybox:1.37.0-1"])
	if len(layers) != 1 || hdrs[0]["bin/sh"].Linkname != "busybox" || hdrs[0]["bin/wget"].Linkname != "busybox" || hdrs[0]["tmp/"].Mode != 0o1777 {
		t.Errorf("busybox: %d layers, entries %v", len(layers), slices.Sorted(maps.Keys(layers[0])))
	}

	_, _, hdrs = image(t, tarball["registry.k8s.io/e2e-test-images/nonewprivs:1.4"])
	if h := hdrs[1]["usr/local/bin/nnp"]; h == nil || h.Mode&0o4000 == 0 || h.Uid != 0 {
		t.Errorf("nnp is not setuid root: %+v", h)
	}
	cfg, _, _ = image(t, tarball["registry.k8s.io/e2e-test-images/nonroot:1.5"])
	if cfg.Config.User != "1234" {
		t.Errorf("nonroot runs as %q", cfg.Config.User)
	}
	cfg, layers, _ = image(t, tarball["registry.k8s.io/etcd:3.6.8-0"])
	if string(layers[0]["usr/local/bin/etcd"]) != "etcd" {
		t.Errorf("etcd's image lacks /usr/local/bin/etcd: %v", slices.Sorted(maps.Keys(layers[0])))
	}

	// A second build leaves every tarball as it is.
	before, _ := os.Stat(tarball["registry.k8s.io/e2e-test-images/agnhost:2.63.0"])
	if _, _, err := BuildImages(src, refs, out); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(tarball["registry.k8s.io/e2e-test-images/agnhost:2.63.0"])
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("a second build wrote agnhost's tarball again")
	}
}

func TestBuildImagesNamesWhatIsMissing(t *testing.T) {
	src := fakeSources(t)
	os.Remove(filepath.Join(src.E2EDir, "agnhost"))
	_, _, err := BuildImages(src, []string{"registry.k8s.io/e2e-test-images/agnhost:2.63.0"}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "agnhost") || !strings.Contains(err.Error(), "make e2e-binaries") {
		t.Errorf("err = %v: want the missing agnhost and the make target", err)
	}
	_, _, err = BuildImages(src, []string{"agnhost"}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--list-images") {
		t.Errorf("a bad reference: err = %v", err)
	}
}

func TestArgv(t *testing.T) {
	o := Options{E2EDir: "/e2e", Kubeconfig: "/k", Kubectl: "/kubectl", ReportDir: "/r", Nodes: 3, Prefix: []string{"ip", "netns", "exec", "lab-salt"}}
	argv := o.Argv([]Skip{{Spec: `a\[b\]`, Reason: "x"}, {Spec: "c", Reason: "y"}})
	joined := strings.Join(argv, " ")
	for _, want := range []string{
		"ip netns exec lab-salt /e2e/ginkgo ", "--nodes=3", "--label-filter=Conformance && !Serial && !Disruptive",
		`--skip=a\[b\]|c`, "/e2e/e2e.test -- ", "--kubeconfig=/k", "--kubectl-path=/kubectl", "--provider=skeleton",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("argv lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "--focus") {
		t.Errorf("no Focus, yet: %s", joined)
	}
	o.Serial, o.Focus = true, "DNS"
	joined = strings.Join(o.Argv(nil), " ")
	if !strings.Contains(joined, "--label-filter=Conformance ") || !strings.Contains(joined, "--focus=DNS") || strings.Contains(joined, "--skip") {
		t.Errorf("serial with a focus and no skips:\n%s", joined)
	}
}

func TestSkipsFileIsValid(t *testing.T) {
	if _, err := Skips(); err != nil {
		t.Fatal(err)
	}
}

func TestReadJUnit(t *testing.T) {
	f := filepath.Join(t.TempDir(), "junit.xml")
	os.WriteFile(f, []byte(`<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5">
  <testsuite name="Kubernetes e2e suite">
    <testcase name="[SynchronizedBeforeSuite]" status="passed"></testcase>
    <testcase name="[sig-node] Pods should be submitted and removed [Conformance]" status="passed"></testcase>
    <testcase name="[sig-network] DNS should provide DNS for services [Conformance]" status="failed"><failure message="timed out">x</failure></testcase>
    <testcase name="[sig-apps] Job should run [Serial] [Conformance]" status="skipped"><skipped message="skipped"></skipped></testcase>
    <testcase name="[sig-apps] Job should not count, filtered out" status="skipped"><skipped message="skipped"></skipped></testcase>
    <testcase name="[ReportAfterSuite] Kubernetes e2e suite report" status="failed"><failure message="boom">x</failure></testcase>
  </testsuite>
</testsuites>`), 0o644)
	r, err := ReadJUnit(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Passed) != 1 || len(r.Failed) != 2 || len(r.Skipped) != 1 {
		t.Fatalf("passed %v failed %v skipped %v", r.Passed, r.Failed, r.Skipped)
	}
	if s := r.Summary(); !strings.Contains(s, "3 specs run, 1 passed, 2 failed; 1 skipped") || !strings.Contains(s, "FAILED [sig-network] DNS") {
		t.Errorf("summary:\n%s", s)
	}
	if _, err := ReadJUnit(filepath.Join(t.TempDir(), "none.xml")); err == nil {
		t.Error("a missing report read")
	}
}
