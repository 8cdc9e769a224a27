package cluster

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestLoadPillarExample(t *testing.T) {
	data, err := os.ReadFile("../../pillar.example")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "kubesalt" || d.Mode != ModePlanned || d.Domain != "cluster.local" {
		t.Errorf("name/mode/domain = %q/%q/%q", d.Name, d.Mode, d.Domain)
	}
	if got := len(d.Masters()); got != 3 {
		t.Errorf("masters = %d, want 3", got)
	}
	if got := len(d.Workers()); got != 3 {
		t.Errorf("workers = %d, want 3", got)
	}
	w1, ok := d.Node("worker-1")
	if !ok || w1.IPs[0] != netip.MustParseAddr("192.168.170.21") {
		t.Errorf("worker-1 = %+v", w1)
	}
	if d.Network.ClusterCIDRs[0] != netip.MustParsePrefix("10.200.0.0/16") || d.Network.NodeMaskV4 != 24 {
		t.Errorf("network = %+v", d.Network)
	}
	if d.Network.ClusterDNS != netip.MustParseAddr("10.32.0.10") || d.API.Port != 6443 {
		t.Errorf("dns/api = %v/%v", d.Network.ClusterDNS, d.API)
	}
}

func TestLoadJSONAndBareTree(t *testing.T) {
	js := `{"network": {"node_cidr": "192.168.170.0/24", "cluster_cidr": ["fd00:10:200::/56", "10.200.0.0/16"],
	  "service_cidr": "10.32.0.0/24", "node_cidr_mask_size_ipv6": 64},
	  "nodes": {"a": {"role": "worker", "ip": "192.168.170.20"}}}`
	_, err := Load([]byte(js))
	// dual-stack pods need an IPv6 node network
	wantProblems(t, err, "kubernetes:network:node_cidr: the cluster CIDR has an IPv6 part")

	js = `{"kubernetes": {"network": {"node_cidr": ["192.168.170.0/24", "fd00:170::/64"], "cluster_cidr": ["fd00:10:200::/56", "10.200.0.0/16"],
	  "service_cidr": "10.32.0.0/24"},
	  "nodes": {"a": {"role": "worker", "ip": ["fd00:170::20", "192.168.170.20"]}}}}`
	d, err := Load([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Network.ClusterCIDRs[0].Addr().Is4() || d.Network.ClusterCIDRs[1].Addr().Is4() {
		t.Errorf("cluster CIDRs not IPv4 first: %v", d.Network.ClusterCIDRs)
	}
	if !d.Nodes[0].IPs[0].Is4() {
		t.Errorf("node IPs not IPv4 first: %v", d.Nodes[0].IPs)
	}
}

const base = `
kubernetes:
  network:
    node_cidr: 192.168.170.0/24
    cluster_cidr: 10.200.0.0/16
    service_cidr: 10.32.0.0/24
    cluster_dns: 10.32.0.10
  nodes:
    master-0: {role: master, ip: 192.168.170.10}
    worker-0: {role: worker, ip: 192.168.170.20}
`

func wantProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if _, ok := err.(*ValidationError); !ok {
		t.Fatalf("error %T %v is not a ValidationError", err, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
}

func TestValidationNamesFieldAndFix(t *testing.T) {
	cases := []struct {
		name, old, new string
		want           []string
	}{
		{"bad cidr syntax", "cluster_cidr: 10.200.0.0/16", "cluster_cidr: 10.200.0.0/33",
			[]string{`kubernetes:network:cluster_cidr: "10.200.0.0/33" is not a CIDR; write it as address/prefix-length`}},
		{"host bits", "cluster_cidr: 10.200.0.0/16", "cluster_cidr: 10.200.1.0/16",
			[]string{"has host bits set; write the network address, 10.200.0.0/16"}},
		{"two of a family", "cluster_cidr: 10.200.0.0/16", "cluster_cidr: [10.200.0.0/16, 10.201.0.0/16]",
			[]string{"has two IPv4 CIDRs"}},
		{"overlap", "service_cidr: 10.32.0.0/24", "service_cidr: 10.200.5.0/24",
			[]string{"kubernetes:network:service_cidr: 10.200.5.0/24 overlaps cluster_cidr 10.200.0.0/16"}},
		{"node ip outside", "ip: 192.168.170.20", "ip: 192.168.171.20",
			[]string{"kubernetes:nodes:worker-0:ip: 192.168.171.20 is outside the node network 192.168.170.0/24"}},
		{"wrong family ip", "ip: 192.168.170.20", "ip: fd00::20",
			[]string{"fd00::20 is IPv6 but no IPv6 node network is defined", "has no IPv4 address"}},
		{"duplicate ip", "ip: 192.168.170.20", "ip: 192.168.170.10",
			[]string{"kubernetes:nodes:worker-0:ip: 192.168.170.10 is also the address of node master-0"}},
		{"duplicate name", "worker-0: {role: worker", "master-0: {role: worker",
			[]string{`mapping key "master-0" already defined`}},
		{"mask not longer", "service_cidr:", "node_cidr_mask_size_ipv4: 16\n    service_cidr:",
			[]string{"kubernetes:network:node_cidr_mask_size_ipv4: 16 must be longer than the cluster CIDR's prefix (10.200.0.0/16)"}},
		{"pinned outside", "ip: 192.168.170.20}", "ip: 192.168.170.20, pod_cidr: 10.201.0.0/24}",
			[]string{"kubernetes:nodes:worker-0:pod_cidr: 10.201.0.0/24 is outside the cluster CIDR 10.200.0.0/16"}},
		{"pinned clash", "ip: 192.168.170.20}", "ip: 192.168.170.20, pod_cidr: 10.200.3.0/24}\n    master-1: {role: master, ip: 192.168.170.11, pod_cidr: 10.200.3.0/24}",
			[]string{"kubernetes:nodes:worker-0:pod_cidr: 10.200.3.0/24 clashes with 10.200.3.0/24 pinned on node master-1"}},
		{"pinned wrong size", "ip: 192.168.170.20}", "ip: 192.168.170.20, pod_cidr: 10.200.4.0/23}",
			[]string{"10.200.4.0/23 is a /23 but node blocks are /24"}},
		{"bad role", "role: worker", "role: minion",
			[]string{`kubernetes:nodes:worker-0:role: "minion" is not a role; use "master" or "worker"`}},
		{"unknown field", "role: worker", "role: worker, pod_cird: 10.200.1.0/24",
			[]string{`kubernetes:nodes:<node>:pod_cird: unknown field "pod_cird"`, "known: role, ip, pod_cidr"}},
		{"dns outside", "cluster_dns: 10.32.0.10", "cluster_dns: 10.33.0.10",
			[]string{"kubernetes:network:cluster_dns: 10.33.0.10 is outside the service CIDR 10.32.0.0/24"}},
		{"bad mode", "network:", "mode: magic\n  network:",
			[]string{`kubernetes:mode: "magic" is not a mode`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(base, c.old, c.new, 1)
			if src == base {
				t.Fatalf("replacement %q not applied", c.old)
			}
			_, err := Load([]byte(src))
			wantProblems(t, err, c.want...)
		})
	}
}

func TestTooManyNodesSaysHowManyFit(t *testing.T) {
	src := strings.Replace(base, "service_cidr:", "node_cidr_mask_size_ipv4: 17\n    service_cidr:", 1)
	src += "    worker-1: {role: worker, ip: 192.168.170.21}\n"
	_, err := Load([]byte(src))
	wantProblems(t, err, "kubernetes:nodes: 3 nodes, but 10.200.0.0/16 holds only 2 blocks of /17")
}

func TestAllProblemsAtOnce(t *testing.T) {
	src := strings.NewReplacer("10.200.0.0/16", "10.200.0.0/33", "role: worker", "role: boss").Replace(base)
	_, err := Load([]byte(src))
	wantProblems(t, err, "2 problems", "cluster_cidr", "role")
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(`{"kubernetes": {"nodes": {"a": {"ip": ["::1", "1.2.3.4"]}}}}`))
	f.Add([]byte("nodes: [1, 2]\nnetwork: {cluster_cidr: [a, b, c]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Load(data)
		if err != nil {
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// A definition that loads is internally consistent.
		for _, n := range d.Nodes {
			for _, ip := range n.IPs {
				nn, ok := ofFamily(d.Network.NodeCIDRs, ip.Is4())
				if !ok || !nn.Contains(ip) {
					t.Fatalf("node %s ip %s outside node networks %v", n.Name, ip, d.Network.NodeCIDRs)
				}
			}
		}
	})
}
