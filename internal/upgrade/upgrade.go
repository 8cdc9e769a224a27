// Package upgrade decides a Kubernetes upgrade of the cluster: whether it
// may start (Kubernetes' version skew policy, every node reachable, etcd
// healthy) and its order (an etcd snapshot, the masters one at a time, then
// the workers in batches), skipping the nodes already at the target, so a
// second run continues where the first stopped. It is pure: what each node
// runs comes from Salt (`kubesalt upgrade node` on every node).
package upgrade

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Version is a Kubernetes release, vMAJOR.MINOR.PATCH.
type Version struct{ Major, Minor, Patch int }

// ParseVersion reads "v1.36.3" (a build suffix such as "-rc.1" or "+abc"
// is ignored: the skew policy speaks of minors).
func ParseVersion(s string) (Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(t, "-+"); i >= 0 {
		t = t[:i]
	}
	parts := strings.Split(t, ".")
	if len(parts) != 3 || !strings.HasPrefix(strings.TrimSpace(s), "v") {
		return Version{}, fmt.Errorf("%q is not a Kubernetes version; give one as v1.36.3", s)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return Version{}, fmt.Errorf("%q is not a Kubernetes version; give one as v1.36.3", s)
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2]}, nil
}

func (v Version) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Compare is -1, 0 or 1 as v is older than, equal to or newer than o.
func (v Version) Compare(o Version) int {
	for _, d := range [3]int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		if d != 0 {
			if d < 0 {
				return -1
			}
			return 1
		}
	}
	return 0
}

// minors is how many minor releases o is ahead of v (same major only).
func (v Version) minors(o Version) int { return o.Minor - v.Minor }

func (v Version) minor() string { return fmt.Sprintf("v%d.%d", v.Major, v.Minor) }

// Roles of the cluster definition.
const (
	RoleMaster = "master"
	RoleWorker = "worker"
)

// KubeletMaxSkew is how many minors a kubelet (and kube-proxy) may be
// older than kube-apiserver (Kubernetes' version skew policy since v1.28).
const KubeletMaxSkew = 3

// Node is what one node runs, as Salt found it.
type Node struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Version is the oldest version its Kubernetes components run (the API
	// server on a master; the kubelet and kube-proxy on a worker); empty
	// when it could not be read.
	Version string `json:"version"`
	// Reachable: its minion answered.
	Reachable bool `json:"reachable"`
	// EtcdHealthy: a master's etcd member answers its health check.
	EtcdHealthy *bool `json:"etcd_healthy,omitempty"`
	// Problem: why its version or health could not be read.
	Problem string `json:"problem,omitempty"`
}

// Input is what the plan is made of.
type Input struct {
	Target      string `json:"target"`
	WorkerBatch int    `json:"worker_batch"`
	Nodes       []Node `json:"nodes"`
}

// Step kinds, in the order they run.
const (
	StepSnapshot = "snapshot"
	StepMaster   = "master"
	StepWorkers  = "workers"
)

// Step is one step of the upgrade: an etcd snapshot, one master, or one
// batch of workers.
type Step struct {
	Kind  string   `json:"kind"`
	Nodes []string `json:"nodes"`
	// Name is how the orchestration and people call it: "master master-1",
	// "workers 2/3 (worker-2, worker-3)".
	Name string `json:"name"`
}

// Plan is the upgrade's order.
type Plan struct {
	Target string `json:"target"`
	// From is every version the nodes run now, oldest first.
	From []string `json:"from"`
	// Done: the nodes already at the target (skipped).
	Done []string `json:"done"`
	// Unknown: nodes whose version is not known (not answering, not
	// started), when nothing else needs upgrading.
	Unknown []string `json:"unknown"`
	// Coordinator: the master that takes the snapshot and drains and
	// uncordons the workers (the first by name).
	Coordinator string `json:"coordinator"`
	Steps       []Step `json:"steps"`
}

// Refusal is an upgrade the skew policy or the cluster's state forbids:
// nothing may start. Its message names the versions and the way forward.
type Refusal struct{ Reasons []string }

func (r *Refusal) Error() string {
	return "upgrade refused: " + strings.Join(r.Reasons, "; ")
}

