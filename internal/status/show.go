package status

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// DefaultExpiringDays is when a certificate counts as expiring: the PKI's
// default renew_before window (720h).
const DefaultExpiringDays = 30

// View is the cluster at a glance.
type View struct {
	// PlanChanged is when the pod CIDR plan last changed (nil: no plan).
	PlanChanged *time.Time `json:"plan_changed,omitempty"`
	Nodes       []NodeView `json:"nodes"`
	// OtherMinions reported but are no node of the cluster (the master,
	// the hypervisor).
	OtherMinions         []OtherMinion `json:"other_minions"`
	CertificatesExpiring []Certificate `json:"certificates_expiring"`
	// CertificateProblems: expired (now), or reported with a problem.
	CertificateProblems []Certificate `json:"certificate_problems"`
	Summary             Summary       `json:"summary"`
}

// Summary counts what needs attention.
type Summary struct {
	Nodes                int `json:"nodes"`
	Converged            int `json:"converged"`
	NotReported          int `json:"not_reported_since_plan"`
	CertificatesExpiring int `json:"certificates_expiring"`
	// Stale counts nodes without a successful state run within the
	// staleness limit (MarkStale).
	Stale               int `json:"stale"`
	CertificateProblems int `json:"certificate_problems"`
	// EverRun counts nodes with a successful state run on record; none
	// means the cluster has not been built yet (the bootstrap builds it).
	EverRun int `json:"ever_run"`
}

// FixExpired is the fix of a certificate found expired.
const FixExpired = "renew and distribute: salt-run state.orchestrate orch.kubernetes.rotate"

// NodeView is one node of the cluster with what its minion reported.
type NodeView struct {
	Name     string   `json:"name"`
	Role     string   `json:"role,omitempty"`
	IPs      []string `json:"ips"`
	PodCIDRs []string `json:"pod_cidrs"`
	Minion   string   `json:"minion,omitempty"`
	// LastRun is the minion's last recorded run (nil: never reported).
	LastRun *time.Time `json:"last_run"`
	// LastGoodRun is its last successful state run (nil: none recorded).
	LastGoodRun *time.Time `json:"last_good_run"`
	// Stale: no successful state run within the limit (MarkStale), why.
	Stale    bool   `json:"stale"`
	StaleWhy string `json:"stale_why,omitempty"`
	// ReportedSincePlan: the minion ran after the plan last changed.
	ReportedSincePlan bool `json:"reported_since_plan"`
	// ReportedPodCIDRs is the pod CIDR the minion's pillar gave it.
	ReportedPodCIDRs []string    `json:"reported_pod_cidrs,omitempty"`
	Routes           RoutesView  `json:"routes"`
	VMState          string      `json:"vm_state,omitempty"`
	Certificates     []CertBrief `json:"certificates,omitempty"`
}

// RoutesView says whether the node's routes match the current plan.
type RoutesView struct {
	Converged bool       `json:"converged"`
	Why       string     `json:"why,omitempty"` // why not converged
	Expected  int        `json:"expected"`      // routes the plan needs on this node
	Last      *RouteSync `json:"last,omitempty"`
}

