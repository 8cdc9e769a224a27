package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A tree with what a Debian root holds: directories, a setuid file, a
// symlink, a hard link and a fifo (left out).
func testTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/busybox"), []byte("box"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/nnp"), []byte("nnp"), 0o755))
	must(os.Chmod(filepath.Join(root, "usr/bin/nnp"), 0o755|os.ModeSetuid))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(os.Link(filepath.Join(root, "usr/bin/busybox"), filepath.Join(root, "usr/bin/sh")))
	must(syscall.Mkfifo(filepath.Join(root, "usr/fifo"), 0o644))
	return root
}

func layerEntries(t *testing.T, l Layer) map[string]*tar.Header {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(l.gz))
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	if digest(raw.Bytes()) != l.diffID {
		t.Errorf("diffID %s is not the digest of the uncompressed tar", l.diffID)
	}
	_, hdrs, _ := readTar(t, &raw)
	return hdrs
}

func TestDirLayer(t *testing.T) {
	root := testTree(t)
	l, err := DirLayer(root)
	if err != nil {
		t.Fatal(err)
	}
	h := layerEntries(t, l)
	if _, ok := h["usr/fifo"]; ok {
		t.Error("the fifo is in the layer: only files, directories and links belong there")
	}
	if h["usr/"] == nil || h["usr/"].Typeflag != tar.TypeDir {
		t.Errorf("usr/ is not a directory entry: %+v", h["usr/"])
	}
	if b := h["bin"]; b == nil || b.Typeflag != tar.TypeSymlink || b.Linkname != "usr/bin" {
		t.Errorf("bin is not the symlink to usr/bin: %+v", b)
	}
	if n := h["usr/bin/nnp"]; n == nil || n.Mode&0o4000 == 0 {
		t.Errorf("nnp lost its setuid bit: %+v", n)
	}
	// busybox comes first in path order, so sh is the link to it.
	if s := h["usr/bin/sh"]; s == nil || s.Typeflag != tar.TypeLink || s.Linkname != "usr/bin/busybox" {
		t.Errorf("usr/bin/sh is not a hard link to usr/bin/busybox: %+v", s)
	}
	again, err := DirLayer(root)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.gz, again.gz) {
		t.Error("the same tree gave two different layers")
	}
}

func TestDirLayerRejectsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := DirLayer(f); err == nil {
		t.Error("a regular file was taken as a layer root")
	}
}

// An image on a base layer lists the base first, then its own files' layer;
// two images on one base hold the same base blob.
func TestWriteWithBase(t *testing.T) {
	base, err := DirLayer(testTree(t))
	if err != nil {
		t.Fatal(err)
	}
	img := Image{
		Ref: "registry.k8s.io/e2e-test-images/agnhost:2.63.0", Base: []Layer{base},
		Files: []File{
			{Path: "/agnhost", Mode: 0o755, Data: []byte("agnhost")},
			{Path: "/agnhost-2", Link: "agnhost"},
			{Path: "/tmp", Mode: os.ModeDir | os.ModeSticky | 0o777},
			{Path: "/tmp/keep", Mode: 0o644},
		},
		Entrypoint: []string{"/agnhost"},
	}
	var out bytes.Buffer
	if err := Write(&out, img); err != nil {
		t.Fatal(err)
	}
	files, _, _ := readTar(t, &out)
	var idx Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	var man Manifest
	if err := json.Unmarshal(blobOf(t, files, idx.Manifests[0]), &man); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := json.Unmarshal(blobOf(t, files, man.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(man.Layers) != 2 || len(cfg.RootFS.DiffIDs) != 2 || cfg.RootFS.DiffIDs[0] != base.diffID {
		t.Fatalf("want the base then the files' layer; manifest %d layers, diff_ids %v", len(man.Layers), cfg.RootFS.DiffIDs)
	}
	if man.Layers[0].Digest != digest(base.gz) {
		t.Errorf("the first layer is not the base")
	}
	top := blobOf(t, files, man.Layers[1])
	h := layerEntries(t, Layer{gz: top, diffID: cfg.RootFS.DiffIDs[1]})
	if l := h["agnhost-2"]; l == nil || l.Typeflag != tar.TypeSymlink || l.Linkname != "agnhost" {
		t.Errorf("agnhost-2 is not a symlink to agnhost: %+v", l)
	}
	if d := h["tmp/"]; d == nil || d.Typeflag != tar.TypeDir || d.Mode != 0o1777 {
		t.Errorf("tmp/ is not the directory 1777: %+v", d)
	}
	bad := img
	bad.Files = []File{{Path: "/x", Link: "y", Data: []byte("z")}}
	if err := Write(&bytes.Buffer{}, bad); err == nil {
		t.Error("a file with both Link and Data was written")
	}
}
