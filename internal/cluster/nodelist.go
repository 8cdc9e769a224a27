package cluster

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// Member is one entry of a node list: what the planner and discovery print
// and what route sync reads.
type Member struct {
	Name     string         `json:"name"`
	Role     string         `json:"role,omitempty"`
	IPs      []netip.Addr   `json:"ips"`
	PodCIDRs []netip.Prefix `json:"pod_cidrs"`
}

// ParseNodeList reads a node list given as {"nodes": [...]}, as a bare
// list, or as the whole result of `kubesalt cidr plan` or `nodes discover`
// ({"data": {"nodes": [...]}}), and checks every entry.
func ParseNodeList(data []byte) ([]Member, error) {
	trimmed := strings.TrimSpace(string(data))
	if trimmed == "" {
		return nil, fmt.Errorf("node list: no input; give a JSON list of nodes, or {\"nodes\": [...]} as `kubesalt cidr plan` prints it")
	}
	var list []Member
	if strings.HasPrefix(trimmed, "{") {
		var wrapped struct {
			Nodes *[]Member `json:"nodes"`
			Data  struct {
				Nodes *[]Member `json:"nodes"`
			} `json:"data"`
		}
		if err := json.Unmarshal(data, &wrapped); err != nil {
			return nil, fmt.Errorf("node list: %v; give JSON as `kubesalt cidr plan` prints it", err)
		}
		if wrapped.Nodes == nil {
			wrapped.Nodes = wrapped.Data.Nodes
		}
		if wrapped.Nodes == nil {
			return nil, fmt.Errorf("node list: the object has no \"nodes\" key; give {\"nodes\": [...]}")
		}
		list = *wrapped.Nodes
	} else if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("node list: %v; give JSON as `kubesalt cidr plan` prints it", err)
	}
	seen := map[string]bool{}
	for i, m := range list {
		if m.Name == "" {
			return nil, fmt.Errorf("node list: entry %d has no name; every node needs its \"name\"", i)
		}
		if seen[m.Name] {
			return nil, fmt.Errorf("node list: node %s appears twice; list each node once", m.Name)
		}
		seen[m.Name] = true
		for _, p := range m.PodCIDRs {
			if p.Masked() != p {
				return nil, fmt.Errorf("node list: node %s: pod CIDR %s has host bits set; write %s", m.Name, p, p.Masked())
			}
		}
	}
	return list, nil
}

// Members returns the definition's nodes with the given pod CIDRs.
func (d *Definition) Members(podCIDRs map[string][]netip.Prefix) []Member {
	out := make([]Member, len(d.Nodes))
	for i, n := range d.Nodes {
		out[i] = Member{Name: n.Name, Role: n.Role, IPs: n.IPs, PodCIDRs: podCIDRs[n.Name]}
		if out[i].PodCIDRs == nil {
			out[i].PodCIDRs = []netip.Prefix{}
		}
	}
	return out
}
