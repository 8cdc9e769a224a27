package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/cidr"
	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/kubesalt/kubesalt/internal/status"
)

const defaultStatusDB = "/var/lib/kubesalt/status.db"

func runStatusRecord(s *streams, args []string) int {
	var c common
	var db string
	fs := newFlags(s, "status record", &c)
	fs.StringVar(&db, "db", defaultStatusDB, "the status store (bbolt file)")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	in, err := io.ReadAll(s.Stdin)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	returns, err := parseJobReturns(in)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	// Validate every return before writing any.
	now := time.Now()
	var facts []status.Facts
	var ignored []string
	for _, jr := range returns {
		f, err := status.Extract(jr, now)
		if err != nil {
			return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
		}
		if !status.Relevant(jr.Fun) {
			ignored = append(ignored, jr.ID+" "+jr.Fun)
			continue
		}
		facts = append(facts, f)
	}
	recorded := map[string]any{}
	for _, f := range facts {
		recorded[f.Minion] = summarize(f)
	}
	if !c.Test && len(facts) > 0 {
		st, err := status.Open(db)
		if err != nil {
			return saltio.Fail(s.Stdout, s.Stderr, err)
		}
		defer st.Close()
		for _, f := range facts {
			if err := st.Apply(f); err != nil {
				return saltio.Fail(s.Stdout, s.Stderr, fmt.Errorf("recording the return of %s: %w", f.Minion, err))
			}
		}
	}
	changes := map[string]any{}
	if len(recorded) > 0 {
		changes["recorded"] = recorded
	}
	verb := "recorded"
	if c.Test {
		verb = "would record"
	}
	comment := fmt.Sprintf("%s %d job return(s) in %s", verb, len(facts), db)
	if len(ignored) > 0 {
		comment += fmt.Sprintf("; ignored %d that kubesalt does not track (%s)", len(ignored), strings.Join(ignored, ", "))
	}
	res := saltio.Result{Result: saltio.Outcome(c.Test, len(facts) > 0, false), Changes: changes, Comment: comment}
	return emit(s, &c, res, nil)
}

// parseJobReturns accepts one job return or a list of them (event_return
// hands the returner a batch).
func parseJobReturns(in []byte) ([]status.JobReturn, error) {
	in = bytes.TrimSpace(in)
	hint := "give one Salt job return ({\"id\", \"fun\", \"jid\", \"return\", ...}) on standard input"
	if len(in) == 0 {
		return nil, fmt.Errorf("no input; %s", hint)
	}
	var list []status.JobReturn
	if in[0] == '[' {
		if err := json.Unmarshal(in, &list); err != nil {
			return nil, fmt.Errorf("job returns: not valid JSON (%v); %s", err, hint)
		}
		return list, nil
	}
	var one status.JobReturn
	if err := json.Unmarshal(in, &one); err != nil {
		return nil, fmt.Errorf("job return: not valid JSON (%v); %s", err, hint)
	}
	return []status.JobReturn{one}, nil
}

func summarize(f status.Facts) map[string]any {
	out := map[string]any{"fun": f.Fun, "at": f.At}
	if f.Routes != nil {
		out["routes"] = fmt.Sprintf("%d desired, %d added, %d replaced, %d removed, %d failed, %d conflicts",
			f.Routes.Desired, f.Routes.Added, f.Routes.Replaced, f.Routes.Removed, len(f.Routes.Failed), len(f.Routes.Conflicts))
	}
	if f.PodCIDRs != nil {
		out["pod_cidrs"] = f.PodCIDRs
	}
	if len(f.Certificates) > 0 {
		out["certificates"] = len(f.Certificates)
	}
	if len(f.VMs) > 0 || len(f.VMsRemoved) > 0 {
		vms := map[string]string{}
		for _, vm := range f.VMs {
			vms[vm.Name] = vm.State
		}
		for _, n := range f.VMsRemoved {
			vms[n] = "removed"
		}
		out["vms"] = vms
	}
	return out
}

