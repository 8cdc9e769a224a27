package nodes

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// CIDRReport is what setting Node.spec.podCIDRs to the plan finds and
// does. A node's podCIDRs can be set only once, from empty (the API
// refuses any other change), so a node that differs is reported, never
// forced.
type CIDRReport struct {
	// Set are the nodes registered with no pod CIDR: they get the plan's.
	Set []Assignment `json:"set"`
	// Unchanged are the nodes whose CIDRs already are the plan's.
	Unchanged []string `json:"unchanged"`
	// Waiting are planned nodes not registered yet: not an error, their
	// kubelet registers them later and the next run sets them.
	Waiting []string `json:"waiting"`
	// Unplanned are planned nodes without a pod CIDR in the plan.
	Unplanned []string `json:"unplanned"`
	// Mismatches are nodes whose CIDRs differ from the plan.
	Mismatches []Mismatch `json:"mismatches"`
	// Failed are patches the API refused (filled by the apply).
	Failed []Failure `json:"failed"`
}

// Assignment is one node's planned pod CIDRs, to set.
type Assignment struct {
	Node     string         `json:"node"`
	PodCIDRs []netip.Prefix `json:"pod_cidrs"`
}

// Mismatch is a registered node whose pod CIDRs are not the plan's.
type Mismatch struct {
	Node string         `json:"node"`
	Have []string       `json:"have"`
	Want []netip.Prefix `json:"want"`
	Fix  string         `json:"fix"`
}

// Failure is a patch the API refused.
type Failure struct {
	Node  string `json:"node"`
	Error string `json:"error"`
}

// Changed reports whether the run sets (or would set) any node.
func (r *CIDRReport) Changed() bool { return len(r.Set) > 0 }

// Problems reports whether anything needs a person.
func (r *CIDRReport) Problems() bool { return len(r.Mismatches)+len(r.Failed) > 0 }

// ParseNodeCIDRs reads a NodeList as the API returns it: each node's name
// and its spec.podCIDRs (spec.podCIDR when the list is absent), as written.
func ParseNodeCIDRs(data []byte) (map[string][]string, error) {
	if !gjson.ValidBytes(data) {
		return nil, fmt.Errorf("the API's node list is not valid JSON")
	}
	doc := gjson.ParseBytes(data)
	if !doc.Get("items").IsArray() {
		return nil, fmt.Errorf("the API's answer is a %q, not a NodeList", doc.Get("kind").String())
	}
	out := map[string][]string{}
	for _, it := range doc.Get("items").Array() {
		name := it.Get("metadata.name").String()
		if name == "" {
			continue
		}
		cidrs := []string{}
		for _, c := range it.Get("spec.podCIDRs").Array() {
			cidrs = append(cidrs, c.String())
		}
		if len(cidrs) == 0 && it.Get("spec.podCIDR").String() != "" {
			cidrs = append(cidrs, it.Get("spec.podCIDR").String())
		}
		out[name] = cidrs
	}
	return out, nil
}

// ComparePodCIDRs compares the plan with the nodes the API has (name ->
// spec.podCIDRs). It is pure: the caller applies Set. A plan the API
// would refuse (more than two CIDRs, or two of one family) is an error,
// so nothing is applied.
func ComparePodCIDRs(plan []cluster.Member, api map[string][]string) (*CIDRReport, error) {
	if err := CheckPlan(plan); err != nil {
		return nil, err
	}
	r := &CIDRReport{Set: []Assignment{}, Unchanged: []string{}, Waiting: []string{}, Unplanned: []string{},
		Mismatches: []Mismatch{}, Failed: []Failure{}}
	for _, m := range plan {
		have, registered := api[m.Name]
		switch {
		case len(m.PodCIDRs) == 0:
			r.Unplanned = append(r.Unplanned, m.Name)
		case !registered:
			r.Waiting = append(r.Waiting, m.Name)
		case len(have) == 0:
			r.Set = append(r.Set, Assignment{Node: m.Name, PodCIDRs: m.PodCIDRs})
		case samePrefixes(have, m.PodCIDRs):
			r.Unchanged = append(r.Unchanged, m.Name)
		default:
			r.Mismatches = append(r.Mismatches, Mismatch{
				Node: m.Name, Have: have, Want: m.PodCIDRs,
				Fix: fmt.Sprintf("a node's podCIDRs can be set only once: pin the plan to what the node has "+
					"(kubernetes:nodes:%s:pod_cidr: %s), or delete the Node (kubectl delete node %s) and "+
					"restart its kubelet so it registers again without one", m.Name, strings.Join(have, ","), m.Name),
			})
		}
	}
	for _, l := range [][]string{r.Unchanged, r.Waiting, r.Unplanned} {
		sort.Strings(l)
	}
	sort.Slice(r.Set, func(i, j int) bool { return r.Set[i].Node < r.Set[j].Node })
	sort.Slice(r.Mismatches, func(i, j int) bool { return r.Mismatches[i].Node < r.Mismatches[j].Node })
	return r, nil
}

// CheckPlan refuses a plan the API would refuse: at most two pod CIDRs
// per node, one per address family.
func CheckPlan(plan []cluster.Member) error {
	for _, m := range plan {
		if err := checkDualStack(m); err != nil {
			return err
		}
	}
	return nil
}

func checkDualStack(m cluster.Member) error {
	switch {
	case len(m.PodCIDRs) > 2:
		return fmt.Errorf("node list: node %s has %d pod CIDRs; a node takes at most two, one IPv4 and one IPv6", m.Name, len(m.PodCIDRs))
	case len(m.PodCIDRs) == 2 && m.PodCIDRs[0].Addr().Is4() == m.PodCIDRs[1].Addr().Is4():
		return fmt.Errorf("node list: node %s has two pod CIDRs of one family (%s, %s); a dual-stack node takes one IPv4 and one IPv6", m.Name, m.PodCIDRs[0], m.PodCIDRs[1])
	}
	return nil
}

// samePrefixes compares as networks, in order (podCIDRs[0] is podCIDR):
// the API may write an IPv6 CIDR differently than the plan.
func samePrefixes(have []string, want []netip.Prefix) bool {
	got := make([]netip.Prefix, 0, len(have))
	for _, h := range have {
		p, err := netip.ParsePrefix(h)
		if err != nil {
			return false
		}
		got = append(got, p.Masked())
	}
	return slices.Equal(got, want)
}

// patchFor is the merge patch that sets one node's pod CIDRs.
func patchFor(a Assignment) []byte {
	quoted := make([]string, len(a.PodCIDRs))
	for i, p := range a.PodCIDRs {
		quoted[i] = `"` + p.String() + `"`
	}
	return []byte(fmt.Sprintf(`{"spec":{"podCIDR":%s,"podCIDRs":[%s]}}`, quoted[0], strings.Join(quoted, ",")))
}
