package nodes

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// A NodeList shaped as kubectl v1.32 prints it (fields trimmed).
const nodeList = `{
  "apiVersion": "v1", "kind": "List",
  "items": [
    {"apiVersion": "v1", "kind": "Node",
     "metadata": {"name": "master-0", "labels": {"node-role.kubernetes.io/control-plane": ""}},
     "spec": {"podCIDR": "10.200.0.0/24", "podCIDRs": ["10.200.0.0/24", "fd00:10:200::/64"]},
     "status": {"addresses": [{"type": "InternalIP", "address": "192.168.170.10"},
                              {"type": "InternalIP", "address": "fd00:170::10"},
                              {"type": "Hostname", "address": "master-0"}]}},
    {"apiVersion": "v1", "kind": "Node",
     "metadata": {"name": "worker-0"},
     "spec": {"podCIDR": "10.200.3.0/24"},
     "status": {"addresses": [{"type": "InternalIP", "address": "192.168.170.20"}]}},
    {"apiVersion": "v1", "kind": "Node",
     "metadata": {"name": "worker-1"},
     "spec": {},
     "status": {"addresses": [{"type": "InternalIP", "address": "192.168.170.21"}]}},
    {"apiVersion": "v1", "kind": "Node",
     "metadata": {"name": "worker-2"},
     "spec": {"podCIDRs": ["10.200.5.0/24"]},
     "status": {"addresses": [{"type": "Hostname", "address": "worker-2"}]}}
  ]}`

func TestParse(t *testing.T) {
	ms, problems, err := Parse([]byte(nodeList))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 4 {
		t.Fatalf("members %v", ms)
	}
	m0 := ms[0]
	if m0.Role != "master" || len(m0.IPs) != 2 || len(m0.PodCIDRs) != 2 || m0.PodCIDRs[1].String() != "fd00:10:200::/64" {
		t.Errorf("master-0 = %+v", m0)
	}
	if ms[1].PodCIDRs[0].String() != "10.200.3.0/24" || ms[1].Role != "worker" {
		t.Errorf("worker-0 falls back to spec.podCIDR: %+v", ms[1])
	}
	want := map[string]string{"worker-1": "no spec.podCIDR", "worker-2": "no InternalIP"}
	if len(problems) != 2 {
		t.Fatalf("problems %v", problems)
	}
	for _, p := range problems {
		if !strings.Contains(p.Problem, want[p.Node]) {
			t.Errorf("problem %+v", p)
		}
	}
	// The output is a node list that route sync accepts as is.
	out, _ := json.Marshal(map[string]any{"nodes": ms})
	if l, err := cluster.ParseNodeList(out); err != nil || len(l) != 4 {
		t.Errorf("round trip: %v %v", l, err)
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	for in, want := range map[string]string{
		`{"items": [`:     "not valid JSON",
		`{"kind": "Pod"}`: `is a "Pod", not a NodeList`,
		`[1, 2]`:          "not a NodeList",
	} {
		if _, _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", in, err)
		}
	}
}

// Kubectl runs the named program with the kubeconfig and reports its
// stderr when it fails. A shell script stands in for kubectl: what is
// tested is the process handling, not Kubernetes.
func TestKubectlRunsAndReportsErrors(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "kubectl-ok")
	os.WriteFile(ok, []byte("#!/bin/sh\n[ \"$1 $2 $3 $4 $5 $6\" = \"--kubeconfig /k get nodes -o json\" ] || exit 3\necho '{\"kind\":\"List\",\"items\":[]}'\n"), 0o755)
	out, err := Kubectl(context.Background(), ok, "/k", 5*time.Second)
	if err != nil || !strings.Contains(string(out), `"List"`) {
		t.Fatalf("%s %v", out, err)
	}
	bad := filepath.Join(dir, "kubectl-bad")
	os.WriteFile(bad, []byte("#!/bin/sh\necho 'The connection to the server was refused' >&2\nexit 1\n"), 0o755)
	if _, err := Kubectl(context.Background(), bad, "", 5*time.Second); err == nil || !strings.Contains(err.Error(), "connection to the server was refused") {
		t.Errorf("err = %v", err)
	}
	slow := filepath.Join(dir, "kubectl-slow")
	os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 5\n"), 0o755)
	if _, err := Kubectl(context.Background(), slow, "", 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(nodeList))
	f.Add([]byte(`{"kind":"Node","metadata":{"name":"x"},"spec":{"podCIDR":"1.2.3.0/24"}}`))
	f.Add([]byte(`{"items":[{"metadata":{"name":""}},{"spec":{"podCIDRs":[1,{"a":2}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, problems, err := Parse(data)
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.Name == "" {
				t.Fatal("a member without a name")
			}
			if len(m.IPs) == 0 || len(m.PodCIDRs) == 0 {
				found := false
				for _, p := range problems {
					found = found || p.Node == m.Name
				}
				if !found {
					t.Fatalf("node %s lacks an IP or CIDR and no problem says so", m.Name)
				}
			}
		}
	})
}
