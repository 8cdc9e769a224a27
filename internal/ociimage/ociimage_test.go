package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testImage() Image {
	return Image{
		Ref: "kubesalt.local/kubesalt-pod:v1",
		Files: []File{
			{Path: "/usr/bin/tool", Mode: 0o700, Data: []byte("#!/bin/sh\necho tool\n")},
			{Path: "/pause", Mode: 0o755, Data: []byte("\x7fELF not really")},
		},
		Entrypoint: []string{"/pause"},
		Cmd:        []string{"serve", "--port", "8080"},
		Env:        []string{"PATH=/usr/bin"},
		WorkingDir: "/",
		User:       "65535:65535",
	}
}

// readTar returns the regular files and the directories of a tar.
func readTar(t *testing.T, r io.Reader) (files map[string][]byte, hdrs map[string]*tar.Header, order []string) {
	t.Helper()
	files, hdrs = map[string][]byte{}, map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := hdrs[h.Name]; dup {
			t.Errorf("tar entry %s appears twice", h.Name)
		}
		hdrs[h.Name], files[h.Name] = h, b
		order = append(order, h.Name)
	}
}

// blobOf checks that desc names a blob of the layout with that digest and
// size, and returns it.
func blobOf(t *testing.T, files map[string][]byte, desc Descriptor) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+strings.TrimPrefix(desc.Digest, "sha256:")]
	if !ok {
		t.Fatalf("blob %s (%s) is not in the layout", desc.Digest, desc.MediaType)
	}
	if digest(b) != desc.Digest || int64(len(b)) != desc.Size {
		t.Fatalf("blob %s: content has digest %s size %d, descriptor says %s size %d", desc.MediaType, digest(b), len(b), desc.Digest, desc.Size)
	}
	return b
}

func TestWriteLayoutStructure(t *testing.T) {
	img := testImage()
	var out bytes.Buffer
	if err := Write(&out, img); err != nil {
		t.Fatal(err)
	}
	files, _, _ := readTar(t, &out)
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", got)
	}
	var idx Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if idx.SchemaVersion != 2 || len(idx.Manifests) != 1 {
		t.Fatalf("index: schemaVersion %d with %d manifests, want 2 with 1", idx.SchemaVersion, len(idx.Manifests))
	}
	md := idx.Manifests[0]
	if md.MediaType != MediaTypeManifest {
		t.Errorf("manifest media type %q", md.MediaType)
	}
	if md.Annotations[AnnotationImageName] != img.Ref || md.Annotations[AnnotationRefName] != "v1" {
		t.Errorf("manifest annotations %v, want image name %s and ref name v1", md.Annotations, img.Ref)
	}
	if md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture != "amd64" {
		t.Errorf("manifest platform %+v, want linux/amd64", md.Platform)
	}

	var man Manifest
	if err := json.Unmarshal(blobOf(t, files, md), &man); err != nil {
		t.Fatal(err)
	}
	if man.SchemaVersion != 2 || man.MediaType != MediaTypeManifest || man.Config.MediaType != MediaTypeConfig || len(man.Layers) != 1 || man.Layers[0].MediaType != MediaTypeLayer {
		t.Fatalf("manifest %+v", man)
	}
	var cfg Config
	if err := json.Unmarshal(blobOf(t, files, man.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("config platform %s/%s", cfg.OS, cfg.Architecture)
	}
	pc := cfg.Config
	if strings.Join(pc.Entrypoint, " ") != "/pause" || strings.Join(pc.Cmd, " ") != "serve --port 8080" ||
		strings.Join(pc.Env, " ") != "PATH=/usr/bin" || pc.WorkingDir != "/" || pc.User != "65535:65535" {
		t.Errorf("process config %+v", pc)
	}

	zr, err := gzip.NewReader(bytes.NewReader(blobOf(t, files, man.Layers[0])))
	if err != nil {
		t.Fatalf("layer is not gzip: %v", err)
	}
	layerTar, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != digest(layerTar) {
		t.Errorf("rootfs %+v, want the one diff_id %s (sha256 of the uncompressed layer)", cfg.RootFS, digest(layerTar))
	}
	lf, lh, order := readTar(t, bytes.NewReader(layerTar))
	want := []string{"pause", "usr/", "usr/bin/", "usr/bin/tool"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("layer entries %v, want %v (parents first, sorted)", order, want)
	}
	for _, f := range img.Files {
		name := strings.TrimPrefix(f.Path, "/")
		h := lh[name]
		if h == nil || h.Typeflag != tar.TypeReg || !bytes.Equal(lf[name], f.Data) || os.FileMode(h.Mode) != f.Mode {
			t.Errorf("layer entry %s: %+v, want a regular file mode %v with the given data", name, h, f.Mode)
			continue
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("layer entry %s: uid %d gid %d mtime %v, want root and the fixed time", name, h.Uid, h.Gid, h.ModTime)
		}
	}
	if h := lh["usr/bin/"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o755 {
		t.Errorf("parent dir usr/bin/: %+v, want a 0755 directory", h)
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	img := testImage()
	if err := Write(&a, img); err != nil {
		t.Fatal(err)
	}
	// The same files in another order give the same image.
	img.Files[0], img.Files[1] = img.Files[1], img.Files[0]
	if err := Write(&b, img); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of the same image differ")
	}
	img.Cmd = []string{"serve"}
	b.Reset()
	if err := Write(&b, img); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("changing Cmd did not change the tarball")
	}
}

