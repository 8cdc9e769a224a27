package lab

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubesalt/kubesalt/internal/ociimage"
)

// The lab reaches no registry: its two images are made here from
// bin/kubesalt-pod and imported by the formula (kubernetes:worker:images).
const (
	PauseRef = "registry.k8s.io/pause:3.10" // the formula's sandbox_image
	PodRef   = "kubesalt.local/kubesalt-pod:v1"
)

type labImage struct {
	ociimage.Image
	tarball string
}

func (l *Lab) images() []labImage {
	dir := filepath.Join(l.binariesDir(), "images")
	return []labImage{
		{ociimage.Image{Ref: PauseRef, Entrypoint: []string{"/pause"}}, filepath.Join(dir, "pause.tar")},
		{ociimage.Image{Ref: PodRef, Entrypoint: []string{"/kubesalt-pod"}, Cmd: []string{"serve"}}, filepath.Join(dir, "kubesalt-pod.tar")},
	}
}

// buildImages writes the image tarballs: the same static binary is the
// pause image's /pause and the test image's /kubesalt-pod.
func (l *Lab) buildImages() error {
	bin, err := os.ReadFile(filepath.Join(l.Repo, "bin/kubesalt-pod"))
	if err != nil {
		return fmt.Errorf("%w: run `make build`", err)
	}
	for _, img := range l.images() {
		img.Files = []ociimage.File{{Path: img.Entrypoint[0], Mode: 0o755, Data: bin}}
		if err := os.MkdirAll(filepath.Dir(img.tarball), 0o755); err != nil {
			return err
		}
		if _, err := ociimage.WriteFile(img.tarball, img.Image); err != nil {
			return fmt.Errorf("image %s: %w", img.Ref, err)
		}
	}
	return nil
}
