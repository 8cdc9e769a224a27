// Package virt creates the cluster's node network and VMs on libvirt: a
// libvirt network, per node a qcow2 overlay on the base cloud image, a
// cloud-init NoCloud seed ISO (with the node's pre-generated Salt minion key)
// and a domain. Every operation is idempotent and has a test mode; bad input
// is found before anything is created.
package virt

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// NodeSpec is everything kubesalt-virt needs to build one node's VM.
type NodeSpec struct {
	Cluster string
	Name    string
	Role    string
	// Addrs are the node's addresses with the node network's prefix
	// length, IPv4 first.
	Addrs   []netip.Prefix
	MAC     string
	Machine cluster.Machine
	Domain  string // the cluster's DNS domain, for the resolver search list
}

// DiskVolume and SeedVolume name the node's volumes in the pool.
func (s NodeSpec) DiskVolume() string { return s.Name + ".qcow2" }
func (s NodeSpec) SeedVolume() string { return s.Name + "-seed.iso" }

// IPv4 returns the node's IPv4 address, or its first address.
func (s NodeSpec) IPv4() netip.Addr {
	if len(s.Addrs) == 0 {
		return netip.Addr{}
	}
	return s.Addrs[0].Addr()
}

// MACFor derives a node's MAC address from the cluster and node names: the
// same name always gets the same MAC (DHCP leases, udev rules and switch
// tables stay valid across re-creation), in QEMU's locally administered
// 52:54:00 range.
func MACFor(clusterName, node string) string {
	h := sha256.Sum256([]byte("kubesalt/" + clusterName + "/" + node))
	return net.HardwareAddr{0x52, 0x54, 0x00, h[0], h[1], h[2]}.String()
}

// Specs returns the specs of the named nodes of d (all when names is
// empty), in the definition's order. Unknown names and MAC collisions
// between nodes are bad input.
func Specs(d *cluster.Definition, names []string) ([]NodeSpec, error) {
	if d.Libvirt == nil {
		return nil, fmt.Errorf("kubernetes:libvirt: missing; add the section that says where the VMs go (see pillar.example)")
	}
	want := map[string]bool{}
	for _, n := range names {
		node, ok := d.Node(n)
		if !ok {
			return nil, fmt.Errorf("--node %s: no such node under kubernetes:nodes; add it there first or fix the name", n)
		}
		if node.Hypervisor == cluster.NoHypervisor {
			return nil, fmt.Errorf("--node %s: kubernetes:nodes:%s:hypervisor is %q: a machine of its own, not a VM; remove that to make it one", n, n, cluster.NoHypervisor)
		}
		want[n] = true
	}
	macOwner := map[string]string{}
	var out []NodeSpec
	for _, n := range d.Nodes {
		mac := MACFor(d.Name, n.Name)
		if other, clash := macOwner[mac]; clash {
			return nil, fmt.Errorf("kubernetes:nodes:%s: its derived MAC %s equals node %s's; rename one of them", n.Name, mac, other)
		}
		macOwner[mac] = n.Name
		if len(want) > 0 && !want[n.Name] || n.Hypervisor == cluster.NoHypervisor {
			continue
		}
		s := NodeSpec{Cluster: d.Name, Name: n.Name, Role: n.Role, MAC: mac, Machine: d.Libvirt.Roles[n.Role], Domain: d.Domain}
		for _, ip := range n.IPs {
			for _, p := range d.Network.NodeCIDRs {
				if p.Contains(ip) {
					s.Addrs = append(s.Addrs, netip.PrefixFrom(ip, p.Bits()))
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}
