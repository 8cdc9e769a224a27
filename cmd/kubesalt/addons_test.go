package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func addonsDefinition(port int, extra string) string {
	return strings.Replace(apiDefinition(port), "    service_cidr:", "    cluster_dns: 10.32.0.10\n    service_cidr:", 1) + extra
}

// Bad input: exit 2, the field named, nothing asked of the API.
func TestAddonsBadInput(t *testing.T) {
	for _, c := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"no kubeconfig", addonsDefinition(6443, ""), []string{"addons", "apply", "--definition", "-"}, "--kubeconfig is required"},
		{"bad replicas", addonsDefinition(6443, "  dns: {replicas: 0}\n"), []string{"addons", "apply", "--definition", "-", "--kubeconfig", "/nonexistent"}, "kubernetes:dns:replicas: 0"},
		{"no cluster_dns", apiDefinition(6443), []string{"addons", "dns", "--definition", "-", "-o", "json"}, "kubernetes:network:cluster_dns is empty"},
	} {
		r, code, _ := call(t, c.stdin, c.args...)
		if code != 2 || r.Result == nil || *r.Result || !strings.Contains(r.Comment, c.want) {
			t.Errorf("%s: exit %d %+v, want exit 2 and %q", c.name, code, r, c.want)
		}
	}
	// --if-api-ready: bad input still fails; a kubeconfig not written yet
	// is a success that applies nothing.
	r, code, _ := call(t, addonsDefinition(6443, "  dns: {replicas: 0}\n"), "addons", "apply", "--definition", "-", "--kubeconfig", "/nonexistent", "--if-api-ready")
	if code != 2 || !strings.Contains(r.Comment, "kubernetes:dns:replicas: 0") {
		t.Errorf("--if-api-ready, bad replicas: exit %d %+v", code, r)
	}
	r, code, _ = call(t, addonsDefinition(6443, ""), "addons", "apply", "--definition", "-", "--kubeconfig", "/nonexistent", "--kubectl", "/nonexistent/kubectl", "--if-api-ready")
	if code != 0 || r.Result == nil || !*r.Result || len(r.Changes) != 0 || !strings.Contains(r.Comment, "/nonexistent is not written yet") {
		t.Errorf("--if-api-ready, no kubeconfig: exit %d %+v", code, r)
	}
}

// TestAddonsApplyAgainstAPIServer applies the cluster DNS add-on to a real
// kube-apiserver with the real kubectl: --test names every object and
// creates none; the apply creates them (the Service at cluster_dns); a
// second apply changes nothing; a changed definition changes only the
// object it touches.
func TestAddonsApplyAgainstAPIServer(t *testing.T) {
	_, pkiDir, apiPort, _ := startAPIServer(t)
	kubectl := filepath.Join(os.Getenv("KUBESALT_K8S_BIN_DIR"), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl in KUBESALT_K8S_BIN_DIR: %v", err)
	}
	admin := filepath.Join(pkiDir, "admin.kubeconfig")
	apply := func(def string, extra ...string) (result, []string) {
		t.Helper()
		r, code, stderr := call(t, def, append([]string{"addons", "apply", "--definition", "-", "--kubectl", kubectl, "--kubeconfig", admin}, extra...)...)
		if code != 0 {
			t.Fatalf("addons apply %v: exit %d %s %s", extra, code, r.Comment, stderr)
		}
		var data struct{ Changed []string }
		json.Unmarshal(r.Data, &data)
		return r, data.Changed
	}
	get := func(args ...string) (string, error) {
		out, err := exec.Command(kubectl, append([]string{"--kubeconfig", admin, "-n", "kube-system"}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	def := addonsDefinition(apiPort, "")
	all := []string{
		"apps.v1.Deployment.kube-system.coredns", "rbac.authorization.k8s.io.v1.ClusterRole..system:coredns",
		"rbac.authorization.k8s.io.v1.ClusterRoleBinding..system:coredns", "v1.ConfigMap.kube-system.coredns",
		"v1.Service.kube-system.kube-dns", "v1.ServiceAccount.kube-system.coredns",
	}

	r, changed := apply(def, "--test")
	if r.Result != nil || !reflect.DeepEqual(changed, all) {
		t.Fatalf("--test: result %v changed %v, want null and %v (%s)", r.Result, changed, all, r.Comment)
	}
	if out, err := get("get", "deployment", "coredns"); err == nil {
		t.Fatalf("--test created the Deployment: %s", out)
	}

	r, changed = apply(def)
	if r.Result == nil || !*r.Result || !reflect.DeepEqual(changed, all) {
		t.Fatalf("apply: result %v changed %v (%s)", r.Result, changed, r.Comment)
	}
	if ip, err := get("get", "service", "kube-dns", "-o", "jsonpath={.spec.clusterIP}"); err != nil || ip != "10.32.0.10" {
		t.Errorf("kube-dns at %q %v, want 10.32.0.10", ip, err)
	}
	if cf, err := get("get", "configmap", "coredns", "-o", "jsonpath={.data.Corefile}"); err != nil || !strings.Contains(cf, "kubernetes cluster.local in-addr.arpa ip6.arpa") {
		t.Errorf("Corefile %q %v", cf, err)
	}

	r, changed = apply(def)
	if r.Result == nil || !*r.Result || len(changed) != 0 || len(r.Changes) != 0 {
		t.Fatalf("second apply: result %v changed %v changes %v (%s)", r.Result, changed, r.Changes, r.Comment)
	}

	three := addonsDefinition(apiPort, "  dns: {replicas: 3}\n")
	if _, changed = apply(three, "--test"); !reflect.DeepEqual(changed, []string{"apps.v1.Deployment.kube-system.coredns"}) {
		t.Fatalf("replicas 3 --test: changed %v, want the Deployment only", changed)
	}
	apply(three)
	if n, err := get("get", "deployment", "coredns", "-o", "jsonpath={.spec.replicas}"); err != nil || n != "3" {
		t.Errorf("replicas %q %v, want 3", n, err)
	}
}
