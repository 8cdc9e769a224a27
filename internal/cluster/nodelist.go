package cluster

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/tidwall/gjson"
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
// ({"data": {"nodes": [...]}}), and checks every entry. It reads with
// gjson: at 20,000 nodes encoding/json's reflection is most of a no-op
// route sync.
func ParseNodeList(data []byte) ([]Member, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, fmt.Errorf("node list: no input; give a JSON list of nodes, or {\"nodes\": [...]} as `kubesalt cidr plan` prints it")
	}
	if !gjson.ValidBytes(data) {
		return nil, fmt.Errorf("node list: not valid JSON; give it as `kubesalt cidr plan` prints it")
	}
	doc := gjson.ParseBytes(data)
	list := doc
	if doc.IsObject() {
		if list = doc.Get("nodes"); !list.Exists() {
			list = doc.Get("data.nodes")
		}
		if !list.Exists() {
			return nil, fmt.Errorf("node list: the object has no \"nodes\" key; give {\"nodes\": [...]}")
		}
	}
	if !list.IsArray() {
		return nil, fmt.Errorf("node list: \"nodes\" is not a list; give [{\"name\": ..., \"ips\": [...], \"pod_cidrs\": [...]}, ...]")
	}
	n := bytes.Count(data, []byte(`"name"`)) // a close guess to presize with
	out := make([]Member, 0, n)
	seen := make(map[string]bool, n)
	var err error
	list.ForEach(func(_, it gjson.Result) bool {
		var m Member
		// One pass over each object's fields: Get would rescan it per key.
		it.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "name":
				m.Name = v.String()
			case "role":
				m.Role = v.String()
			case "ips":
				v.ForEach(func(_, x gjson.Result) bool {
					ip, e := netip.ParseAddr(x.String())
					if e != nil {
						err = fmt.Errorf("node list: node %s: %q is not an IP address", it.Get("name").String(), x.String())
						return false
					}
					m.IPs = append(m.IPs, ip)
					return true
				})
			case "pod_cidrs":
				v.ForEach(func(_, x gjson.Result) bool {
					p, e := netip.ParsePrefix(x.String())
					switch {
					case e != nil:
						err = fmt.Errorf("node list: node %s: %q is not a CIDR", it.Get("name").String(), x.String())
					case p.Masked() != p:
						err = fmt.Errorf("node list: node %s: pod CIDR %s has host bits set; write %s", it.Get("name").String(), p, p.Masked())
					default:
						m.PodCIDRs = append(m.PodCIDRs, p)
						return true
					}
					return false
				})
			}
			return err == nil
		})
		switch {
		case err != nil:
		case m.Name == "":
			err = fmt.Errorf("node list: entry %d has no name; every node needs its \"name\"", len(out))
		case seen[m.Name]:
			err = fmt.Errorf("node list: node %s appears twice; list each node once", m.Name)
		}
		seen[m.Name] = true
		out = append(out, m)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
