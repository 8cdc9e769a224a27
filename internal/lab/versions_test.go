package lab

import (
	"os"
	"regexp"
	"testing"
)

// The lab's default release is the Makefile's: a bare kubesalt-lab and
// `make lab K8S=1` run the same Kubernetes.
func TestDefaultK8SVersionIsTheMakefiles(t *testing.T) {
	mk, err := os.ReadFile("../../mk/k8s.mk")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^K8S_VERSION\s*\?=\s*(\S+)$`).FindSubmatch(mk)
	if m == nil || string(m[1]) != DefaultK8SVersion {
		t.Errorf("mk/k8s.mk K8S_VERSION %q, lab.DefaultK8SVersion %q: keep them the same", m, DefaultK8SVersion)
	}
}

// Each binary is staged where the formula's local mode looks for it:
// <component>/<versions:component>/ (map.jinja's component_of).
func TestLocalBinByComponentVersion(t *testing.T) {
	l := testLab(Options{K8S: true, K8SVersion: "v1.35.4"}, SmallNodes(1, 1))
	for name, want := range map[string]string{
		"kube-apiserver": "kubernetes/v1.35.4/kube-apiserver",
		"kubectl":        "kubernetes/v1.35.4/kubectl",
		"kubesalt":       "kubesalt",
		"etcdctl":        "etcd/" + l.versions()["etcd"] + "/etcdctl",
		"ctr":            "containerd/" + l.versions()["containerd"] + "/ctr",
		"runc":           "runc/" + l.versions()["runc"] + "/runc",
		"haproxy":        "haproxy",
	} {
		if got := l.localBin(name); got != l.binariesDir()+"/"+want {
			t.Errorf("%s: %s, want <binaries>/%s", name, got, want)
		}
	}
}

// The etcd, containerd and runc the lab stages are the ones mk/runtime.mk
// builds.
func TestRuntimeVersionsAreTheMakefiles(t *testing.T) {
	mk, err := os.ReadFile("../../mk/runtime.mk")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"ETCD_VERSION": EtcdVersion, "CONTAINERD_VERSION": ContainerdVersion, "RUNC_VERSION": RuncVersion} {
		m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(\S+)$`).FindSubmatch(mk)
		if m == nil || string(m[1]) != want {
			t.Errorf("mk/runtime.mk %s %q, the lab's %q: keep them the same", name, m, want)
		}
	}
}
