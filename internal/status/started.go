package status

import "fmt"

// AddNeeded says whether the node whose minion started (by its name or
// its minion id) needs orch.kubernetes.add_node, and why or why not: a
// node not in the definition needs nothing; nor does any node of a cluster
// not built yet (no node has a successful state run: the bootstrap builds
// it, and an add beside it would queue states in another order); nor a
// node that reported since the plan last changed with its routes converged.
func AddNeeded(v View, node string) (bool, string) {
	var n *NodeView
	for i := range v.Nodes {
		if v.Nodes[i].Name == node || v.Nodes[i].Minion == node {
			n = &v.Nodes[i]
			break
		}
	}
	switch {
	case n == nil:
		return false, node + " is not a node of the cluster definition"
	case v.Summary.EverRun == 0:
		return false, "no node of the cluster has run a state yet: orch.kubernetes.bootstrap builds it"
	case n.ReportedSincePlan && n.Routes.Converged:
		return false, node + " has converged with the current plan"
	case !n.ReportedSincePlan:
		return true, node + " has not reported since the plan changed"
	default:
		return true, fmt.Sprintf("%s's routes have not converged: %s", node, n.Routes.Why)
	}
}
