package routes

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

func member(name string, ips []string, pods ...string) cluster.Member {
	m := cluster.Member{Name: name}
	for _, ip := range ips {
		m.IPs = append(m.IPs, netip.MustParseAddr(ip))
	}
	for _, p := range pods {
		m.PodCIDRs = append(m.PodCIDRs, netip.MustParsePrefix(p))
	}
	return m
}

func TestDesiredSkipsSelfByNameAndByLocalAddress(t *testing.T) {
	nodes := []cluster.Member{
		member("a", []string{"192.168.170.10", "fd00::10"}, "10.200.0.0/24", "fd00:200::/64"),
		member("b", []string{"192.168.170.20", "fd00::20"}, "10.200.1.0/24", "fd00:200:0:1::/64"),
		member("c", []string{"192.168.170.21"}),
	}
	rs, err := Desired(nodes, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Via.String() != "192.168.170.20" || rs[1].Via.String() != "fd00::20" || rs[1].Node != "b" {
		t.Errorf("routes %v", rs)
	}
	rs, _ = Desired(nodes, "", map[netip.Addr]bool{netip.MustParseAddr("fd00::20"): true})
	if len(rs) != 2 || rs[0].Node != "a" || rs[1].Node != "a" {
		t.Errorf("self by local address: %v", rs)
	}
}

func TestDesiredRefusesBadLists(t *testing.T) {
	_, err := Desired([]cluster.Member{
		member("a", []string{"192.168.170.10"}, "10.200.0.0/16"),
		member("b", []string{"192.168.170.11"}, "10.200.3.0/24"),
	}, "", nil)
	if err == nil || !strings.Contains(err.Error(), "pod CIDR 10.200.3.0/24 of node b overlaps 10.200.0.0/16 of node a") {
		t.Errorf("overlap: %v", err)
	}
	_, err = Desired([]cluster.Member{member("a", []string{"192.168.170.10"}, "fd00:200::/64")}, "x", nil)
	if err == nil || !strings.Contains(err.Error(), "node a has the IPv6 pod CIDR fd00:200::/64 but no IPv6 address") {
		t.Errorf("family: %v", err)
	}
}

func TestParseNodeListShapes(t *testing.T) {
	for _, in := range []string{
		`[{"name": "a", "ips": ["192.168.170.10"], "pod_cidrs": ["10.200.0.0/24"]}]`,
		`{"nodes": [{"name": "a", "ips": ["192.168.170.10"], "pod_cidrs": ["10.200.0.0/24"]}]}`,
		`{"result": true, "data": {"nodes": [{"name": "a", "ips": ["192.168.170.10"], "pod_cidrs": ["10.200.0.0/24"]}]}}`,
	} {
		l, err := cluster.ParseNodeList([]byte(in))
		if err != nil || len(l) != 1 || l[0].PodCIDRs[0].String() != "10.200.0.0/24" {
			t.Errorf("%s: %v %v", in, l, err)
		}
	}
	for in, want := range map[string]string{
		``:                               "no input",
		`{"x": 1}`:                       `no "nodes" key`,
		`[{"ips": []}]`:                  "entry 0 has no name",
		`[{"name": "a"}, {"name": "a"}]`: "node a appears twice",
		`[{"name": "a", "pod_cidrs": ["10.200.0.1/24"]}]`: "has host bits set; write 10.200.0.0/24",
		`[{"name": "a", "ips": ["nope"]}]`:                "node list:",
	} {
		if _, err := cluster.ParseNodeList([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}
