package virt

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kubesalt/kubesalt/internal/saltio"
)

// Result turns a network report into the JSON contract. Drift left alone
// is a failure: the network is not as defined.
func (r *NetworkReport) Result(opts Options) saltio.Result {
	changes := map[string]any{}
	if len(r.Done) > 0 {
		changes["network"] = map[string]any{r.Name: r.Done}
	}
	if len(r.Drift) > 0 {
		changes["drift"] = r.Drift
	}
	drifted := len(r.Drift) > 0 && !opts.Update
	var comment string
	switch {
	case drifted:
		comment = fmt.Sprintf("network %s differs from the definition (%s); rerun with --update to redefine it", r.Name, keys(r.Drift))
	case len(r.Done) > 0 && opts.Test:
		comment = fmt.Sprintf("network %s would be %s", r.Name, strings.Join(r.Done, ", "))
	case len(r.Done) > 0:
		comment = fmt.Sprintf("network %s %s", r.Name, strings.Join(r.Done, ", "))
	default:
		comment = fmt.Sprintf("network %s is as defined", r.Name)
	}
	if r.Updated && !opts.Test && r.Active {
		comment += "; the running network uses the new definition after it is restarted"
	}
	data := map[string]any{"network": r.Name, "bridge": r.Bridge, "active": r.Active}
	if len(r.Drift) > 0 {
		data["drift"] = r.Drift
	}
	return saltio.Result{
		Result:  saltio.Outcome(opts.Test, len(changes) > 0, drifted && !opts.Test),
		Changes: changes,
		Comment: comment,
		Data:    data,
	}
}

// Result turns a nodes report into the JSON contract.
func (r *NodesReport) Result(opts Options, verb string) saltio.Result {
	changes := make(map[string]any, len(r.Changes))
	for n, c := range r.Changes {
		changes[n] = c
	}
	failed := r.Failure != nil || (r.Drifted && !opts.Test)
	var comments []string
	if r.Failure != nil {
		c := fmt.Sprintf("node %s failed: %v", r.FailedNode, r.Failure)
		if len(r.RolledBack) > 0 {
			c += "; rolled back: " + strings.Join(r.RolledBack, ", ")
		}
		if len(r.Leftover) > 0 {
			c += "; could not roll back (remove by hand): " + strings.Join(r.Leftover, ", ")
		}
		comments = append(comments, c)
	}
	if r.Drifted {
		var drifted []string
		for n, c := range r.Changes {
			if len(c.Drift) > 0 && !c.Updated {
				drifted = append(drifted, fmt.Sprintf("%s (%s)", n, keys(c.Drift)))
			}
		}
		sort.Strings(drifted)
		comments = append(comments, "drifted from the definition: "+strings.Join(drifted, ", ")+"; rerun with --update to change them")
	}
	switch {
	case len(changes) == 0 && r.Failure == nil:
		comments = append(comments, "nothing to do")
	case opts.Test && len(changes) > 0:
		comments = append(comments, fmt.Sprintf("%d node(s) would be %s", len(changes), verb))
	case len(changes) > 0:
		comments = append(comments, fmt.Sprintf("%d node(s) %s", len(changes), verb))
	}
	data := map[string]any{"nodes": r.Nodes}
	if len(r.Warnings) > 0 {
		data["warnings"] = r.Warnings
	}
	if r.Failure != nil {
		data["failed_node"] = r.FailedNode
		data["rolled_back"] = r.RolledBack
		data["leftover"] = r.Leftover
	}
	return saltio.Result{
		Result:  saltio.Outcome(opts.Test, len(changes) > 0, failed),
		Changes: changes,
		Comment: strings.Join(comments, "; "),
		Data:    data,
	}
}

func keys[V any](m map[string]V) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
