package nodes

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

func member(name string, cidrs ...string) cluster.Member {
	m := cluster.Member{Name: name, PodCIDRs: []netip.Prefix{}}
	for _, c := range cidrs {
		m.PodCIDRs = append(m.PodCIDRs, netip.MustParsePrefix(c))
	}
	return m
}

// Every case of the comparison: empty nodes get the plan, equal ones are
// left, different ones are reported with the fix, unregistered ones wait.
func TestComparePodCIDRs(t *testing.T) {
	plan := []cluster.Member{
		member("worker-2", "10.200.5.0/24"),
		member("master-0", "10.200.0.0/24", "fd00:10:200::/64"),
		member("worker-0", "10.200.3.0/24"),
		member("worker-1", "10.200.4.0/24"),
		member("worker-3", "10.200.6.0/24"),
		member("worker-4"),
		member("worker-5", "fd00:10:200:5::/64"),
	}
	api := map[string][]string{
		"master-0": {},
		"worker-0": {"10.200.3.0/24"},
		"worker-1": {"10.200.9.0/24"},
		"worker-2": {},
		"worker-5": {"fd00:10:200:5:0::/64"}, // the same network, written otherwise
		"stray":    {"10.200.7.0/24"},        // not planned: not ours to touch
	}
	r, err := ComparePodCIDRs(plan, api)
	if err != nil {
		t.Fatal(err)
	}
	var set []string
	for _, a := range r.Set {
		set = append(set, a.Node+"="+jsonOf(t, a.PodCIDRs))
	}
	if want := []string{`master-0=["10.200.0.0/24","fd00:10:200::/64"]`, `worker-2=["10.200.5.0/24"]`}; !reflect.DeepEqual(set, want) {
		t.Errorf("set %v, want %v", set, want)
	}
	if want := []string{"worker-0", "worker-5"}; !reflect.DeepEqual(r.Unchanged, want) {
		t.Errorf("unchanged %v, want %v", r.Unchanged, want)
	}
	if !reflect.DeepEqual(r.Waiting, []string{"worker-3"}) || !reflect.DeepEqual(r.Unplanned, []string{"worker-4"}) {
		t.Errorf("waiting %v, unplanned %v", r.Waiting, r.Unplanned)
	}
	if len(r.Mismatches) != 1 {
		t.Fatalf("mismatches %+v", r.Mismatches)
	}
	m := r.Mismatches[0]
	if m.Node != "worker-1" || m.Have[0] != "10.200.9.0/24" || m.Want[0].String() != "10.200.4.0/24" ||
		!strings.Contains(m.Fix, "kubernetes:nodes:worker-1:pod_cidr: 10.200.9.0/24") || !strings.Contains(m.Fix, "kubectl delete node worker-1") {
		t.Errorf("mismatch %+v", m)
	}
	if !r.Changed() || !r.Problems() {
		t.Errorf("changed %v problems %v", r.Changed(), r.Problems())
	}

	// Once set, the same plan gives nothing to do and no problem.
	done := map[string][]string{"master-0": {"10.200.0.0/24", "fd00:10:200::/64"}, "worker-0": {"10.200.3.0/24"},
		"worker-1": {"10.200.4.0/24"}, "worker-2": {"10.200.5.0/24"}, "worker-3": {"10.200.6.0/24"}, "worker-5": {"fd00:10:200:5::/64"}}
	r, err = ComparePodCIDRs(plan, done)
	if err != nil || r.Changed() || r.Problems() || len(r.Unchanged) != 6 {
		t.Errorf("second run: %+v %v", r, err)
	}

	// The order matters: podCIDRs[0] is podCIDR, so the families swapped
	// is a different assignment.
	r, _ = ComparePodCIDRs(plan[1:2], map[string][]string{"master-0": {"fd00:10:200::/64", "10.200.0.0/24"}})
	if len(r.Mismatches) != 1 {
		t.Errorf("swapped families: %+v", r)
	}
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A plan the API would refuse is refused whole, before anything is sent.
func TestComparePodCIDRsRefusesWhatTheAPIRefuses(t *testing.T) {
	for _, c := range []struct {
		m    cluster.Member
		want string
	}{
		{member("w", "10.0.0.0/24", "10.0.1.0/24"), "node w has two pod CIDRs of one family"},
		{member("w", "10.0.0.0/24", "fd00::/64", "fd01::/64"), "node w has 3 pod CIDRs"},
	} {
		plan := []cluster.Member{member("ok", "10.1.0.0/24"), c.m}
		if _, err := ComparePodCIDRs(plan, map[string][]string{"ok": {}}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.m.PodCIDRs, err, c.want)
		}
		if err := CheckPlan(plan); err == nil {
			t.Errorf("CheckPlan accepted %v", c.m.PodCIDRs)
		}
	}
}

func TestParseNodeCIDRs(t *testing.T) {
	got, err := ParseNodeCIDRs([]byte(nodeList))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"master-0": {"10.200.0.0/24", "fd00:10:200::/64"},
		"worker-0": {"10.200.3.0/24"}, // spec.podCIDR only
		"worker-1": {},
		"worker-2": {"10.200.5.0/24"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for in, msg := range map[string]string{`{"items":`: "not valid JSON", `{"kind":"Status"}`: `a "Status", not a NodeList`} {
		if _, err := ParseNodeCIDRs([]byte(in)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func TestPatchFor(t *testing.T) {
	got := string(patchFor(Assignment{Node: "m", PodCIDRs: member("m", "10.200.0.0/24", "fd00::/64").PodCIDRs}))
	if want := `{"spec":{"podCIDR":"10.200.0.0/24","podCIDRs":["10.200.0.0/24","fd00::/64"]}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
