package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Converge builds the cluster as a user would: the bootstrap
// orchestration, then `salt '*' state.apply kubernetes`, then once more to
// show that a second run changes nothing (convergeActions).
func (l *Lab) Converge() error { return l.runActions(l.convergeActions()) }

// Bootstrap is Converge's first step alone: orch.kubernetes.bootstrap,
// which builds the cluster (the benchmark's time to pod-to-pod).
func (l *Lab) Bootstrap() error { return l.runActions(l.convergeActions()[:1]) }

// Reapply is the rest of Converge: the highstate on every node, then
// again, changing nothing (checks of the formula, not needed to build).
func (l *Lab) Reapply() error { return l.runActions(l.convergeActions()[1:]) }

// applyChangesNothing runs the highstate again and fails if any state
// changed something.
func (l *Lab) applyChangesNothing() error {
	changed, err := l.applyAll()
	if err != nil {
		return err
	}
	var moved []string
	for n, c := range changed {
		if c > 0 {
			moved = append(moved, fmt.Sprintf("%s (%d states)", n, c))
		}
	}
	if len(moved) > 0 {
		return fmt.Errorf("the second run changed %s", strings.Join(moved, ", "))
	}
	return nil
}

// Report is what the lab shows after converging.
type Report struct {
	PodsOK, EtcdOK, StatusOK bool
	NodesOK, ServiceOK, LBOK bool // Kubernetes labs only
	// DNSOK: the cluster DNS answers pods; SmokeOK: the rest of Kubernetes
	// The Hard Way's smoke test (kthw.go).
	DNSOK, SmokeOK bool
	SupervisedOK   bool // Kubernetes labs only: killed daemons came back
}

// Show prints every node's pod CIDR and routes; checks pod-to-pod traffic
// (through Kubernetes in a K8S lab, else with a namespace pod on every
// worker); asks etcd for its health and prints the status store
// (showActions). It returns what passed.
func (l *Lab) Show() (Report, error) {
	var rep Report
	err := l.runActions(l.showActions(&rep))
	return rep, err
}

// Supervised (K8S) kills a kubelet, an API server and an etcd with SIGKILL
// and times each until it is healthy again (supervisedActions); a lab
// without Kubernetes has nothing to kill. Not part of Show: it disturbs
// the cluster for a few seconds.
func (l *Lab) Supervised() (Report, error) {
	var rep Report
	err := l.runActions(l.supervisedActions(&rep))
	return rep, err
}

// showRoutes prints every node's pod CIDR and routes, and returns the
// CIDRs.
func (l *Lab) showRoutes() (map[string][]netip.Prefix, error) {
	cidrs, err := l.podCIDRs()
	if err != nil {
		return nil, fmt.Errorf("reading the pod CIDRs: %w", err)
	}
	for _, n := range l.st.Nodes {
		l.say("  %s %s  pod CIDR %v", n.Name, n.IP, cidrs[n.Name])
		for _, line := range strings.Split(l.Routes(n.Name), "\n") {
			l.say("      %s", line)
		}
	}
	return cidrs, nil
}

// checkNamespacePods starts a namespace pod on every worker's pod bridge
// and checks every pair; it reports whether all passed.
func (l *Lab) checkNamespacePods(cidrs map[string][]netip.Prefix) (bool, error) {
	var pods []Pod
	for _, n := range l.workers() {
		if len(cidrs[n.Name]) == 0 {
			continue
		}
		p, err := l.AddPod(n.Name, cidrs[n.Name][0])
		if err != nil {
			return false, fmt.Errorf("pod on %s: %w", n.Name, err)
		}
		pods = append(pods, p)
	}
	if !l.PrintPairs(pods, l.CheckPods(pods)) {
		return false, fmt.Errorf("some pods did not reach each other without NAT (above)")
	}
	return true, nil
}

// showEtcd prints etcd's health.
func (l *Lab) showEtcd() error {
	out, err := l.EtcdHealth()
	for _, line := range strings.Split(out, "\n") {
		l.say("    %s", line)
	}
	return err
}

// showStatus prints the status store once it shows every node converged.
func (l *Lab) showStatus() error {
	out, err := l.Status(30 * time.Second)
	for _, line := range strings.Split(out, "\n") {
		l.say("    %s", line)
	}
	return err
}
