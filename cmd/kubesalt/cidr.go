package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kubesalt/kubesalt/internal/cidr"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

func runCIDRPlan(s *streams, args []string) int {
	var c common
	var defFile, planFile string
	fs := newFlags(s, "cidr plan", &c)
	fs.StringVar(&defFile, "definition", "-", "cluster definition (YAML or JSON; - for stdin)")
	fs.StringVar(&planFile, "plan", "/var/lib/kubesalt/plan.json", "the plan file, kept between runs")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	def, err := loadDefinition(s, defFile)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	plan, ch, err := cidr.Update(planFile, def, c.Test)
	var pe *cidr.PlanError
	if errors.As(err, &pe) {
		err = saltio.BadInput(err)
	}
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	members := def.Members(plan.Nodes)
	changes := map[string]any{}
	if len(ch.Assigned) > 0 {
		changes["assigned"] = ch.Assigned
	}
	if len(ch.Released) > 0 {
		changes["released"] = ch.Released
	}
	if len(ch.Moved) > 0 {
		changes["moved"] = ch.Moved
	}
	comment := fmt.Sprintf("%d nodes planned; no change", len(members))
	if !ch.Empty() {
		verb := "planned"
		if c.Test {
			verb = "would be planned"
		}
		comment = fmt.Sprintf("%d nodes %s: %d assigned, %d released, %d moved", len(members), verb, len(ch.Assigned), len(ch.Released), len(ch.Moved))
	}
	res := saltio.Result{
		Result:  saltio.Outcome(c.Test, !ch.Empty(), false),
		Changes: changes,
		Comment: comment,
		// cluster: the facts the formula reads rather than derives (the
		// ext_pillar hands them to every minion as kubesalt:cluster).
		Data: map[string]any{"nodes": members, "plan_file": planFile, "cluster": def.Facts(), "revision": plan.Revision},
	}
	return emit(s, &c, res, func(w io.Writer) {
		row(w, "NODE", "ROLE", "IPS", "POD CIDRS")
		for _, m := range members {
			row(w, m.Name, m.Role, join(m.IPs), join(m.PodCIDRs))
		}
	})
}

func join[T fmt.Stringer](xs []T) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.String()
	}
	return strings.Join(parts, ",")
}
