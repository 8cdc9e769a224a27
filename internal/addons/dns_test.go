package addons

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

const def = `
kubernetes:
  cluster_domain: lab.example
  network:
    node_cidr: 192.168.170.0/24
    cluster_cidr: 10.200.0.0/16
    service_cidr: 10.32.0.0/24
    cluster_dns: 10.32.0.10
  nodes:
    master-0: {role: master, ip: 192.168.170.10}
  dns: {image: kubesalt.local/coredns:v1, replicas: 3}
`

func load(t *testing.T, s string) *cluster.Definition {
	t.Helper()
	d, err := cluster.Load([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The manifests are valid YAML objects, in apply order, carrying the
// definition's facts: the Service at cluster_dns, the image, the replicas,
// the Corefile for the cluster domain.
func TestDNSManifests(t *testing.T) {
	m, err := DNSManifests(load(t, def))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(m))
	var kinds []string
	objs := map[string]map[string]any{}
	for {
		var o map[string]any
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%v\n%s", err, m)
		}
		kind := o["kind"].(string)
		kinds = append(kinds, kind)
		objs[kind] = o
	}
	if want := []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service"}; !slices.Equal(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	svc := objs["Service"]["spec"].(map[string]any)
	if svc["clusterIP"] != "10.32.0.10" {
		t.Errorf("Service clusterIP %v", svc["clusterIP"])
	}
	dep := objs["Deployment"]["spec"].(map[string]any)
	if dep["replicas"] != 3 {
		t.Errorf("replicas %v", dep["replicas"])
	}
	pod := dep["template"].(map[string]any)["spec"].(map[string]any)
	if img := pod["containers"].([]any)[0].(map[string]any)["image"]; img != "kubesalt.local/coredns:v1" {
		t.Errorf("image %v", img)
	}
	corefile := objs["ConfigMap"]["data"].(map[string]any)["Corefile"].(string)
	for _, want := range []string{"kubernetes lab.example in-addr.arpa ip6.arpa {", "forward . /etc/resolv.conf {", "cache 30", "loop"} {
		if !strings.Contains(corefile, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, corefile)
		}
	}
}

func TestCorefileWithoutForwarding(t *testing.T) {
	c := Corefile(load(t, def))
	if !strings.Contains(c, "forward .") {
		t.Fatalf("default Corefile does not forward:\n%s", c)
	}
	d := load(t, strings.Replace(def, "replicas: 3}", "replicas: 3, forward: []}", 1))
	if c := Corefile(d); strings.Contains(c, "forward") {
		t.Errorf("forward: [] still forwards:\n%s", c)
	}
	d = load(t, strings.Replace(def, "replicas: 3}", "replicas: 3, forward: [192.168.170.1, 192.168.170.2]}", 1))
	if c := Corefile(d); !strings.Contains(c, "forward . 192.168.170.1 192.168.170.2 {") {
		t.Errorf("forward to two resolvers:\n%s", c)
	}
}

func TestDNSManifestsNeedClusterDNS(t *testing.T) {
	_, err := DNSManifests(load(t, strings.Replace(def, "    cluster_dns: 10.32.0.10\n", "", 1)))
	if err == nil || !strings.Contains(err.Error(), "kubernetes:network:cluster_dns is empty") {
		t.Errorf("err = %v", err)
	}
}

func TestChangedObjects(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("diff -u -N /tmp/LIVE-1/v1.ConfigMap.kube-system.coredns /tmp/MERGED-2/v1.ConfigMap.kube-system.coredns\n--- a\n+++ b\n@@\n")
	b.WriteString("diff -u -N /tmp/LIVE-1/apps.v1.Deployment.kube-system.coredns /tmp/MERGED-2/apps.v1.Deployment.kube-system.coredns\n")
	got := ChangedObjects(b.String())
	if want := []string{"apps.v1.Deployment.kube-system.coredns", "v1.ConfigMap.kube-system.coredns"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := ChangedObjects(""); len(got) != 0 {
		t.Errorf("no diff: %v", got)
	}
}
