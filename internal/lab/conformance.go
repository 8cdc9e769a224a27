package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/conformance"
	"github.com/kubesalt/kubesalt/internal/debian"
)

// ConformanceOptions are a `make conformance` run's.
type ConformanceOptions struct {
	// Focus narrows the [Conformance] specs (a regular expression on their
	// text); Serial adds the [Serial] and [Disruptive] ones.
	Focus  string
	Serial bool
	// Nodes is how many ginkgo processes run specs side by side.
	Nodes int
}

// E2EDir is where `make e2e-binaries` puts e2e.test, ginkgo and the images'
// programs for a release.
func E2EDir(repo, version string) string { return filepath.Join(repo, "bin/e2e", version) }

// conformanceRootfs is the Debian tree the images are made on, kept between
// runs (debian.Tree makes it again only when its packages change).
func (l *Lab) conformanceRootfs() string { return filepath.Join(l.Repo, "bin/e2e/rootfs") }

// Conformance runs the upstream [Conformance] specs against the lab's
// cluster: it builds the images the suite lists (e2e.test --list-images)
// that can be made here, has every worker import them through the formula
// (worker:images), and runs e2e.test from the salt-master's namespace, as
// the cluster's admin. The report goes to <lab>/conformance.
func (l *Lab) Conformance(o ConformanceOptions) (conformance.Result, error) {
	if !l.st.Options.K8S {
		return conformance.Result{}, fmt.Errorf("the lab runs no Kubernetes: make lab K8S=1 first")
	}
	e2eDir := E2EDir(l.Repo, l.k8sVersion())
	if _, err := os.Stat(filepath.Join(e2eDir, "e2e.test")); err != nil {
		return conformance.Result{}, fmt.Errorf("%w: run `make e2e-binaries K8S_VERSION=%s`", err, l.k8sVersion())
	}
	err := l.phase("the images the suite lists, made on a Debian tree", func() error {
		made, err := debian.Tree(l.conformanceRootfs(), conformance.RootfsPackages)
		if err != nil {
			return err
		}
		if made {
			l.say("debootstrapped %s", l.conformanceRootfs())
		}
		out, err := exec.Command(filepath.Join(e2eDir, "e2e.test"), "--list-images").Output()
		if err != nil {
			return fmt.Errorf("e2e.test --list-images: %w", err)
		}
		built, unbuilt, err := conformance.BuildImages(conformance.Sources{
			Rootfs: l.conformanceRootfs(), E2EDir: e2eDir,
			Etcd: l.builtBin("etcd"), Pause: filepath.Join(l.Repo, "bin/kubesalt-pod"),
		}, strings.Fields(string(out)), filepath.Join(l.binariesDir(), "images/e2e"))
		if err != nil {
			return err
		}
		for _, u := range unbuilt {
			l.say("not built: %s (%s)", u.Ref, u.Reason)
		}
		l.st.Images = nil
		for _, b := range built {
			l.st.Images = append(l.st.Images, ExtraImage{Ref: b.Ref, Tarball: b.Tarball})
		}
		l.say("%d images built, %d not", len(built), len(unbuilt))
		return l.st.Save()
	})
	if err != nil {
		return conformance.Result{}, err
	}
	err = l.phase("every worker imports them (state.apply kubernetes)", func() error {
		if err := l.writePillar(); err != nil {
			return err
		}
		_, err := l.applyAll()
		return err
	})
	if err != nil {
		return conformance.Result{}, err
	}
	var res conformance.Result
	err = l.phase("the [Conformance] specs (e2e.test)", func() error {
		var err error
		res, err = conformance.Run(conformance.Options{
			E2EDir:     e2eDir,
			Kubeconfig: filepath.Join(l.PKIDir(), "admin.kubeconfig"),
			Kubectl:    l.k8sBin("kubectl"),
			ReportDir:  filepath.Join(l.Dir, "conformance"),
			Focus:      o.Focus, Serial: o.Serial, Nodes: o.Nodes,
			Prefix: []string{"ip", "netns", "exec", l.masterNS()},
			Out:    l.Out,
		})
		return err
	})
	res.Took = res.Took.Round(time.Second)
	return res, err
}