func runStatusShow(s *streams, args []string) int {
	var c common
	var db, defFile, planFile, discoveredFile string
	var expiring int
	var staleAfter time.Duration
	fs := newFlags(s, "status show", &c)
	fs.StringVar(&db, "db", defaultStatusDB, "the status store (bbolt file)")
	fs.StringVar(&defFile, "definition", "", "cluster definition (YAML or JSON; - for stdin): every node, its role and IPs")
	fs.StringVar(&planFile, "plan", "", "the pod CIDR plan file of `kubesalt cidr plan`")
	fs.StringVar(&discoveredFile, "discovered", "", "controller mode: the pod CIDRs as `kubesalt nodes discover` prints them (- for stdin), instead of the plan")
	fs.IntVar(&expiring, "expiring-days", status.DefaultExpiringDays, "a certificate with at most this many days left is expiring")
	fs.DurationVar(&staleAfter, "stale-after", -1, "flag a node without a successful state run for this long (default: two kubernetes:reconcile:interval of the definition, 2h without one; 0: never)")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	nodes, planChanged, discovered, def, err := clusterNodes(s, defFile, planFile, discoveredFile)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	if staleAfter < 0 {
		// Two intervals of the formula's periodic state run: one missed
		// run (or its splay) is no alarm.
		rec := cluster.Reconcile{Enabled: true, Interval: cluster.DefaultReconcileInterval}
		if def != nil {
			rec = def.Reconcile
		}
		staleAfter = 0
		if rec.Enabled {
			staleAfter = 2 * rec.Interval
		}
	}
	snap, err := readStore(db)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	v := status.Show(snap, nodes, planChanged, expiring, discovered, time.Now())
	status.MarkStale(&v, time.Now(), staleAfter)
	sum := v.Summary
	comment := fmt.Sprintf("%d nodes: %d with routes converged, %d not reported since the plan changed, %d certificates expiring within %d days",
		sum.Nodes, sum.Converged, sum.NotReported, sum.CertificatesExpiring, expiring)
	if staleAfter > 0 {
		comment += fmt.Sprintf(", %d stale (no successful state run within %s)", sum.Stale, staleAfter)
	}
	if sum.CertificateProblems > 0 {
		var names []string
		for _, c := range v.CertificateProblems {
			names = append(names, c.Name+" "+c.Problem)
		}
		comment += fmt.Sprintf("; %d certificates need attention (%s): %s", sum.CertificateProblems, strings.Join(names, "; "), v.CertificateProblems[0].Fix)
	}
	res := saltio.Result{Result: saltio.Bool(true), Comment: comment, Data: v}
	return emit(s, &c, res, func(w io.Writer) {
		row(w, "NODE", "ROLE", "IPS", "POD CIDRS", "LAST RUN", "LAST GOOD RUN", "ROUTES", "VM", "CERT DAYS")
		for _, n := range v.Nodes {
			last := "never"
			if n.LastRun != nil {
				last = n.LastRun.Format(time.RFC3339)
				if !n.ReportedSincePlan {
					last += " (before plan)"
				}
			}
			routes := "converged"
			if !n.Routes.Converged {
				routes = "NO: " + n.Routes.Why
			}
			days := "-"
			if len(n.Certificates) > 0 {
				days = fmt.Sprint(n.Certificates[0].DaysLeft)
			}
			good := "never"
			if n.LastGoodRun != nil {
				good = n.LastGoodRun.Format(time.RFC3339)
			}
			if n.Stale {
				good += " STALE"
			}
			row(w, n.Name, orNone(n.Role), orNone(strings.Join(n.IPs, ",")), orNone(strings.Join(n.PodCIDRs, ",")),
				last, good, routes, orNone(n.VMState), days)
		}
		for _, m := range v.OtherMinions {
			row(w, m.ID, "(minion)", "-", "-", m.LastRun.Format(time.RFC3339), "-", "-", "-", "-")
		}
		for _, cert := range v.CertificatesExpiring {
			row(w, "cert "+cert.Name, "expiring", "-", "-", cert.NotAfter.Format(time.RFC3339), "-", "-", "-", cert.DaysLeft)
		}
		for _, cert := range v.CertificateProblems {
			row(w, "cert "+cert.Name, "PROBLEM", "-", "-", cert.NotAfter.Format(time.RFC3339), "-", cert.Problem, "-", cert.DaysLeft)
		}
	})
}

