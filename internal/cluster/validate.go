package cluster

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"
)

// Defaults applied where the definition is silent.
const (
	DefaultName       = "kubesalt"
	DefaultDomain     = "cluster.local"
	DefaultNodeMaskV4 = 24
	DefaultNodeMaskV6 = 64
	DefaultAPIPort    = 6443
	// DefaultLocalAPIPort is where each node's load balancer listens on
	// 127.0.0.1 (beside the API server's 6443 on a master).
	DefaultLocalAPIPort = 6444
	// MaxMaskDiff bounds the number of node blocks to 2^16 per family, as
	// kube-controller-manager's cidrset does.
	MaxMaskDiff = 16
)

var dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

type checker struct{ problems []Problem }

func (c *checker) add(field, format string, args ...any) {
	c.problems = append(c.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func family(is4 bool) string {
	if is4 {
		return "IPv4"
	}
	return "IPv6"
}

// prefixes parses a list of CIDRs, at most one per family, IPv4 first.
func (c *checker) prefixes(field string, in []string, required bool) []netip.Prefix {
	if len(in) == 0 {
		if required {
			c.add(field, "missing; give a CIDR such as %s (or a list of an IPv4 and an IPv6 CIDR for dual-stack)", exampleFor(field))
		}
		return nil
	}
	var out []netip.Prefix
	seen := map[bool]bool{}
	for _, s := range in {
		p, ok := c.prefix(field, s)
		if !ok {
			continue
		}
		if seen[p.Addr().Is4()] {
			c.add(field, "has two %s CIDRs; give at most one per family (one IPv4 and one IPv6 for dual-stack)", family(p.Addr().Is4()))
			continue
		}
		seen[p.Addr().Is4()] = true
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr().Is4() && !out[j].Addr().Is4() })
	return out
}

func (c *checker) prefix(field, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		c.add(field, "%q is not a CIDR; write it as address/prefix-length, e.g. %s", s, exampleFor(field))
		return netip.Prefix{}, false
	}
	if p.Addr().Zone() != "" {
		c.add(field, "%q has an IPv6 zone; remove the %%zone part", s)
		return netip.Prefix{}, false
	}
	if m := p.Masked(); m != p {
		c.add(field, "%q has host bits set; write the network address, %s", s, m)
		return netip.Prefix{}, false
	}
	return p, true
}

func exampleFor(field string) string {
	switch {
	case strings.HasSuffix(field, "node_cidr"):
		return "192.168.170.0/24"
	case strings.HasSuffix(field, "service_cidr"):
		return "10.32.0.0/24"
	case strings.HasSuffix(field, "pod_cidr"):
		return "10.200.7.0/24"
	}
	return "10.200.0.0/16"
}

