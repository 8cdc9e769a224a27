package status

import "testing"

func TestAddNeeded(t *testing.T) {
	converged := NodeView{Name: "worker-0", Minion: "worker-0.lab", ReportedSincePlan: true, Routes: RoutesView{Converged: true}}
	behind := NodeView{Name: "worker-1", ReportedSincePlan: true, Routes: RoutesView{Why: "1 of 3 routes missing"}}
	silent := NodeView{Name: "worker-2"}
	built := View{Nodes: []NodeView{converged, behind, silent}, Summary: Summary{EverRun: 2}}
	unbuilt := View{Nodes: []NodeView{{Name: "worker-0"}, {Name: "worker-1"}}}
	for _, c := range []struct {
		name string
		v    View
		node string
		want bool
		why  string
	}{
		{"stranger", built, "web-1", false, "web-1 is not a node of the cluster definition"},
		{"cluster not built", unbuilt, "worker-1", false, "no node of the cluster has run a state yet: orch.kubernetes.bootstrap builds it"},
		{"converged, by minion id", built, "worker-0.lab", false, "worker-0.lab has converged with the current plan"},
		{"routes behind", built, "worker-1", true, "worker-1's routes have not converged: 1 of 3 routes missing"},
		{"not reported since the plan", built, "worker-2", true, "worker-2 has not reported since the plan changed"},
	} {
		got, why := AddNeeded(c.v, c.node)
		if got != c.want || why != c.why {
			t.Errorf("%s: %v %q; want %v %q", c.name, got, why, c.want, c.why)
		}
	}
}