// status add-needed: the minion-start reactor's question, answered from
// the store without an orchestration (one per minion when many start).
func runStatusAddNeeded(s *streams, args []string) int {
	var c common
	var db, defFile, planFile, discoveredFile, node string
	fs := newFlags(s, "status add-needed", &c)
	fs.StringVar(&node, "node", "", "the node's name or its minion id")
	fs.StringVar(&db, "db", defaultStatusDB, "the status store (bbolt file)")
	fs.StringVar(&defFile, "definition", "", "cluster definition (YAML or JSON; - for stdin): every node, its role and IPs")
	fs.StringVar(&planFile, "plan", "", "the pod CIDR plan file of `kubesalt cidr plan`")
	fs.StringVar(&discoveredFile, "discovered", "", "controller mode: the pod CIDRs as `kubesalt nodes discover` prints them (- for stdin), instead of the plan")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	if node == "" {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--node is required: the node's name or minion id, e.g. worker-3"))
	}
	nodes, planChanged, discovered, _, err := clusterNodes(s, defFile, planFile, discoveredFile)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	snap, err := readStore(db)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	v := status.Show(snap, nodes, planChanged, status.DefaultExpiringDays, discovered, time.Now())
	needed, why := status.AddNeeded(v, node)
	res := saltio.Result{Result: saltio.Bool(true), Comment: why, Data: map[string]any{"node": node, "add_needed": needed, "why": why}}
	return emit(s, &c, res, func(w io.Writer) {
		row(w, "NODE", "ADD NEEDED", "WHY")
		row(w, node, needed, why)
	})
}

// readStore reads the status store at db, opened read-only.
func readStore(db string) (status.Snapshot, error) {
	st, err := status.OpenReadOnly(db)
	if err != nil {
		return status.Snapshot{}, err
	}
	defer st.Close()
	return st.Read()
}

// clusterNodes reads the node list from the definition and the plan, and
// when the plan last changed (the planner rewrites the file only then). In
// controller mode the pod CIDRs are the discovered ones (discovered), or
// none when not given: the plan is not the cluster's.
func clusterNodes(s *streams, defFile, planFile, discoveredFile string) (nodes []cluster.Member, changed time.Time, discovered bool, def *cluster.Definition, err error) {
	if defFile != "" {
		if def, err = loadDefinition(s, defFile); err != nil {
			return nil, changed, false, nil, err
		}
	}
	var cidrs map[string][]netip.Prefix
	switch {
	case discoveredFile != "":
		data, err := saltio.ReadInput(discoveredFile, s.Stdin)
		if err != nil {
			return nil, changed, false, nil, saltio.BadInputf("--discovered %s: %v", discoveredFile, err)
		}
		found, err := cluster.ParseNodeList(data)
		if err != nil {
			return nil, changed, false, nil, saltio.BadInputf("--discovered %s: %v", discoveredFile, err)
		}
		cidrs = map[string][]netip.Prefix{}
		for _, n := range found {
			cidrs[n.Name] = n.PodCIDRs
		}
		discovered = true
	case def != nil && def.Mode == cluster.ModeController:
		discovered = true // nothing discovered given: no CIDRs to compare
	default:
		// A plan file not written yet is no plan: the definition's pins stand.
		if fi, statErr := os.Stat(planFile); planFile != "" && statErr == nil {
			plan, err := cidr.ReadPlan(planFile)
			if err != nil {
				return nil, changed, false, nil, saltio.BadInput(err)
			}
			cidrs, changed = plan.Nodes, fi.ModTime()
		}
	}
	if def == nil {
		for name, p := range cidrs {
			nodes = append(nodes, cluster.Member{Name: name, PodCIDRs: p})
		}
		sortMembers(nodes)
		return nodes, changed, discovered, nil, nil
	}
	if cidrs == nil {
		cidrs = map[string][]netip.Prefix{}
		if !discovered {
			for _, n := range def.Nodes {
				cidrs[n.Name] = n.Pods
			}
		}
	}
	return def.Members(cidrs), changed, discovered, def, nil
}

func sortMembers(ms []cluster.Member) {
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
