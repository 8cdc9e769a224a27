package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/nodes"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

func runNodesDiscover(s *streams, args []string) int {
	var c common
	var file, kubectl, kubeconfig string
	var timeout time.Duration
	fs := newFlags(s, "nodes discover", &c)
	fs.StringVar(&file, "file", "", "read `kubectl get nodes -o json` output from this file (- for stdin) instead of running kubectl")
	fs.StringVar(&kubectl, "kubectl", "kubectl", "the kubectl to run")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig for kubectl")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for kubectl")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	var data []byte
	var err error
	if file != "" {
		data, err = saltio.ReadInput(file, s.Stdin)
	} else {
		data, err = nodes.Kubectl(context.Background(), kubectl, kubeconfig, timeout)
	}
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	members, problems, err := nodes.Parse(data)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	comment := fmt.Sprintf("%d nodes discovered", len(members))
	if len(problems) > 0 {
		comment += fmt.Sprintf("; %d problems (nodes not routable yet)", len(problems))
	}
	res := saltio.Result{Result: saltio.Bool(true), Comment: comment, Data: map[string]any{"nodes": members, "problems": problems}}
	return emit(s, &c, res, func(w io.Writer) {
		row(w, "NODE", "ROLE", "IPS", "POD CIDRS")
		for _, m := range members {
			row(w, m.Name, m.Role, join(m.IPs), join(m.PodCIDRs))
		}
		for _, p := range problems {
			row(w, p.Node, "PROBLEM", p.Problem, "")
		}
	})
}

func runNodesSetCIDRs(s *streams, args []string) int {
	var c common
	var nodesFile, kubeconfig string
	var timeout time.Duration
	var ifReady bool
	fs := newFlags(s, "nodes set-cidrs", &c)
	fs.StringVar(&nodesFile, "nodes", "-", "the planned node list JSON, as kubesalt cidr plan prints it (- for stdin)")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of a user that may patch nodes (the admin kubeconfig)")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long the whole run may take")
	fs.BoolVar(&ifReady, "if-api-ready", false, "do nothing, successfully, while the kubeconfig is not written or the API server's /readyz is not ok")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	// Everything is checked before the API is asked anything.
	if kubeconfig == "" {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--kubeconfig is required: a kubeconfig that may patch nodes, e.g. /var/lib/kubesalt/pki/admin.kubeconfig"))
	}
	if timeout <= 0 {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--timeout %s: give a positive duration, e.g. 30s", timeout))
	}
	data, err := saltio.ReadInput(nodesFile, s.Stdin)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	plan, err := cluster.ParseNodeList(data)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	if err := nodes.CheckPlan(plan); err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	if ifReady {
		if code, skipped := skipUnlessAPIReady(s, &c, kubeconfig); skipped {
			return code
		}
	}
	cfg, err := nodes.LoadKubeconfig(kubeconfig)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := nodes.NewClient(cfg, timeout)
	list, err := client.ListNodes(ctx)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	have, err := nodes.ParseNodeCIDRs(list)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	rep, err := nodes.ComparePodCIDRs(plan, have)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	client.SetPodCIDRs(ctx, rep, c.Test)
	return emitCIDRReport(s, &c, rep, have)
}

func emitCIDRReport(s *streams, c *common, rep *nodes.CIDRReport, have map[string][]string) int {
	changes := map[string]any{}
	for _, a := range rep.Set {
		changes[a.Node] = map[string]any{"old": have[a.Node], "new": a.PodCIDRs}
	}
	verb := "set"
	if c.Test {
		verb = "would be set"
	}
	parts := []string{fmt.Sprintf("%d %s", len(rep.Set), verb), fmt.Sprintf("%d unchanged", len(rep.Unchanged))}
	if len(rep.Waiting) > 0 {
		parts = append(parts, fmt.Sprintf("%d not registered yet (%s; the next run sets them)", len(rep.Waiting), strings.Join(rep.Waiting, ", ")))
	}
	if len(rep.Unplanned) > 0 {
		parts = append(parts, fmt.Sprintf("%d without a planned CIDR (%s)", len(rep.Unplanned), strings.Join(rep.Unplanned, ", ")))
	}
	for _, m := range rep.Mismatches {
		parts = append(parts, fmt.Sprintf("%s has %s, the plan says %s, left alone: %s", m.Node, strings.Join(m.Have, ","), join(m.Want), m.Fix))
	}
	for _, f := range rep.Failed {
		parts = append(parts, fmt.Sprintf("%s: the API refused the patch: %s", f.Node, f.Error))
	}
	res := saltio.Result{
		Result:  saltio.Outcome(c.Test, rep.Changed(), rep.Problems()),
		Changes: changes,
		Comment: "Node.spec.podCIDRs: " + strings.Join(parts, "; "),
		Data:    rep,
	}
	return emit(s, c, res, func(w io.Writer) {
		row(w, "NODE", "ACTION", "POD CIDRS", "DETAIL")
		for _, a := range rep.Set {
			row(w, a.Node, verb, join(a.PodCIDRs), "")
		}
		for _, n := range rep.Unchanged {
			row(w, n, "unchanged", strings.Join(have[n], ","), "")
		}
		for _, n := range rep.Waiting {
			row(w, n, "waiting", "", "not registered yet")
		}
		for _, m := range rep.Mismatches {
			row(w, m.Node, "MISMATCH", strings.Join(m.Have, ","), "plan: "+join(m.Want))
		}
		for _, f := range rep.Failed {
			row(w, f.Node, "FAILED", "", f.Error)
		}
	})
}
