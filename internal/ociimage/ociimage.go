// Package ociimage writes a single-layer OCI image as an OCI image-layout
// tarball, the form `ctr images import` (containerd 1.6) accepts. Its use
// is a lab without a reachable registry: the pause image and a test image
// are built from local files and imported on every node.
//
// The output is deterministic: the same Image gives the same bytes (fixed
// times, owners and order), so a second WriteFile is a no-op.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
)

// Media types and annotations of the layout written.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	// AnnotationImageName is the full reference containerd names the
	// imported image by.
	AnnotationImageName = "io.containerd.image.name"
	// AnnotationRefName is the OCI reference name: the tag.
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// epoch is every timestamp in the layer and the layout tar (1970 trips up
// some tools; 2000-01-01 does not).
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Image is what to write: a reference and the files of its one layer, and
// the process config.
type Image struct {
	// Ref is the full reference with registry host and tag, e.g.
	// registry.k8s.io/pause:3.10; the CRI finds images by this name.
	Ref string
	// Base are the layers under Files' layer, lowest first.
	Base  []Layer
	Files []File
	// Entrypoint, Cmd, Env, WorkingDir and User go to the image config as
	// given.
	Entrypoint, Cmd, Env []string
	WorkingDir, User     string
	// Architecture is the GOARCH of the files; empty means amd64. The OS is
	// always linux.
	Architecture string
}

// File is one regular file, directory or symlink of the top layer. Its parent
// directories are added (0755, root).
type File struct {
	Path string // absolute, e.g. /pause
	// Mode is the permission bits, e.g. 0o755, with os.ModeSetuid if it runs
	// as its owner; os.ModeDir makes an empty directory (with os.ModeSticky:
	// /tmp).
	Mode os.FileMode
	Data []byte
	// Link, when set, makes the file a symlink to it (Mode and Data unused).
	Link string
}

// Descriptor is the OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is an OCI platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Index is the layout's index.json.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// Manifest is the image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Config is the image config (the part of it this package writes).
type Config struct {
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       ProcessConfig `json:"config"`
	RootFS       RootFS        `json:"rootfs"`
}

// ProcessConfig is the container process part of Config.
type ProcessConfig struct {
	User       string   `json:"User,omitempty"`
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

// RootFS lists the uncompressed layer digests.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// Reference syntax (a subset of the distribution reference grammar): a
// lowercase host[:port] with a dot or "localhost", lowercase path
// components, and a tag.
var (
	hostRe = regexp.MustCompile(`^(localhost|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+)(:[0-9]+)?$`)
	compRe = regexp.MustCompile(`^[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*$`)
	tagRe  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// SplitRef checks ref and returns its name (host/path) and tag.
func SplitRef(ref string) (name, tag string, err error) {
	if ref == "" {
		return "", "", fmt.Errorf("image ref is empty: give the full reference with host and tag, e.g. registry.k8s.io/pause:3.10")
	}
	if strings.Contains(ref, "@") {
		return "", "", fmt.Errorf("image ref %q has a digest: give a tag instead (name:tag); the digest is computed from the content", ref)
	}
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash {
		return "", "", fmt.Errorf("image ref %q has no tag: add one, e.g. %s:v1", ref, ref)
	}
	name, tag = ref[:colon], ref[colon+1:]
	if !tagRe.MatchString(tag) {
		return "", "", fmt.Errorf("image ref %q: tag %q is not valid: use letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-')", ref, tag)
	}
	parts := strings.Split(name, "/")
	if len(parts) < 2 || !hostRe.MatchString(parts[0]) {
		return "", "", fmt.Errorf("image ref %q has no registry host: the CRI looks images up by their full name, so write it out, e.g. docker.io/library/%s or kubesalt.local/%s", ref, ref, ref)
	}
	for _, c := range parts[1:] {
		if !compRe.MatchString(c) {
			return "", "", fmt.Errorf("image ref %q: path component %q is not valid: use lowercase letters and digits, separated by '.', '_' or '-'", ref, c)
		}
	}
	return name, tag, nil
}

func (img Image) validate() error {
	if _, _, err := SplitRef(img.Ref); err != nil {
		return err
	}
	if len(img.Files) == 0 && len(img.Base) == 0 {
		return fmt.Errorf("image %s: Files is empty: give at least the binary the image runs", img.Ref)
	}
	seen, dirs := map[string]bool{}, map[string]bool{}
	for i, f := range img.Files {
		if !path.IsAbs(f.Path) {
			return fmt.Errorf("image %s: Files[%d].Path %q is relative: give the absolute path inside the image, e.g. /%s", img.Ref, i, f.Path, strings.TrimPrefix(f.Path, "./"))
		}
		if path.Clean(f.Path) != f.Path || f.Path == "/" {
			return fmt.Errorf("image %s: Files[%d].Path %q is not a clean file path: write it as %q", img.Ref, i, f.Path, path.Clean(f.Path))
		}
		if f.Mode&^(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky|os.ModeDir) != 0 {
			return fmt.Errorf("image %s: Files[%d].Mode %v of %s has type bits: only regular files are written, give the permission bits alone, e.g. 0755 (a symlink: set Link)", img.Ref, i, f.Mode, f.Path)
		}
		if f.Link != "" && len(f.Data) > 0 {
			return fmt.Errorf("image %s: Files[%d] %s has both Link and Data: a symlink has no content, drop one", img.Ref, i, f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("image %s: Files[%d].Path %s is given twice: keep one", img.Ref, i, f.Path)
		}
		seen[f.Path], dirs[f.Path] = true, f.Mode&os.ModeDir != 0
	}
	for _, f := range img.Files {
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			if seen[d] && !dirs[d] {
				return fmt.Errorf("image %s: %s is a file and also the parent directory of %s: rename one", img.Ref, d, f.Path)
			}
		}
	}
	for i, e := range img.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("image %s: Env[%d] %q is not KEY=value", img.Ref, i, e)
		}
	}
	return nil
}

