package upgrade

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func healthy() *bool { b := true; return &b }

// cluster is 3 masters and n workers, every node at v, reachable, etcd healthy.
func cluster(v string, workers int) []Node {
	var ns []Node
	for _, m := range []string{"master-0", "master-1", "master-2"} {
		ns = append(ns, Node{Name: m, Role: RoleMaster, Version: v, Reachable: true, EtcdHealthy: healthy()})
	}
	for i := 0; i < workers; i++ {
		ns = append(ns, Node{Name: "worker-" + string(rune('0'+i)), Role: RoleWorker, Version: v, Reachable: true})
	}
	return ns
}

func set(ns []Node, name string, f func(*Node)) []Node {
	for i := range ns {
		if ns[i].Name == name {
			f(&ns[i])
		}
	}
	return ns
}

func names(steps []Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Name)
	}
	return out
}

func TestPlanOrder(t *testing.T) {
	p, err := Decide(Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: cluster("v1.35.4", 3)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etcd snapshot", "master master-0", "master master-1", "master master-2",
		"workers 1/3 (worker-0)", "workers 2/3 (worker-1)", "workers 3/3 (worker-2)"}
	if got := names(p.Steps); !reflect.DeepEqual(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
	if !reflect.DeepEqual(p.From, []string{"v1.35.4"}) || len(p.Done) != 0 {
		t.Errorf("from %v done %v", p.From, p.Done)
	}
}

func TestPlanBatches(t *testing.T) {
	p, err := Decide(Input{Target: "v1.36.3", WorkerBatch: 2, Nodes: cluster("v1.35.4", 5)})
	if err != nil {
		t.Fatal(err)
	}
	var batches [][]string
	for _, s := range p.Steps {
		if s.Kind == StepWorkers {
			batches = append(batches, s.Nodes)
		}
	}
	want := [][]string{{"worker-0", "worker-1"}, {"worker-2", "worker-3"}, {"worker-4"}}
	if !reflect.DeepEqual(batches, want) {
		t.Errorf("batches %v, want %v", batches, want)
	}
}

// A second run after a stop: the nodes at the target are skipped, the rest
// keep their order; a patch release counts as an upgrade too.
func TestPlanContinues(t *testing.T) {
	ns := cluster("v1.35.4", 3)
	for _, n := range []string{"master-0", "master-1", "master-2", "worker-0"} {
		set(ns, n, func(n *Node) { n.Version = "v1.36.3" })
	}
	p, err := Decide(Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: ns})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etcd snapshot", "workers 1/2 (worker-1)", "workers 2/2 (worker-2)"}
	if got := names(p.Steps); !reflect.DeepEqual(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}
	if !reflect.DeepEqual(p.Done, []string{"master-0", "master-1", "master-2", "worker-0"}) {
		t.Errorf("done %v", p.Done)
	}
	if !reflect.DeepEqual(p.From, []string{"v1.35.4", "v1.36.3"}) {
		t.Errorf("from %v", p.From)
	}

	// A master stopped half way (master-0 done): the others, then every worker.
	ns = set(cluster("v1.35.4", 1), "master-0", func(n *Node) { n.Version = "v1.36.3" })
	p, err = Decide(Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: ns})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"etcd snapshot", "master master-1", "master master-2", "workers 1/1 (worker-0)"}
	if got := names(p.Steps); !reflect.DeepEqual(got, want) {
		t.Errorf("steps %q, want %q", got, want)
	}

	// Patch releases within a minor are an upgrade as well.
	if p, err = Decide(Input{Target: "v1.36.4", WorkerBatch: 1, Nodes: cluster("v1.36.3", 1)}); err != nil || len(p.Steps) != 5 {
		t.Errorf("patch upgrade: %v, %+v", err, p)
	}
}

func TestPlanNothingToDo(t *testing.T) {
	p, err := Decide(Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: cluster("v1.36.3", 2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 0 || len(p.Done) != 5 || !strings.Contains(p.Summary(), "nothing to upgrade") {
		t.Errorf("plan %+v (%s): want no step, every node done", p, p.Summary())
	}
}

// refused asserts Decide refuses with a *Refusal whose message has every want.
func refused(t *testing.T, in Input, want ...string) {
	t.Helper()
	p, err := Decide(in)
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("Decide = %+v, %v; want a refusal", p, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q does not say %q", err, w)
		}
	}
}

func TestRefuseSkippedMinor(t *testing.T) {
	refused(t, Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: cluster("v1.34.2", 1)},
		"control plane runs v1.34.2", "skips v1.35", "upgrade to v1.35.x first, then to v1.36.3")
	// Two minors skipped are both named.
	refused(t, Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: cluster("v1.33.1", 1)}, "skips v1.34 and v1.35")
}

