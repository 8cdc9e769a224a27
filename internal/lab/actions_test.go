package lab

import (
	"strings"
	"testing"
	"time"
)

// testLab is a lab that was never up: enough to build its action lists,
// which must run nothing while they are built.
func testLab(opt Options, nodes []Node) *Lab {
	return &Lab{Dir: "/nonexistent/lab", Repo: "/nonexistent/repo", st: &State{ID: "ksl0000", Options: opt, Nodes: nodes}}
}

func names(acts []action) string {
	var out []string
	for _, a := range acts {
		if a.run == nil {
			out = append(out, "NO WORK: "+a.name)
		}
		out = append(out, a.name)
	}
	return strings.Join(out, "\n")
}

// want checks that list has the phases starting with each of present, in
// that order, and none starting with any of absent.
func wantPhases(t *testing.T, what, list string, present, absent []string) {
	t.Helper()
	if strings.Contains(list, "NO WORK") {
		t.Errorf("%s: an action without work:\n%s", what, list)
	}
	rest := list
	for _, p := range present {
		i := strings.Index(rest, p)
		if i < 0 {
			t.Errorf("%s: no phase %q after the ones before it in:\n%s", what, p, list)
			continue
		}
		rest = rest[i+len(p):]
	}
	for _, p := range absent {
		if strings.Contains(list, p) {
			t.Errorf("%s: has phase %q, which it must not:\n%s", what, p, list)
		}
	}
}

func TestActionsFromOptions(t *testing.T) {
	plain := testLab(Options{}, SmallNodes(1, 2))
	k8s := testLab(Options{K8S: true, Mode: ModePlanned}, SmallNodes(3, 2))
	controller := testLab(Options{K8S: true, Mode: ModeController}, SmallNodes(1, 2))
	var rep Report
	var took time.Duration

	wantPhases(t, "up", names(plain.upActions(plain.st.Nodes)),
		[]string{"network: 3 node namespaces", "binaries the formula installs", "salt-master", "salt-minions: 3"},
		[]string{"Kubernetes:"})
	wantPhases(t, "up K8S", names(k8s.upActions(k8s.st.Nodes)),
		[]string{"network: 5 node namespaces", "binaries the formula installs", "Kubernetes: its components", "salt-master", "salt-minions: 5"}, nil)

	for _, l := range []*Lab{plain, k8s} {
		wantPhases(t, "converge", names(l.convergeActions()),
			[]string{"bootstrap: salt-run state.orchestrate", "salt '*' state.apply kubernetes", "again: nothing changes"}, nil)
	}

	wantPhases(t, "show", names(plain.showActions(&rep)),
		[]string{"pod CIDRs and routes (ip route show proto 201", "pods: one on every worker", "etcd:", "kubesalt status"},
		[]string{"Kubernetes:", "Deployment", "Service"})
	wantPhases(t, "show K8S", names(k8s.showActions(&rep)),
		[]string{"Kubernetes: every master's API server ready", "Ready node with the plan's pod CIDR", "pod CIDRs and routes",
			"Deployment kubesalt-smoke", "pods: each in its node's pod CIDR", "Service:", "etcd:", "kubesalt status"},
		[]string{"pods: one on every worker"})
	wantPhases(t, "show controller mode", names(controller.showActions(&rep)),
		[]string{"Ready node with the controller manager's pod CIDR"}, []string{"the plan's"})

	w := plain.nextWorker()
	if w.Name != "worker-2" {
		t.Errorf("next worker %s, want worker-2", w.Name)
	}
	wantPhases(t, "add-node", names(plain.addNodeActions(w, &took)),
		[]string{"add worker-2 (192.168.170.22)", "routes: every node routes"}, []string{"Kubernetes:"})
	wantPhases(t, "add-node K8S", names(k8s.addNodeActions(w, &took)),
		[]string{"add worker-2", "routes: every node routes", "Kubernetes: worker-2 a Ready node"}, nil)
	// A master added: it joins etcd and every load balancer.
	wantPhases(t, "add-node master", names(k8s.addNodeActions(masterNode(3), &took)),
		[]string{"add master-3 (192.168.170.13)", "routes: every node routes", "master-3 in etcd's members, every haproxy"},
		[]string{"a Ready node"})
	w1, m2 := workerNode(1), masterNode(2)
	wantPhases(t, "remove-node", names(plain.removeNodeActions(w1, &took)),
		[]string{"remove worker-1", "routes: every node's route to worker-1 gone", "worker-1: its minion, namespaces and key removed"},
		[]string{"kubectl delete node", "kubectl drain"})
	// A worker is drained before it leaves.
	wantPhases(t, "remove-node K8S", names(k8s.removeNodeActions(w1, &took)),
		[]string{"Kubernetes: kubectl drain worker-1", "remove worker-1", "routes:", "kubectl delete node worker-1", "worker-1: its minion"}, nil)
	// A master is stopped first (a dead machine), then left everywhere.
	wantPhases(t, "remove-node master", names(k8s.removeNodeActions(m2, &took)),
		[]string{"master-2 stopped", "remove master-2", "routes:", "master-2 gone from etcd's members, every haproxy"},
		[]string{"kubectl drain", "kubectl delete node"})
}

// A failed action stops the command: later actions do not run, and the
// error names the phase.
func TestRunActionsStopsAtTheFirstFailure(t *testing.T) {
	var out strings.Builder
	l := &Lab{Out: &out, st: &State{}}
	var ran []string
	step := func(name string, err error) action {
		return action{name, func() error { ran = append(ran, name); return err }}
	}
	err := l.runActions([]action{step("one", nil), step("two", errTest), step("three", nil)})
	if err == nil || err.Error() != "two: broken" || strings.Join(ran, ",") != "one,two" {
		t.Fatalf("ran %v, err %v: want one and two run and the error named after two", ran, err)
	}
	if len(l.Phases) != 1 || l.Phases[0].Name != "one" || !strings.Contains(out.String(), "==> two") {
		t.Errorf("phases %+v, output:\n%s", l.Phases, out.String())
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("broken")