// CertBrief is a certificate that names the node.
type CertBrief struct {
	Name     string    `json:"name"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
}

// OtherMinion is a reporting minion outside the node list.
type OtherMinion struct {
	ID      string    `json:"id"`
	LastRun time.Time `json:"last_run"`
	LastFun string    `json:"last_fun"`
}

// Show joins the store with the cluster's nodes. nodes is the node list
// of the definition and plan (nil: the minions in the store are the
// nodes); planChanged is when the plan last changed (zero: unknown).
// discovered says the nodes' pod CIDRs are the API's (controller mode):
// the CIDR a minion's pillar gave it is then not the cluster's.
// now is the clock a certificate's expiry is judged by.
func Show(snap Snapshot, nodes []cluster.Member, planChanged time.Time, expiringDays int, discovered bool, now time.Time) View {
	v := View{Nodes: []NodeView{}, OtherMinions: []OtherMinion{}, CertificatesExpiring: []Certificate{}, CertificateProblems: []Certificate{}}
	if !planChanged.IsZero() {
		t := planChanged.UTC()
		v.PlanChanged = &t
	}
	if nodes == nil {
		for id, m := range snap.Minions {
			name := id
			if m.Node != "" {
				name = m.Node
			}
			nodes = append(nodes, cluster.Member{Name: name})
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	}

	byNode := minionsByNode(snap.Minions)
	used := map[string]bool{}
	certs := sortedCerts(snap.Certificates)
	for _, n := range nodes {
		nv := NodeView{Name: n.Name, Role: n.Role, IPs: strs(n.IPs), PodCIDRs: strs(n.PodCIDRs)}
		expected := 0
		for _, o := range nodes {
			if o.Name != n.Name {
				expected += len(o.PodCIDRs)
			}
		}
		nv.Routes.Expected = expected
		if m, ok := byNode[n.Name]; ok {
			used[m.ID] = true
			nv.Minion = m.ID
			t := m.LastRun
			nv.LastRun = &t
			nv.ReportedSincePlan = planChanged.IsZero() || !m.LastRun.Before(planChanged)
			if !discovered {
				nv.ReportedPodCIDRs = m.PodCIDRs
			}
			nv.Routes.Last = m.Routes
			nv.LastGoodRun = m.LastGoodRun
		}
		nv.Routes.Converged, nv.Routes.Why = converged(nv, planChanged)
		if vm, ok := snap.VMs[n.Name]; ok {
			nv.VMState = vm.State
		}
		for _, c := range certs {
			if names(c, n.Name) {
				nv.Certificates = append(nv.Certificates, CertBrief{Name: c.Name, NotAfter: c.NotAfter, DaysLeft: c.DaysLeft})
			}
		}
		v.Nodes = append(v.Nodes, nv)
		v.Summary.Nodes++
		if nv.Routes.Converged {
			v.Summary.Converged++
		}
		if !nv.ReportedSincePlan {
			v.Summary.NotReported++
		}
		if nv.LastGoodRun != nil {
			v.Summary.EverRun++
		}
	}
	for _, c := range certs {
		if c.DaysLeft <= expiringDays {
			v.CertificatesExpiring = append(v.CertificatesExpiring, c)
		}
		if !now.IsZero() && !c.NotAfter.After(now) && c.Problem != "expired" {
			c.Problem, c.Fix = fmt.Sprintf("expired (at %s, after %s reported it)", c.NotAfter.Format(time.RFC3339), c.Reporter), FixExpired
		}
		if c.Problem != "" {
			v.CertificateProblems = append(v.CertificateProblems, c)
		}
	}
	v.Summary.CertificatesExpiring = len(v.CertificatesExpiring)
	v.Summary.CertificateProblems = len(v.CertificateProblems)
	for id, m := range snap.Minions {
		if !used[id] {
			v.OtherMinions = append(v.OtherMinions, OtherMinion{ID: id, LastRun: m.LastRun, LastFun: m.LastFun})
		}
	}
	sort.Slice(v.OtherMinions, func(i, j int) bool { return v.OtherMinions[i].ID < v.OtherMinions[j].ID })
	return v
}

// MarkStale flags every node whose last successful state run is older
// than limit at now (two intervals of the formula's periodic state run):
// its drift is not being repaired. limit 0 flags nothing.
func MarkStale(v *View, now time.Time, limit time.Duration) {
	if limit <= 0 {
		return
	}
	for i := range v.Nodes {
		n := &v.Nodes[i]
		switch {
		case n.LastGoodRun == nil && n.LastRun == nil:
			n.Stale, n.StaleWhy = true, "never reported"
		case n.LastGoodRun == nil:
			n.Stale, n.StaleWhy = true, "no successful state run recorded"
		case now.Sub(*n.LastGoodRun) > limit:
			n.Stale = true
			n.StaleWhy = fmt.Sprintf("last successful state run %s ago, more than %s", now.Sub(*n.LastGoodRun).Round(time.Second), limit)
		}
		if n.Stale && n.LastRun != nil && (n.LastGoodRun == nil || n.LastRun.After(*n.LastGoodRun)) {
			n.StaleWhy += fmt.Sprintf("; it last reported at %s", n.LastRun.UTC().Format(time.RFC3339))
		}
		if n.Stale {
			v.Summary.Stale++
		}
	}
}

// converged says whether the node's last applied route sync matches the
// current plan, and if not, why.
func converged(nv NodeView, planChanged time.Time) (bool, string) {
	r := nv.Routes.Last
	switch {
	case nv.LastRun == nil:
		return false, "never reported"
	case r == nil:
		return false, "no route sync recorded"
	case r.Result == nil || !*r.Result:
		return false, "last route sync failed"
	case len(r.Failed) > 0:
		return false, fmt.Sprintf("%d routes failed", len(r.Failed))
	case len(r.Conflicts) > 0:
		return false, fmt.Sprintf("%d routes conflict with foreign routes", len(r.Conflicts))
	case !planChanged.IsZero() && r.At.Before(planChanged):
		return false, "routes synced before the plan changed"
	case nv.ReportedPodCIDRs != nil && len(nv.PodCIDRs) > 0 && !sameSet(nv.ReportedPodCIDRs, nv.PodCIDRs):
		return false, fmt.Sprintf("its pillar gave pod CIDR %s, the plan says %s; refresh its pillar",
			strings.Join(nv.ReportedPodCIDRs, ","), strings.Join(nv.PodCIDRs, ","))
	case r.Desired != nv.Routes.Expected && len(nv.PodCIDRs) > 0:
		return false, fmt.Sprintf("synced %d routes, the plan needs %d", r.Desired, nv.Routes.Expected)
	}
	return true, ""
}

// minionsByNode indexes minions by the node they said they are, else by
// their id, else by the first label of their id (worker-0.example.org).
func minionsByNode(ms map[string]Minion) map[string]Minion {
	out := map[string]Minion{}
	ids := make([]string, 0, len(ms))
	for id := range ms {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for pass := 0; pass < 3; pass++ {
		for _, id := range ids {
			m := ms[id]
			key := ""
			switch pass {
			case 0:
				key = m.Node
			case 1:
				key = id
			case 2:
				key, _, _ = strings.Cut(id, ".")
			}
			if _, taken := out[key]; key != "" && !taken {
				out[key] = m
			}
		}
	}
	return out
}

// names says whether certificate c belongs to node: its name, subject or
// SANs name the node.
func names(c Certificate, node string) bool {
	if c.Name == node || strings.HasPrefix(c.Name, node+"/") || strings.HasPrefix(c.Name, node+".") ||
		strings.Contains(c.Subject, "system:node:"+node) {
		return true
	}
	for _, s := range c.SANs {
		if s == node {
			return true
		}
	}
	return false
}

func sortedCerts(m map[string]Certificate) []Certificate {
	out := make([]Certificate, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DaysLeft != out[j].DaysLeft {
			return out[i].DaysLeft < out[j].DaysLeft
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

func strs[T fmt.Stringer](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = v.String()
	}
	return out
}
