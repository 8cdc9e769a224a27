package virt

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// Placement maps every node of d to the hypervisor its VM runs on: its pin
// (nodes:<node>:hypervisor); else, for a master, the hypervisor with the
// fewest masters so far (in name order), so that the masters, and etcd's
// quorum, are spread over the hosts; else, for a worker, rendezvous
// hashing of its name, so that a worker keeps its hypervisor while others
// come and go. A node with hypervisor "none" is no VM and not placed.
// Empty when d names no hypervisors (one hypervisor at URI).
func Placement(d *cluster.Definition) map[string]string {
	if d.Libvirt == nil || len(d.Libvirt.Hypervisors) == 0 {
		return map[string]string{}
	}
	var hvs []string
	for name := range d.Libvirt.Hypervisors {
		hvs = append(hvs, name)
	}
	slices.Sort(hvs)
	out := map[string]string{}
	masters := map[string]int{}
	for _, n := range d.Nodes {
		if n.Hypervisor != "" && n.Hypervisor != cluster.NoHypervisor {
			out[n.Name] = n.Hypervisor
			if n.Role == cluster.RoleMaster {
				masters[n.Hypervisor]++
			}
		}
	}
	var names []string
	for _, n := range d.Nodes {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	for _, name := range names {
		n, _ := d.Node(name)
		if out[name] != "" || n.Hypervisor == cluster.NoHypervisor {
			continue
		}
		if n.Role == cluster.RoleMaster {
			best := hvs[0]
			for _, h := range hvs[1:] {
				if masters[h] < masters[best] {
					best = h
				}
			}
			out[name] = best
			masters[best]++
			continue
		}
		out[name] = rendezvous(name, hvs)
	}
	return out
}

// rendezvous is the hypervisor with the highest hash of (node, hypervisor).
func rendezvous(node string, hvs []string) string {
	best, bestScore := "", uint64(0)
	for _, h := range hvs {
		sum := sha256.Sum256([]byte(node + "\x00" + h))
		if score := binary.BigEndian.Uint64(sum[:8]); best == "" || score > bestScore {
			best, bestScore = h, score
		}
	}
	return best
}

// OnHypervisor checks that hv is one of d's hypervisors and returns the
// nodes placed on it (none is an empty list); names, when given, must all
// be placed there. With no hypervisors in d it returns names as they are
// (one hypervisor has them all; empty: every node).
func OnHypervisor(d *cluster.Definition, hv string, names []string) ([]string, error) {
	if d.Libvirt == nil || len(d.Libvirt.Hypervisors) == 0 {
		return names, nil
	}
	if hv == "" {
		return nil, saltio.BadInputf("--hypervisor: missing; kubernetes:libvirt:hypervisors names %d hypervisors: give this one's (its minion id; the Salt module passes it)", len(d.Libvirt.Hypervisors))
	}
	if _, ok := d.Libvirt.Hypervisors[hv]; !ok {
		return nil, saltio.BadInputf("--hypervisor %q: not under kubernetes:libvirt:hypervisors; add it there with its uri", hv)
	}
	placed := Placement(d)
	if len(names) == 0 {
		here := []string{}
		for _, n := range d.Nodes {
			if placed[n.Name] == hv {
				here = append(here, n.Name)
			}
		}
		return here, nil
	}
	for _, name := range names {
		if on, ok := placed[name]; ok && on != hv {
			return nil, saltio.BadInputf("--node %s: its VM goes on hypervisor %s, not %s (kubernetes:nodes:%s:hypervisor pins it; else kubesalt-virt places it): run this on %s's minion", name, on, hv, name, on)
		}
	}
	return names, nil
}

// URIOf is hypervisor hv's libvirt URI, or d's single URI.
func URIOf(d *cluster.Definition, hv string) string {
	if h, ok := d.Libvirt.Hypervisors[hv]; ok {
		return h.URI
	}
	return d.Libvirt.URI
}
