package lab

import (
	"fmt"
	"os"
	"path/filepath"
)

// The lab reaches no registry: its images are written by `kubesalt-pod
// image` (the pause and test images hold kubesalt-pod, the CoreDNS image
// the binary `make coredns` built) and imported by the formula
// (kubernetes:worker:images).
const (
	PauseRef = "registry.k8s.io/pause:3.10" // the formula's sandbox_image
	PodRef   = "kubesalt.local/kubesalt-pod:v1"
	// CoreDNSRef is kubernetes:dns:image's default, CoreDNS's own name.
	CoreDNSRef = "docker.io/coredns/coredns:1.14.7"
)

type labImage struct {
	Kind, Ref, tarball string
	from               string // the binary inside, when not kubesalt-pod
}

func (l *Lab) images() []labImage {
	dir := filepath.Join(l.binariesDir(), "images")
	return []labImage{
		{"pause", PauseRef, filepath.Join(dir, "pause.tar"), ""},
		{"serve", PodRef, filepath.Join(dir, "kubesalt-pod.tar"), ""},
		{"coredns", CoreDNSRef, filepath.Join(dir, "coredns.tar"), l.corednsBin()},
	}
}

// buildImages writes the image tarballs.
func (l *Lab) buildImages() error {
	for _, img := range l.images() {
		if err := os.MkdirAll(filepath.Dir(img.tarball), 0o755); err != nil {
			return err
		}
		args := []string{"image", "--kind", img.Kind, "--ref", img.Ref, "--file", img.tarball}
		if img.from != "" {
			args = append(args, "--from", img.from)
		}
		if _, err := run(filepath.Join(l.Repo, "bin/kubesalt-pod"), args...); err != nil {
			return fmt.Errorf("image %s: %w", img.Ref, err)
		}
	}
	return nil
}