func TestWriteFileIsIdempotent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "img.tar")
	if need, err := NeedsWrite(file, testImage()); err != nil || !need {
		t.Fatalf("NeedsWrite of a missing file: %v %v, want true", need, err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("NeedsWrite created the file (%v)", err)
	}
	changed, err := WriteFile(file, testImage())
	if err != nil || !changed {
		t.Fatalf("first WriteFile: changed=%v err=%v, want a change", changed, err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(file, old, old); err != nil {
		t.Fatal(err)
	}
	if need, err := NeedsWrite(file, testImage()); err != nil || need {
		t.Fatalf("NeedsWrite of the same image: %v %v, want false", need, err)
	}
	changed, err = WriteFile(file, testImage())
	if err != nil || changed {
		t.Fatalf("second WriteFile: changed=%v err=%v, want no change", changed, err)
	}
	if st, _ := os.Stat(file); !st.ModTime().Equal(old) {
		t.Errorf("second WriteFile touched the file (mtime %v)", st.ModTime())
	}
	img := testImage()
	img.Ref = "kubesalt.local/kubesalt-pod:v2"
	if changed, err = WriteFile(file, img); err != nil || !changed {
		t.Fatalf("WriteFile of another ref: changed=%v err=%v, want a change", changed, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(file)); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the image (no temp files left)", len(ents))
	}
}

func TestWriteRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Image)
		want string
	}{
		{"empty ref", func(i *Image) { i.Ref = "" }, "image ref is empty: give the full reference"},
		{"no tag", func(i *Image) { i.Ref = "kubesalt.local/pod" }, `has no tag: add one, e.g. kubesalt.local/pod:v1`},
		{"port but no tag", func(i *Image) { i.Ref = "localhost:5000/pod" }, "has no tag"},
		{"no host", func(i *Image) { i.Ref = "pause:3.10" }, "has no registry host"},
		{"digest", func(i *Image) { i.Ref = "registry.k8s.io/pause@sha256:abcd" }, "has a digest"},
		{"upper case", func(i *Image) { i.Ref = "kubesalt.local/Pod:v1" }, `path component "Pod" is not valid`},
		{"bad tag", func(i *Image) { i.Ref = "kubesalt.local/pod:-x" }, `tag "-x" is not valid`},
		{"relative path", func(i *Image) { i.Files[1].Path = "pause" }, `Files[1].Path "pause" is relative: give the absolute path inside the image, e.g. /pause`},
		{"unclean path", func(i *Image) { i.Files[1].Path = "/bin/../pause" }, `is not a clean file path: write it as "/pause"`},
		{"symlink mode", func(i *Image) { i.Files[1].Mode = os.ModeSymlink | 0o755 }, "Files[1].Mode"},
		{"twice", func(i *Image) { i.Files[0].Path = "/pause" }, "is given twice"},
		{"file as parent", func(i *Image) { i.Files[1].Path = "/usr/bin" }, "/usr/bin is a file and also the parent directory of /usr/bin/tool"},
		{"no files", func(i *Image) { i.Files = nil }, "Files is empty"},
		{"bad env", func(i *Image) { i.Env = []string{"PATH"} }, `Env[0] "PATH" is not KEY=value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := testImage()
			tc.edit(&img)
			var out bytes.Buffer
			err := Write(&out, img)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Write: %v, want an error containing %q", err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("Write wrote %d bytes before failing validation", out.Len())
			}
		})
	}
}

func TestSplitRef(t *testing.T) {
	for ref, want := range map[string][2]string{
		"registry.k8s.io/pause:3.10":       {"registry.k8s.io/pause", "3.10"},
		"kubesalt.local/kubesalt-pod:v1":   {"kubesalt.local/kubesalt-pod", "v1"},
		"localhost:5000/a/b_c:latest":      {"localhost:5000/a/b_c", "latest"},
		"docker.io/library/busybox:1.36.1": {"docker.io/library/busybox", "1.36.1"},
	} {
		name, tag, err := SplitRef(ref)
		if err != nil || name != want[0] || tag != want[1] {
			t.Errorf("SplitRef(%q) = %q, %q, %v; want %q, %q", ref, name, tag, err, want[0], want[1])
		}
	}
}
