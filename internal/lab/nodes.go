package lab

import (
	"fmt"
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

// AddNode adds a worker to the lab's pillar and starts its minion; the
// reactor (salt/minion/*/start) and orch.kubernetes.add_node do the rest:
// its CIDR, certificates and routes, and every other node's route to it.
// It returns how long that took from the minion's start.
func (l *Lab) AddNode() (Node, time.Duration, error) {
	n := l.nextWorker()
	var took time.Duration
	err := l.phase(fmt.Sprintf("add %s (%s): pillar, namespace, minion; the reactor does the rest", n.Name, n.IP), func() error {
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
		start := time.Now()
		if err := l.startMinion(n); err != nil {
			return err
		}
		if err := l.waitConverged(5 * time.Minute); err != nil {
			return err
		}
		took = time.Since(start)
		l.say("    routes converged on every node %.1fs after %s's minion started", took.Seconds(), n.Name)
		if l.st.Options.K8S {
			if err := l.WaitNodesReady(5 * time.Minute); err != nil {
				return err
			}
			took = time.Since(start)
			l.say("    %s a Ready node with its pod CIDR %.1fs after its minion started", n.Name, took.Seconds())
		}
		return nil
	})
	return n, took, err
}

// RemoveNode takes a worker out of the pillar and tells the master
// (kubesalt/pillar/changed): every other node's route to it goes. Then the
// node's minion, namespace and key go.
func (l *Lab) RemoveNode(name string) (time.Duration, error) {
	n, ok := l.st.Node(name)
	if !ok || n.Role != RoleWorker {
		return 0, fmt.Errorf("%s is not a worker of the lab; remove a worker (nodes: %s)", name, strings.Join(l.nodeNames(), ", "))
	}
	var took time.Duration
	err := l.phase(fmt.Sprintf("remove %s: pillar, kubesalt/pillar/changed event; its routes go everywhere", name), func() error {
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
		start := time.Now()
		if _, err := l.SaltRun("event.send", "kubesalt/pillar/changed"); err != nil {
			return err
		}
		if err := l.waitConverged(5 * time.Minute); err != nil {
			return err
		}
		took = time.Since(start)
		l.say("    routes converged on every node %.1fs after the event", took.Seconds())
		if l.st.Options.K8S {
			// As its admin would: the Node goes, and its pods are made again
			// elsewhere.
			if out, err := l.kubectl("delete", "node", name, "--ignore-not-found"); err != nil {
				return fmt.Errorf("kubectl delete node %s: %v: %s", name, err, out)
			}
		}
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
	})
	return took, err
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
	err := poll(limit, 250*time.Millisecond, func() (string, error) {
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