func ofFamily(ps []netip.Prefix, is4 bool) (netip.Prefix, bool) {
	for _, p := range ps {
		if p.Addr().Is4() == is4 {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func (r *raw) validate() (*Definition, error) {
	c := &checker{}
	d := &Definition{Name: r.ClusterName, Domain: r.ClusterDomain, Mode: r.Mode}
	if d.Name == "" {
		d.Name = DefaultName
	} else if !dnsSubdomain.MatchString(d.Name) {
		c.add("kubernetes:cluster_name", "%q is not a DNS name; use lower-case letters, digits and '-'", d.Name)
	}
	if d.Domain == "" {
		d.Domain = DefaultDomain
	} else if !dnsSubdomain.MatchString(d.Domain) {
		c.add("kubernetes:cluster_domain", "%q is not a DNS domain; use e.g. cluster.local", d.Domain)
	}
	switch d.Mode {
	case "":
		d.Mode = ModePlanned
	case ModePlanned, ModeController:
	default:
		c.add("kubernetes:mode", "%q is not a mode; use %q (kubesalt plans pod CIDRs) or %q (kube-controller-manager allocates them)", d.Mode, ModePlanned, ModeController)
	}
	c.network(&r.Network, &d.Network)
	c.api(&r.API, &d.API)
	c.nodes(r.Nodes, d)
	c.pki(&r.PKI, &d.PKI)
	c.etcd(&r.Etcd, &d.Etcd)
	c.apiPlacement(d)
	c.dns(&r.DNS, &d.DNS)
	c.reconcile(&r.Reconcile, &d.Reconcile)
	d.Libvirt = c.libvirt(r.Libvirt, d)
	if d.Libvirt == nil {
		for _, n := range d.Nodes {
			if n.Hypervisor != "" && n.Hypervisor != NoHypervisor {
				c.add("kubernetes:nodes:"+n.Name+":hypervisor", "%q names a hypervisor, but the definition has no kubernetes:libvirt section; add it (with hypervisors) or remove the pin", n.Hypervisor)
			}
		}
	}
	if len(c.problems) > 0 {
		return nil, &ValidationError{Problems: c.problems}
	}
	return d, nil
}

func (c *checker) network(r *rawNetwork, n *Network) {
	const f = "kubernetes:network:"
	n.NodeCIDRs = c.prefixes(f+"node_cidr", r.NodeCIDR, true)
	n.ClusterCIDRs = c.prefixes(f+"cluster_cidr", r.ClusterCIDR, true)
	n.ServiceCIDRs = c.prefixes(f+"service_cidr", r.ServiceCIDR, true)

	n.NodeMaskV4, n.NodeMaskV6 = DefaultNodeMaskV4, DefaultNodeMaskV6
	if r.NodeMaskV4 != nil {
		n.NodeMaskV4 = *r.NodeMaskV4
	}
	if r.NodeMaskV6 != nil {
		n.NodeMaskV6 = *r.NodeMaskV6
	}
	for _, p := range n.ClusterCIDRs {
		is4 := p.Addr().Is4()
		field, mask, bits := f+"node_cidr_mask_size_ipv6", n.NodeMaskV6, 128
		if is4 {
			field, mask, bits = f+"node_cidr_mask_size_ipv4", n.NodeMaskV4, 32
		}
		switch {
		case mask <= p.Bits() || mask > bits:
			c.add(field, "%d must be longer than the cluster CIDR's prefix (%s) and at most %d; e.g. %d", mask, p, bits, min(p.Bits()+8, bits))
		case mask-p.Bits() > MaxMaskDiff:
			c.add(field, "%d splits %s into 2^%d blocks; at most 2^%d are supported: use a mask of at most /%d or a longer cluster CIDR", mask, p, mask-p.Bits(), MaxMaskDiff, p.Bits()+MaxMaskDiff)
		}
		if _, ok := ofFamily(n.NodeCIDRs, is4); !ok && len(n.NodeCIDRs) > 0 {
			c.add(f+"node_cidr", "the cluster CIDR has an %s part (%s) but there is no %s node network to route it over; add one", family(is4), p, family(is4))
		}
	}

	named := []struct {
		field string
		ps    []netip.Prefix
	}{{f + "node_cidr", n.NodeCIDRs}, {f + "cluster_cidr", n.ClusterCIDRs}, {f + "service_cidr", n.ServiceCIDRs}}
	for i := range named {
		for j := i + 1; j < len(named); j++ {
			for _, a := range named[i].ps {
				for _, b := range named[j].ps {
					if a.Overlaps(b) {
						c.add(named[j].field, "%s overlaps %s %s; the node, cluster and service networks must be disjoint", b, strings.TrimPrefix(named[i].field, f), a)
					}
				}
			}
		}
	}

	if r.ClusterDNS != "" {
		ip, err := netip.ParseAddr(r.ClusterDNS)
		switch {
		case err != nil:
			c.add(f+"cluster_dns", "%q is not an IP address; give an address in the service CIDR, e.g. 10.32.0.10", r.ClusterDNS)
		default:
			if svc, ok := ofFamily(n.ServiceCIDRs, ip.Is4()); ok && !svc.Contains(ip) {
				c.add(f+"cluster_dns", "%s is outside the service CIDR %s; pick an address inside it", ip, svc)
			}
			n.ClusterDNS = ip
		}
	}
}

func (c *checker) api(r *rawAPI, a *API) {
	a.Port, a.Name = r.Port, r.Name
	if a.Port == 0 {
		a.Port = DefaultAPIPort
	}
	if a.Port < 1 || a.Port > 65535 {
		c.add("kubernetes:api:port", "%d is not a TCP port; use 1-65535 (default %d)", a.Port, DefaultAPIPort)
	}
	if r.VIP != "" {
		ip, err := netip.ParseAddr(r.VIP)
		if err != nil {
			c.add("kubernetes:api:vip", "%q is not an IP address; give a free address of the node network (keepalived holds it on a master) or leave it out", r.VIP)
		}
		a.VIP = ip
	}
	a.LocalPort = r.LocalPort
	if a.LocalPort == 0 {
		a.LocalPort = DefaultLocalAPIPort
	}
	if a.LocalPort < 1 || a.LocalPort > 65535 {
		c.add("kubernetes:api:local_port", "%d is not a TCP port; use 1-65535 (default %d)", a.LocalPort, DefaultLocalAPIPort)
	}
	if a.Name != "" && !dnsSubdomain.MatchString(a.Name) {
		c.add("kubernetes:api:name", "%q is not a DNS name; use lower-case letters, digits, '-' and '.'", a.Name)
	}
}

func (c *checker) nodes(raw map[string]rawNode, d *Definition) {
	if len(raw) == 0 {
		c.add("kubernetes:nodes", "no nodes; add at least one, e.g. `master-0: {role: master, ip: 192.168.170.10}`")
		return
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)

	ipOwner := map[netip.Addr]string{}
	var pinned []struct {
		p    netip.Prefix
		node string
	}
	count := map[bool]int{}
	net := &d.Network
	for _, name := range names {
		r := raw[name]
		f := "kubernetes:nodes:" + name
		if !dnsSubdomain.MatchString(name) || len(name) > 253 {
			c.add(f, "%q is not a valid node name; use lower-case letters, digits, '-' and '.' (it becomes the Kubernetes node name)", name)
		}
		node := Node{Name: name, Role: r.Role, Hypervisor: strings.TrimSpace(r.Hypervisor)}
		if r.Role != RoleMaster && r.Role != RoleWorker {
			c.add(f+":role", "%q is not a role; use %q or %q", r.Role, RoleMaster, RoleWorker)
		}

		if len(r.IP) == 0 {
			c.add(f+":ip", "missing; give the node's address in the node network, e.g. 192.168.170.20")
		}
		seen := map[bool]bool{}
		for _, s := range r.IP {
			ip, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil || ip.Zone() != "" {
				c.add(f+":ip", "%q is not an IP address; give the node's address in the node network, e.g. 192.168.170.20", s)
				continue
			}
			if seen[ip.Is4()] {
				c.add(f+":ip", "has two %s addresses; give at most one per family", family(ip.Is4()))
				continue
			}
			seen[ip.Is4()] = true
			if nn, ok := ofFamily(net.NodeCIDRs, ip.Is4()); !ok {
				c.add(f+":ip", "%s is %s but no %s node network is defined; add it to kubernetes:network:node_cidr or fix the address", ip, family(ip.Is4()), family(ip.Is4()))
			} else if !nn.Contains(ip) {
				c.add(f+":ip", "%s is outside the node network %s; give an address inside it", ip, nn)
			} else if ip == nn.Addr() {
				c.add(f+":ip", "%s is the node network's own address; give a host address", ip)
			}
			if other, dup := ipOwner[ip]; dup {
				c.add(f+":ip", "%s is also the address of node %s; every node needs its own", ip, other)
			}
			ipOwner[ip] = name
			node.IPs = append(node.IPs, ip)
		}
		sort.Slice(node.IPs, func(i, j int) bool { return node.IPs[i].Is4() && !node.IPs[j].Is4() })
		for _, nn := range net.NodeCIDRs {
			if !seen[nn.Addr().Is4()] && len(r.IP) > 0 {
				c.add(f+":ip", "has no %s address, but the node network %s needs one on every node; add it", family(nn.Addr().Is4()), nn)
			}
		}

		node.Pods = c.prefixes(f+":pod_cidr", r.PodCIDR, false)
		for _, p := range node.Pods {
			cl, ok := ofFamily(net.ClusterCIDRs, p.Addr().Is4())
			switch {
			case !ok:
				c.add(f+":pod_cidr", "%s is %s but the cluster CIDR has no %s part; remove it or add one", p, family(p.Addr().Is4()), family(p.Addr().Is4()))
				continue
			case !cl.Contains(p.Addr()) || p.Bits() < cl.Bits():
				c.add(f+":pod_cidr", "%s is outside the cluster CIDR %s; pin a block inside it or remove the pin", p, cl)
				continue
			case p.Bits() != net.NodeMask(p):
				c.add(f+":pod_cidr", "%s is a /%d but node blocks are /%d; pin a /%d or change the mask size", p, p.Bits(), net.NodeMask(p), net.NodeMask(p))
				continue
			}
			for _, q := range pinned {
				if q.p.Overlaps(p) {
					c.add(f+":pod_cidr", "%s clashes with %s pinned on node %s; pin a free block", p, q.p, q.node)
				}
			}
			pinned = append(pinned, struct {
				p    netip.Prefix
				node string
			}{p, name})
		}
		for _, cl := range net.ClusterCIDRs {
			count[cl.Addr().Is4()]++
		}
		d.Nodes = append(d.Nodes, node)
	}
	for _, cl := range net.ClusterCIDRs {
		mask := net.NodeMask(cl)
		if mask <= cl.Bits() || mask-cl.Bits() > MaxMaskDiff {
			continue // reported with the mask
		}
		if fit := 1 << (mask - cl.Bits()); count[cl.Addr().Is4()] > fit {
			c.add("kubernetes:nodes", "%d nodes, but %s holds only %d blocks of /%d; use a larger cluster CIDR or a longer node mask", count[cl.Addr().Is4()], cl, fit, mask)
		}
	}
}

// apiPlacement checks what the API's addresses share with the nodes: the
// VIP lives on the node network (keepalived adds it to a master's
// interface there) and is no node's address; the local load balancer's
// port is none of the ports a master listens on, on 127.0.0.1 too.
func (c *checker) apiPlacement(d *Definition) {
	if vip := d.API.VIP; vip.IsValid() && len(d.Network.NodeCIDRs) > 0 {
		if net, ok := ofFamily(d.Network.NodeCIDRs, vip.Is4()); !ok || !net.Contains(vip) {
			c.add("kubernetes:api:vip", "%s is outside the node network %s; keepalived holds the VIP on the masters' node network interface: pick a free address inside it", vip, prefixesString(d.Network.NodeCIDRs))
		}
		for _, n := range d.Nodes {
			for _, ip := range n.IPs {
				if ip == vip {
					c.add("kubernetes:api:vip", "%s is node %s's address; pick an address no node has", vip, n.Name)
				}
			}
		}
	}
	for _, p := range []struct {
		name string
		port int
	}{{"kubernetes:api:port", d.API.Port}, {"kubernetes:etcd:client_port", d.Etcd.ClientPort}, {"kubernetes:etcd:peer_port", d.Etcd.PeerPort}} {
		if d.API.LocalPort == p.port {
			c.add("kubernetes:api:local_port", "%d is also %s; the node-local load balancer needs a port of its own on 127.0.0.1 (default %d)", p.port, p.name, DefaultLocalAPIPort)
		}
	}
}

func prefixesString(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "(none)"
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, ", ")
}
