// Package routes reconciles the kernel routes from this node to every other
// node's pod CIDRs. It owns its routes by a protocol number of its own and
// touches no other route: a foreign route for a destination it wants is a
// conflict, reported and left alone unless the caller asks to adopt it.
package routes

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// Route is one pod CIDR reached via a node's host IP.
type Route struct {
	Dst  netip.Prefix `json:"dst"`
	Via  netip.Addr   `json:"via"`
	Node string       `json:"node,omitempty"`
}

func (r Route) String() string { return r.Dst.String() + " via " + r.Via.String() }

// Desired returns the routes this node needs: every other node's pod CIDRs
// via that node's host IP of the same family. The node called self, and any
// node holding one of the local addresses, gets no route: routing a node's
// own CIDR away breaks its pods. Nodes without a pod CIDR (not yet
// allocated) need no route. Bad input is an error and nothing is routed.
func Desired(nodes []cluster.Member, self string, local map[netip.Addr]bool) ([]Route, error) {
	var out []Route
	var owner []string
	for _, n := range nodes {
		isSelf := n.Name == self
		for _, ip := range n.IPs {
			isSelf = isSelf || local[ip]
		}
		for _, p := range n.PodCIDRs {
			via, ok := ipOf(n.IPs, p.Addr().Is4())
			if !ok {
				return nil, fmt.Errorf("node list: node %s has the %s pod CIDR %s but no %s address to route it via; add the address or drop the CIDR",
					n.Name, family(p), p, family(p))
			}
			if isSelf {
				continue
			}
			out = append(out, Route{Dst: p, Via: via, Node: n.Name})
			owner = append(owner, n.Name)
		}
	}
	// Two nodes must never claim overlapping pod CIDRs: the plan guarantees
	// it, discovery input may not.
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return less(out[idx[a]].Dst, out[idx[b]].Dst) })
	for k := 1; k < len(idx); k++ {
		a, b := out[idx[k-1]], out[idx[k]]
		if a.Dst.Overlaps(b.Dst) {
			return nil, fmt.Errorf("node list: pod CIDR %s of node %s overlaps %s of node %s; every node needs its own block",
				b.Dst, owner[idx[k]], a.Dst, owner[idx[k-1]])
		}
	}
	return out, nil
}

func less(a, b netip.Prefix) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Bits() < b.Bits()
}

func ipOf(ips []netip.Addr, is4 bool) (netip.Addr, bool) {
	for _, ip := range ips {
		if ip.Is4() == is4 {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "IPv4"
	}
	return "IPv6"
}