// blob is one content-addressed file of the layout.
type blob struct {
	desc Descriptor
	data []byte
}

func newBlob(mediaType string, data []byte) blob {
	return blob{Descriptor{MediaType: mediaType, Digest: digest(data), Size: int64(len(data))}, data}
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Write writes img to w as an OCI image-layout tarball.
func Write(w io.Writer, img Image) error {
	if err := img.validate(); err != nil {
		return err
	}
	_, tag, _ := SplitRef(img.Ref)
	arch := img.Architecture
	if arch == "" {
		arch = "amd64"
	}

	layers := append([]Layer(nil), img.Base...)
	if len(img.Files) > 0 {
		layerTar, err := layer(img.Files)
		if err != nil {
			return err
		}
		top, err := layerOf(layerTar, gzip.BestCompression)
		if err != nil {
			return err
		}
		layers = append(layers, top)
	}
	var diffIDs []string
	var layerDescs []Descriptor
	var blobs []blob
	seen := map[string]bool{}
	for _, l := range layers {
		b := newBlob(MediaTypeLayer, l.gz)
		diffIDs, layerDescs = append(diffIDs, l.diffID), append(layerDescs, b.desc)
		if !seen[b.desc.Digest] { // the same layer twice is one blob
			seen[b.desc.Digest] = true
			blobs = append(blobs, b)
		}
	}

	cfg, err := json.Marshal(Config{
		Architecture: arch,
		OS:           "linux",
		Config: ProcessConfig{
			User: img.User, Env: img.Env, Entrypoint: img.Entrypoint, Cmd: img.Cmd, WorkingDir: img.WorkingDir,
		},
		RootFS: RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	if err != nil {
		return err
	}
	cfgBlob := newBlob(MediaTypeConfig, cfg)

	man, err := json.Marshal(Manifest{
		SchemaVersion: 2,
		MediaType:     MediaTypeManifest,
		Config:        cfgBlob.desc,
		Layers:        layerDescs,
	})
	if err != nil {
		return err
	}
	manBlob := newBlob(MediaTypeManifest, man)

	mdesc := manBlob.desc
	mdesc.Platform = &Platform{Architecture: arch, OS: "linux"}
	mdesc.Annotations = map[string]string{AnnotationImageName: img.Ref, AnnotationRefName: tag}
	index, err := json.Marshal(Index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{mdesc}})
	if err != nil {
		return err
	}

	blobs = append(blobs, cfgBlob, manBlob)
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].desc.Digest < blobs[j].desc.Digest })
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(dirHeader(d)); err != nil {
			return err
		}
	}
	for _, b := range blobs {
		if err := writeFile(tw, "blobs/sha256/"+strings.TrimPrefix(b.desc.Digest, "sha256:"), 0o644, b.data); err != nil {
			return err
		}
	}
	if err := writeFile(tw, "index.json", 0o644, index); err != nil {
		return err
	}
	if err := writeFile(tw, "oci-layout", 0o644, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	return tw.Close()
}

// layer is the uncompressed layer tar: the parent directories, then the
// files, in path order.
func layer(files []File) ([]byte, error) {
	dirs := map[string]bool{}
	explicit := map[string]bool{}
	for _, f := range files {
		if f.Mode&os.ModeDir != 0 {
			explicit[f.Path] = true
		}
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	type entry struct {
		name string
		f    *File
	}
	var entries []entry
	for d := range dirs {
		if !explicit[d] {
			entries = append(entries, entry{name: strings.TrimPrefix(d, "/") + "/"})
		}
	}
	for i := range files {
		name := strings.TrimPrefix(files[i].Path, "/")
		if explicit[files[i].Path] {
			name += "/"
		}
		entries = append(entries, entry{name: name, f: &files[i]})
	}
	// Sorting by name puts "bin/" before "bin/x".
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		var err error
		switch {
		case e.f == nil:
			err = tw.WriteHeader(dirHeader(e.name))
		case e.f.Mode&os.ModeDir != 0:
			h := dirHeader(e.name)
			h.Mode = tarMode(e.f.Mode)
			err = tw.WriteHeader(h)
		case e.f.Link != "":
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: e.name, Linkname: e.f.Link, Mode: 0o777, ModTime: epoch, Format: tar.FormatPAX})
		default:
			err = writeFile(tw, e.name, tarMode(e.f.Mode), e.f.Data)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarMode is a file's mode as tar writes it: the permission bits and
// setuid, setgid and sticky.
func tarMode(m os.FileMode) int64 {
	mode := int64(m.Perm())
	if m&os.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

func dirHeader(name string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// WriteFile writes img to path atomically (temp file, rename). When path
// already holds the same bytes it leaves it untouched and reports
// changed=false.
func WriteFile(file string, img Image) (changed bool, err error) {
	data, changed, err := compare(file, img)
	if err != nil || !changed {
		return false, err
	}
	if err := atomicfile.WriteFile(file, data, 0o644); err != nil {
		return false, fmt.Errorf("writing image %s to %s: %w", img.Ref, file, err)
	}
	return true, nil
}

// NeedsWrite reports whether WriteFile would change file (test mode).
func NeedsWrite(file string, img Image) (bool, error) {
	_, changed, err := compare(file, img)
	return changed, err
}

func compare(file string, img Image) (data []byte, changed bool, err error) {
	var buf bytes.Buffer
	if err := Write(&buf, img); err != nil {
		return nil, false, err
	}
	if old, err := os.ReadFile(file); err == nil && bytes.Equal(old, buf.Bytes()) {
		return nil, false, nil
	}
	return buf.Bytes(), true, nil
}