func TestRefuseDowngrade(t *testing.T) {
	refused(t, Input{Target: "v1.35.4", WorkerBatch: 1, Nodes: cluster("v1.36.3", 1)},
		"master-0 runs v1.36.3, newer than the target v1.35.4", "does not support downgrades")
	// A patch downgrade too.
	refused(t, Input{Target: "v1.36.2", WorkerBatch: 1, Nodes: cluster("v1.36.3", 1)}, "downgrades")
}

func TestRefuseWorkerNewerThanControlPlane(t *testing.T) {
	ns := set(cluster("v1.35.4", 2), "worker-1", func(n *Node) { n.Version = "v1.36.3" })
	refused(t, Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: ns},
		"worker worker-1 runs v1.36.3, newer than the control plane (master-0 runs v1.35.4)", "upgrade the masters to v1.36.3 or newer first")
}

func TestRefuseKubeletTooOld(t *testing.T) {
	ns := set(cluster("v1.35.4", 2), "worker-0", func(n *Node) { n.Version = "v1.32.13" })
	refused(t, Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: ns},
		"worker worker-0 runs v1.32.13, 4 minors behind the target v1.36.3", "upgrade its kubelet and kube-proxy to v1.33 or newer first")
}

func TestRefuseUnreachableAndEtcd(t *testing.T) {
	ns := cluster("v1.35.4", 2)
	set(ns, "worker-1", func(n *Node) { n.Reachable = false; n.Version = "" })
	set(ns, "master-2", func(n *Node) { f := false; n.EtcdHealthy = &f; n.Problem = "connection refused" })
	refused(t, Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: ns},
		"worker-1 (worker) does not answer", "etcd on master-2 is not healthy (connection refused)")
	// A reachable node whose version is unknown.
	ns = set(cluster("v1.35.4", 1), "worker-0", func(n *Node) { n.Version = ""; n.Problem = "kubelet: refused" })
	refused(t, Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: ns}, "worker-0 (worker): its running version is unknown (kubelet: refused)")
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		in   Input
		want string
	}{
		{Input{Target: "1.36", WorkerBatch: 1, Nodes: cluster("v1.35.4", 1)}, `target: "1.36" is not a Kubernetes version`},
		{Input{Target: "v1.36.3", WorkerBatch: 0, Nodes: cluster("v1.35.4", 1)}, "worker_batch 0: give 1 or more"},
		{Input{Target: "v1.36.3", WorkerBatch: 1}, "nodes: empty"},
		{Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: []Node{{Name: "worker-0", Role: RoleWorker}}}, "no master"},
		{Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: []Node{{Name: "x", Role: "etcd"}}}, `role "etcd"`},
	} {
		_, err := Decide(tc.in)
		var r *Refusal
		if err == nil || errors.As(err, &r) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decide(%+v) = %v; want bad input saying %q", tc.in, err, tc.want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]Version{"v1.36.3": {1, 36, 3}, "v1.35.0-rc.1": {1, 35, 0}, "v1.32.13+abc": {1, 32, 13}} {
		if v, err := ParseVersion(s); err != nil || v != want {
			t.Errorf("ParseVersion(%q) = %v, %v", s, v, err)
		}
	}
	for _, s := range []string{"", "1.36.3", "v1.36", "v1.x.3"} {
		if _, err := ParseVersion(s); err == nil {
			t.Errorf("ParseVersion(%q): no error", s)
		}
	}
}

// Every node that answers runs the target: nothing to upgrade, and a node
// down or not started yet is no refusal (pillar_changed asks on every
// change; such a node takes the version at its next highstate).
func TestNothingKnownToUpgrade(t *testing.T) {
	ns := cluster("v1.36.3", 2)
	set(ns, "worker-1", func(n *Node) { n.Reachable = false; n.Version = "" })
	ns = append(ns, Node{Name: "worker-9", Role: RoleWorker, Reachable: true, Problem: "kubelet: connection refused"})
	p, err := Decide(Input{Target: "v1.36.3", WorkerBatch: 1, Nodes: ns})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 0 || !reflect.DeepEqual(p.Unknown, []string{"worker-1", "worker-9"}) ||
		!strings.Contains(p.Summary(), "not known: worker-1, worker-9") {
		t.Errorf("plan %+v: %s", p, p.Summary())
	}
	// The coordinator is the first master by name.
	if p.Coordinator != "master-0" {
		t.Errorf("coordinator %q", p.Coordinator)
	}
}