// Validate checks the input's shape: a bad one is bad input, not a refusal.
func (in Input) Validate() error {
	if _, err := ParseVersion(in.Target); err != nil {
		return fmt.Errorf("target: %v", err)
	}
	if in.WorkerBatch < 1 {
		return fmt.Errorf("worker_batch %d: give 1 or more (upgrade:worker_batch, the workers upgraded at once)", in.WorkerBatch)
	}
	if len(in.Nodes) == 0 {
		return errors.New("nodes: empty; give every node of the cluster (name, role, version, reachable)")
	}
	seen := map[string]bool{}
	masters := 0
	for i, n := range in.Nodes {
		switch {
		case n.Name == "":
			return fmt.Errorf("nodes[%d]: no name", i)
		case seen[n.Name]:
			return fmt.Errorf("nodes[%d]: %s twice; give each node once", i, n.Name)
		case n.Role != RoleMaster && n.Role != RoleWorker:
			return fmt.Errorf("nodes[%d] (%s): role %q; give master or worker", i, n.Name, n.Role)
		}
		seen[n.Name] = true
		if n.Role == RoleMaster {
			masters++
		}
	}
	if masters == 0 {
		return errors.New("nodes: no master; the control plane is upgraded first, so the cluster needs its masters listed")
	}
	return nil
}

// Decide checks the input, refuses what the skew policy or the cluster's
// state forbids (a *Refusal), and returns the plan.
func Decide(in Input) (*Plan, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	target, _ := ParseVersion(in.Target)
	nodes := append([]Node(nil), in.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })

	// What each node runs; the nodes whose version is not known (no
	// answer, components not running yet) are kept apart.
	versions := map[string]Version{}
	var unknown []Node
	work := false
	for _, n := range nodes {
		v, err := ParseVersion(n.Version)
		if !n.Reachable || err != nil {
			unknown = append(unknown, n)
			continue
		}
		versions[n.Name] = v
		work = work || v.Compare(target) != 0
	}
	// Nothing that answered is behind: nothing to upgrade (pillar_changed
	// runs this on every change; a node that is down or not built yet
	// takes the pillar's version at its next highstate).
	if !work {
		return plan(nodes, versions, unknown, target, in.WorkerBatch), nil
	}

	var reasons []string
	for _, n := range unknown {
		if !n.Reachable {
			reasons = append(reasons, fmt.Sprintf("%s (%s) does not answer: bring its minion back (or remove it from the pillar) before upgrading", n.Name, n.Role))
		} else {
			reasons = append(reasons, fmt.Sprintf("%s (%s): its running version is unknown%s: start its components (highstate) before upgrading", n.Name, n.Role, detail(n.Problem)))
		}
	}
	for _, n := range nodes {
		if n.Reachable && n.Role == RoleMaster && (n.EtcdHealthy == nil || !*n.EtcdHealthy) {
			reasons = append(reasons, fmt.Sprintf("etcd on %s is not healthy%s: an upgrade restarts one master at a time and needs every member healthy first", n.Name, detail(n.Problem)))
		}
	}

	// The control plane's version is its oldest API server: the workers may
	// not be newer, and the target may be at most one minor ahead of it.
	var cp *Node
	var cpV Version
	for i, n := range nodes {
		v, ok := versions[n.Name]
		if n.Role == RoleMaster && ok && (cp == nil || v.Compare(cpV) < 0) {
			cp, cpV = &nodes[i], v
		}
	}
	for _, n := range nodes {
		v, ok := versions[n.Name]
		if !ok {
			continue
		}
		switch {
		case v.Major != target.Major:
			reasons = append(reasons, fmt.Sprintf("%s runs %s and the target is %s: this upgrade moves within one major version only", n.Name, v, target))
		case v.Compare(target) > 0:
			reasons = append(reasons, fmt.Sprintf("%s runs %s, newer than the target %s: Kubernetes does not support downgrades; keep %s or newer (set versions:kubernetes to %s), or rebuild from an etcd snapshot taken before the upgrade", n.Name, v, target, v, v))
		case cp != nil && n.Role == RoleWorker && v.Compare(cpV) > 0:
			reasons = append(reasons, fmt.Sprintf("worker %s runs %s, newer than the control plane (%s runs %s): a kubelet must not be newer than kube-apiserver; upgrade the masters to %s or newer first", n.Name, v, cp.Name, cpV, v))
		case n.Role == RoleWorker && v.minors(target) > KubeletMaxSkew && v.Major == target.Major:
			reasons = append(reasons, fmt.Sprintf("worker %s runs %s, %d minors behind the target %s (a kubelet may be at most %d behind kube-apiserver): upgrade its kubelet and kube-proxy to %s or newer first", n.Name, v, v.minors(target), target, KubeletMaxSkew, Version{target.Major, target.Minor - KubeletMaxSkew, 0}.minor()))
		}
	}
	if cp != nil && cpV.Major == target.Major {
		for _, n := range nodes {
			v, ok := versions[n.Name]
			if ok && n.Role == RoleMaster && cpV.minors(v) > 1 {
				reasons = append(reasons, fmt.Sprintf("the masters are more than one minor apart (%s runs %s, %s runs %s): bring %s to %s first", cp.Name, cpV, n.Name, v, cp.Name, v.minor()))
			}
		}
		if d := cpV.minors(target); d > 1 {
			reasons = append(reasons, fmt.Sprintf("the control plane runs %s (%s) and the target %s skips %s: Kubernetes upgrades one minor at a time; upgrade to %s.x first, then to %s", cpV, cp.Name, target, skipped(cpV, target), Version{cpV.Major, cpV.Minor + 1, 0}.minor(), target))
		}
	}
	if len(reasons) > 0 {
		return nil, &Refusal{Reasons: reasons}
	}
	return plan(nodes, versions, nil, target, in.WorkerBatch), nil
}

