// Package cidr plans every node's pod CIDR(s): stable (an assignment never
// moves while its node exists), clash-free, deterministic, dual-stack.
package cidr

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// Plan maps each node to its pod CIDRs, one per family, IPv4 first.
type Plan struct {
	Nodes map[string][]netip.Prefix `json:"nodes"`
	// Revision grows with every change of the assignments (the planner's
	// clock in Unix nanoseconds, and at least one more than before): of
	// two node lists, the one of the higher revision is the newer, so a
	// route sync from a pillar compiled before a node was added does not
	// take that node's routes away again.
	Revision int64 `json:"revision,omitempty"`
}

// Move is a node whose block changed because its pin asked for another.
type Move struct {
	From netip.Prefix `json:"from"`
	To   netip.Prefix `json:"to"`
}

// Changes lists what a planning run changed, keyed by node.
type Changes struct {
	Assigned map[string][]netip.Prefix `json:"assigned,omitempty"`
	Released map[string][]netip.Prefix `json:"released,omitempty"`
	Moved    map[string]Move           `json:"moved,omitempty"`
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Assigned) == 0 && len(c.Released) == 0 && len(c.Moved) == 0
}

// PlanError is a plan that cannot be made from this definition and the
// previous plan; nothing is written.
type PlanError struct{ Msg string }

func (e *PlanError) Error() string { return e.Msg }

// Compute returns the plan for def, keeping every assignment of prev whose
// node still exists. New nodes take the lowest free block of each family, in
// name order, so the same inputs always give the same plan.
func Compute(def *cluster.Definition, prev Plan) (Plan, Changes, error) {
	n, fams := len(def.Nodes), len(def.Network.ClusterCIDRs)
	next := Plan{Nodes: make(map[string][]netip.Prefix, n)}
	ch := Changes{Assigned: map[string][]netip.Prefix{}, Released: map[string][]netip.Prefix{}, Moved: map[string]Move{}}

	olds := make([][]netip.Prefix, n)
	matched := 0
	for i, node := range def.Nodes {
		if ps, ok := prev.Nodes[node.Name]; ok {
			olds[i] = ps
			matched++
		}
	}
	if matched < len(prev.Nodes) {
		for name, ps := range prev.Nodes {
			if _, ok := def.Node(name); !ok {
				ch.Released[name] = ps
			}
		}
	}
	planned := make([]netip.Prefix, n*fams) // one backing array for every node's list
	for f, cl := range def.Network.ClusterCIDRs {
		is4 := cl.Addr().Is4()
		set := reservedBlocks(def, cl)
		holder := make([]int32, set.count) // node index + 1
		// Pins first: they are the user's word.
		for i, node := range def.Nodes {
			p, ok := ofFamily(node.Pods, is4)
			if !ok {
				continue
			}
			b, _ := set.index(p) // validated: inside the cluster CIDR, node-sized
			if !set.take(b) {
				return Plan{}, Changes{}, &PlanError{fmt.Sprintf("kubernetes:nodes:%s:pod_cidr: %s overlaps the service or node network; pin another block", node.Name, p)}
			}
			holder[b] = int32(i + 1)
			planned[i*fams+f] = p
			old, had := ofFamily(olds[i], is4)
			switch {
			case !had:
				ch.Assigned[node.Name] = append(ch.Assigned[node.Name], p)
			case old != p:
				ch.Moved[node.Name] = Move{From: old, To: p}
			}
		}
		// Then every assignment of the previous plan whose node still exists.
		for i, node := range def.Nodes {
			old, had := ofFamily(olds[i], is4)
			if !had || planned[i*fams+f].IsValid() {
				continue
			}
			b, ok := set.index(old)
			if !ok {
				return Plan{}, Changes{}, &PlanError{fmt.Sprintf(
					"node %s holds %s in the plan, which is not a /%d block of the cluster CIDR %s: kubernetes:network changed under a running cluster; restore it, or pin the node's block with pod_cidr",
					node.Name, old, set.mask, cl)}
			}
			if h := holder[b]; h != 0 {
				return Plan{}, Changes{}, &PlanError{fmt.Sprintf(
					"%s is pinned on node %s but node %s holds it in the plan; pin a free block instead (an assigned block never moves)", old, def.Nodes[h-1].Name, node.Name)}
			}
			if !set.take(b) {
				return Plan{}, Changes{}, &PlanError{fmt.Sprintf("node %s holds %s in the plan, which overlaps the service or node network; restore kubernetes:network or pin the node's block", node.Name, old)}
			}
			holder[b] = int32(i + 1)
			planned[i*fams+f] = old
		}
		// New nodes last, in name order (def.Nodes is sorted).
		for i, node := range def.Nodes {
			if planned[i*fams+f].IsValid() {
				continue
			}
			b, ok := set.lowestFree()
			if !ok {
				return Plan{}, Changes{}, &PlanError{fmt.Sprintf(
					"kubernetes:network:cluster_cidr: %s is exhausted: it holds %d blocks of /%d and all are taken; %d nodes fit, use a larger cluster CIDR or a longer node mask",
					cl, set.count, set.mask, set.count-reservedBlocks(def, cl).taken())}
			}
			set.take(b)
			p := set.block(b)
			planned[i*fams+f] = p
			ch.Assigned[node.Name] = append(ch.Assigned[node.Name], p)
		}
	}
	for i, node := range def.Nodes {
		next.Nodes[node.Name] = planned[i*fams : (i+1)*fams : (i+1)*fams]
		// A family that left the cluster CIDRs releases its blocks.
		for _, old := range olds[i] {
			if _, still := ofFamily(def.Network.ClusterCIDRs, old.Addr().Is4()); !still {
				ch.Released[node.Name] = append(ch.Released[node.Name], old)
			}
		}
	}
	return next, ch, nil
}

// reservedBlocks returns the blocks of cl with the node and service
// networks taken: they are never handed out.
func reservedBlocks(def *cluster.Definition, cl netip.Prefix) *blocks {
	set := newBlocks(cl, def.Network.NodeMask(cl))
	for _, r := range def.Network.NodeCIDRs {
		set.reserve(r)
	}
	for _, r := range def.Network.ServiceCIDRs {
		set.reserve(r)
	}
	return set
}

func ofFamily(ps []netip.Prefix, is4 bool) (netip.Prefix, bool) {
	for _, p := range ps {
		if p.Addr().Is4() == is4 {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// Names returns the plan's node names, sorted.
func (p Plan) Names() []string {
	out := make([]string, 0, len(p.Nodes))
	for n := range p.Nodes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
