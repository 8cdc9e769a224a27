package lab

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/saltkey"
)

// nextWorker names the next worker and its address.
func (l *Lab) nextWorker() Node {
	for i := 0; ; i++ {
		if n := workerNode(i); !l.hasNode(n.Name) {
			return n
		}
	}
}

func (l *Lab) hasNode(name string) bool {
	_, ok := l.st.Node(name)
	return ok
}

// nextMaster names the next master (master-0 to master-9) and its address.
func (l *Lab) nextMaster() (Node, error) {
	for i := 0; i < 10; i++ {
		if n := masterNode(i); !l.hasNode(n.Name) {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("the lab has 10 masters, its most")
}

// AddMaster adds a master as AddNode adds a worker: orch.kubernetes.add_node
// gives it certificates, etcd (it joins the running cluster) and the
// control plane, and every other node's load balancer a backend.
func (l *Lab) AddMaster() (Node, time.Duration, error) {
	n, err := l.nextMaster()
	if err != nil {
		return n, 0, err
	}
	var took time.Duration
	err = l.runActions(l.addNodeActions(n, &took))
	return n, took, err
}

// AddNode adds a worker to the lab's pillar and starts its minion; the
// reactor (salt/minion/*/start) and orch.kubernetes.add_node do the rest:
// its CIDR, certificates and routes, and every other node's route to it
// (addNodeActions). It returns how long that took from the minion's start.
func (l *Lab) AddNode() (Node, time.Duration, error) {
	n := l.nextWorker()
	var took time.Duration
	err := l.runActions(l.addNodeActions(n, &took))
	return n, took, err
}

// addNode records n, writes the pillar with it, and starts its namespace
// and minion.
func (l *Lab) addNode(n Node) error {
	if n.Role == RoleMaster {
		// A master added under a removed one's name is a new machine: no
		// etcd data of the member that was removed.
		if err := os.RemoveAll(l.nodeDir(n.Name)); err != nil {
			return err
		}
	}
	l.st.Nodes = append(l.st.Nodes, n)
	if err := l.st.Save(); err != nil {
		return err
	}
	if err := l.writePillar(); err != nil {
		return err
	}
	if err := l.plugIn(l.NodeNS(n.Name), n.IP); err != nil {
		return err
	}
	if err := l.configureMinion(n, l.minionExtra()); err != nil {
		return err
	}
	return l.startMinion(n)
}

// RemoveNode takes a node out of the pillar and tells the master
// (kubesalt/pillar/changed): every other node's route to it goes. A worker
// (K8S) is drained first; then the node's minion, namespace and key go. A
// master is stopped first, as a dead machine, and the orchestration removes
// its etcd member, its backend from every load balancer, its keepalived
// peer and its IP from the API server certificate (removeNodeActions).
func (l *Lab) RemoveNode(name string) (time.Duration, error) {
	n, ok := l.st.Node(name)
	if !ok {
		return 0, fmt.Errorf("%s is not a node of the lab (nodes: %s)", name, strings.Join(l.nodeNames(), ", "))
	}
	if n.Role == RoleMaster && len(l.withRole(RoleMaster)) < 3 {
		return 0, fmt.Errorf("%s: the lab has %d masters; removing one needs 3 or more, so that etcd keeps its quorum without it", name, len(l.withRole(RoleMaster)))
	}
	var took time.Duration
	err := l.runActions(l.removeNodeActions(n, &took))
	return took, err
}

// dropFromPillar takes node name out of the lab and its pillar and tells
// the master.
func (l *Lab) dropFromPillar(name string) error {
	var kept []Node
	for _, m := range l.st.Nodes {
		if m.Name != name {
			kept = append(kept, m)
		}
	}
	l.st.Nodes = kept
	if err := l.st.Save(); err != nil {
		return err
	}
	if err := l.writePillar(); err != nil {
		return err
	}
	_, err := l.SaltRun("event.send", "kubesalt/pillar/changed")
	return err
}

// dropNode removes what node name ran on: its pod, its namespace with its
// minion, its key.
func (l *Lab) dropNode(name string) error {
	pod := l.st.ID + "-pod-" + name
	if l.st.Pods[pod] {
		l.deleteNamespace(pod)
		delete(l.st.Pods, pod)
	}
	if err := l.deleteNamespace(l.NodeNS(name)); err != nil {
		return err
	}
	l.st.Namespaces = without(l.st.Namespaces, l.NodeNS(name), pod)
	if _, err := saltkey.Remove(l.masterPKI(), name, false); err != nil {
		return err
	}
	return l.st.Save()
}

func without(list []string, drop ...string) []string {
	var out []string
	for _, s := range list {
		keep := true
		for _, d := range drop {
			keep = keep && s != d
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

// waitConverged waits until the plan holds exactly the lab's nodes and
// every node routes every other node's pod CIDR, and nothing else.
func (l *Lab) waitConverged(limit time.Duration) error {
	interval := 250 * time.Millisecond
	for _, n := range l.st.Nodes {
		if n.VM {
			// A VM's routes are read through Salt, a job on an emulated
			// CPU: asked back to back, they starve its own state runs.
			interval = 10 * time.Second
		}
	}
	err := poll(limit, interval, func() (string, error) {
		return strings.Join(l.unconverged(), "; "), nil
	})
	if err != nil {
		return fmt.Errorf("not converged %w (see %s/master/master.log and salt-run.log)", err, l.Dir)
	}
	return nil
}

// unconverged lists what is not yet as the plan says.
func (l *Lab) unconverged() []string {
	plan, err := l.podCIDRs()
	if err != nil {
		return []string{"no pod CIDRs yet: " + err.Error()}
	}
	var out []string
	if l.st.Options.Controller() {
		for _, w := range l.workers() {
			if len(plan[w.Name]) == 0 {
				out = append(out, w.Name+" has no pod CIDR from the API yet")
			}
		}
	} else if len(plan) != len(l.st.Nodes) {
		out = append(out, fmt.Sprintf("the plan has %d nodes, the lab %d", len(plan), len(l.st.Nodes)))
	}
	for _, n := range l.st.Nodes {
		want := map[string]bool{}
		for _, m := range l.st.Nodes {
			if m.Name != n.Name && len(plan[m.Name]) > 0 {
				want[fmt.Sprintf("%s via %s", plan[m.Name][0], m.IP)] = true
			}
		}
		have := map[string]bool{}
		for _, line := range strings.Split(l.Routes(n.Name), "\n") {
			f := strings.Fields(line)
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "via" {
					have[f[0]+" via "+f[i+1]] = true
				}
			}
		}
		for r := range want {
			if !have[r] {
				out = append(out, n.Name+" lacks "+r)
			}
		}
		for r := range have {
			if !want[r] {
				out = append(out, n.Name+" still has "+r)
			}
		}
	}
	return out
}

// LastWorker is the worker with the highest address: the last one added.
func (l *Lab) LastWorker() string {
	last := Node{}
	for _, n := range l.workers() {
		if !last.IP.IsValid() || last.IP.Less(n.IP) {
			last = n
		}
	}
	return last.Name
}
