// Package cluster loads and validates the cluster definition: the
// `kubernetes:` pillar tree, as YAML or as the same data in JSON.
package cluster

import (
	"net/netip"
	"sort"
)

// Roles a node can have.
const (
	RoleMaster = "master"
	RoleWorker = "worker"
)

// Modes of pod CIDR allocation.
const (
	ModePlanned    = "planned"    // kubesalt plans, --allocate-node-cidrs=false
	ModeController = "controller" // kube-controller-manager allocates, kubesalt discovers
)

// Definition is a validated cluster definition. Prefixes are canonical
// (no host bits), at most one per address family, IPv4 first.
type Definition struct {
	Name    string
	Domain  string
	Mode    string
	Network Network
	API     API
	// Nodes sorted by name.
	Nodes []Node
	PKI   PKI
	Etcd  Etcd
	DNS   DNS
	// Reconcile is the formula's periodic state run (kubernetes:reconcile).
	Reconcile Reconcile
	// Libvirt is where kubesalt-virt creates the nodes; nil when the
	// definition has no `libvirt:` section.
	Libvirt *Libvirt
}

// Network holds the cluster's address plan.
type Network struct {
	NodeCIDRs    []netip.Prefix // the flat network the hosts live on
	ClusterCIDRs []netip.Prefix // pod addresses, split into one block per node
	ServiceCIDRs []netip.Prefix
	NodeMaskV4   int // prefix length of each node's IPv4 pod block
	NodeMaskV6   int
	ClusterDNS   netip.Addr
}

// API is how clients reach the API servers.
type API struct {
	Port int
	// VIP is the optional virtual address keepalived holds on the masters,
	// inside the node network.
	VIP  netip.Addr
	Name string // optional load-balancer DNS name
	// LocalPort is where every node's load balancer (haproxy) listens on
	// 127.0.0.1, in front of every master's API server.
	LocalPort int
}

// Node is one host of the cluster.
type Node struct {
	Name string
	Role string
	IPs  []netip.Addr   // one per family, IPv4 first
	Pods []netip.Prefix // pinned pod CIDRs, one per family (optional)
	// Hypervisor pins the node's VM to one of kubernetes:libvirt:hypervisors
	// ("": placed by kubesalt-virt; NoHypervisor: no VM, a machine of its own).
	Hypervisor string
}

// NoHypervisor marks a node kubesalt-virt does not make: bare metal, or
// any machine of its own, in a cluster whose other nodes are VMs.
const NoHypervisor = "none"

// NodeMask returns the per-node block size for the family of p.
func (n Network) NodeMask(p netip.Prefix) int {
	if p.Addr().Is4() {
		return n.NodeMaskV4
	}
	return n.NodeMaskV6
}

// Node returns the node called name.
func (d *Definition) Node(name string) (Node, bool) {
	i := sort.Search(len(d.Nodes), func(i int) bool { return d.Nodes[i].Name >= name })
	if i < len(d.Nodes) && d.Nodes[i].Name == name {
		return d.Nodes[i], true
	}
	return Node{}, false
}

// Masters returns the nodes with the master role, sorted by name.
func (d *Definition) Masters() []Node { return d.withRole(RoleMaster) }

// Workers returns the nodes with the worker role, sorted by name.
func (d *Definition) Workers() []Node { return d.withRole(RoleWorker) }

func (d *Definition) withRole(role string) []Node {
	var out []Node
	for _, n := range d.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// IPOf returns the node's address of the same family as p.
func (n Node) IPOf(is4 bool) (netip.Addr, bool) {
	for _, ip := range n.IPs {
		if ip.Is4() == is4 {
			return ip, true
		}
	}
	return netip.Addr{}, false
}