func detail(problem string) string {
	if problem == "" {
		return ""
	}
	return " (" + problem + ")"
}

// skipped names the minors between from and to: "v1.35" or "v1.34 and v1.35".
func skipped(from, to Version) string {
	var s []string
	for m := from.Minor + 1; m < to.Minor; m++ {
		s = append(s, Version{from.Major, m, 0}.minor())
	}
	if len(s) <= 2 {
		return strings.Join(s, " and ")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// plan orders what is left: nodes sorted by name; a snapshot first when
// anything changes; each master not at the target alone; the workers not
// at the target in batches of batch. The nodes of unknown are left out.
func plan(nodes []Node, versions map[string]Version, unknown []Node, target Version, batch int) *Plan {
	p := &Plan{Target: target.String(), From: []string{}, Done: []string{}, Unknown: []string{}, Steps: []Step{}}
	for _, n := range unknown {
		p.Unknown = append(p.Unknown, n.Name)
	}
	from := map[Version]bool{}
	var masters, workers []string
	for _, n := range nodes {
		v, ok := versions[n.Name]
		if !ok {
			continue
		}
		if n.Role == RoleMaster && p.Coordinator == "" {
			p.Coordinator = n.Name
		}
		from[v] = true
		switch {
		case v.Compare(target) == 0:
			p.Done = append(p.Done, n.Name)
		case n.Role == RoleMaster:
			masters = append(masters, n.Name)
		default:
			workers = append(workers, n.Name)
		}
	}
	var fv []Version
	for v := range from {
		fv = append(fv, v)
	}
	sort.Slice(fv, func(i, j int) bool { return fv[i].Compare(fv[j]) < 0 })
	for _, v := range fv {
		p.From = append(p.From, v.String())
	}
	if len(masters)+len(workers) == 0 {
		return p
	}
	p.Steps = append(p.Steps, Step{Kind: StepSnapshot, Nodes: []string{}, Name: "etcd snapshot"})
	for _, m := range masters {
		p.Steps = append(p.Steps, Step{Kind: StepMaster, Nodes: []string{m}, Name: "master " + m})
	}
	total := (len(workers) + batch - 1) / batch
	for i := 0; i < len(workers); i += batch {
		b := workers[i:min(i+batch, len(workers))]
		p.Steps = append(p.Steps, Step{Kind: StepWorkers, Nodes: b,
			Name: fmt.Sprintf("workers %d/%d (%s)", i/batch+1, total, strings.Join(b, ", "))})
	}
	return p
}

// Summary says in one line what the plan does.
func (p *Plan) Summary() string {
	if len(p.Steps) == 0 && len(p.Unknown) > 0 {
		return fmt.Sprintf("every node that answered runs %s: nothing to upgrade; not known: %s (each takes the pillar's version at its next highstate)", p.Target, strings.Join(p.Unknown, ", "))
	}
	if len(p.Steps) == 0 {
		return fmt.Sprintf("every node runs %s: nothing to upgrade", p.Target)
	}
	var m, w, wb int
	for _, s := range p.Steps {
		switch s.Kind {
		case StepMaster:
			m++
		case StepWorkers:
			wb++
			w += len(s.Nodes)
		}
	}
	return fmt.Sprintf("upgrade from %s to %s: etcd snapshot, %d master(s) one at a time, %d worker(s) in %d batch(es); %d node(s) already done",
		strings.Join(p.From, ", "), p.Target, m, w, wb, len(p.Done))
}
