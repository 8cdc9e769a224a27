package lab

import (
	"fmt"
	"os"
	"path/filepath"
)

// The lab reaches no registry: its two images are written by
// `kubesalt-pod image` (the binary is their only file) and imported by the
// formula (kubernetes:worker:images).
const (
	PauseRef = "registry.k8s.io/pause:3.10" // the formula's sandbox_image
	PodRef   = "kubesalt.local/kubesalt-pod:v1"
)

type labImage struct {
	Kind, Ref, tarball string
}

func (l *Lab) images() []labImage {
	dir := filepath.Join(l.binariesDir(), "images")
	return []labImage{
		{"pause", PauseRef, filepath.Join(dir, "pause.tar")},
		{"serve", PodRef, filepath.Join(dir, "kubesalt-pod.tar")},
	}
}

// buildImages writes the image tarballs.
func (l *Lab) buildImages() error {
	for _, img := range l.images() {
		if err := os.MkdirAll(filepath.Dir(img.tarball), 0o755); err != nil {
			return err
		}
		if _, err := run(filepath.Join(l.Repo, "bin/kubesalt-pod"), "image", "--kind", img.Kind, "--ref", img.Ref, "--file", img.tarball); err != nil {
			return fmt.Errorf("image %s: %w", img.Ref, err)
		}
	}
	return nil
}
