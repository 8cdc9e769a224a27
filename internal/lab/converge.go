package lab

import (
	"fmt"
	"strings"
	"time"
)

// Converge builds the cluster as a user would: the bootstrap
// orchestration, then `salt '*' state.apply kubernetes`, then once more to
// show that a second run changes nothing.
func (l *Lab) Converge() error {
	if err := l.phase("bootstrap: salt-run state.orchestrate orch.kubernetes.bootstrap (PKI, pillar, etcd, network)", func() error {
		return l.orchestrate("orch.kubernetes.bootstrap", nil)
	}); err != nil {
		return err
	}
	if err := l.phase("salt '*' state.apply kubernetes", func() error {
		_, err := l.applyAll()
		return err
	}); err != nil {
		return err
	}
	return l.phase("salt '*' state.apply kubernetes, again: nothing changes", func() error {
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
	})
}

// Report is what the lab shows after converging.
type Report struct {
	PodsOK, EtcdOK, StatusOK bool
}

// Show prints every node's pod CIDR and routes, starts a pod on every
// worker and checks every pair of pods, asks etcd for its health and prints
// the status store. It returns what passed.
func (l *Lab) Show() (Report, error) {
	var rep Report
	plan, err := l.Plan()
	if err != nil {
		return rep, fmt.Errorf("reading the plan: %w", err)
	}
	err = l.phase("pod CIDRs and routes (ip route show proto kubesalt, in each node)", func() error {
		for _, n := range l.st.Nodes {
			l.say("  %s %s  pod CIDR %v", n.Name, n.IP, plan[n.Name])
			for _, line := range strings.Split(l.Routes(n.Name), "\n") {
				l.say("      %s", line)
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	err = l.phase("pods: one on every worker, every pair pinged, the receiver sees the sender's pod address", func() error {
		var pods []Pod
		for _, n := range l.st.Nodes {
			if n.Role != "worker" || len(plan[n.Name]) == 0 {
				continue
			}
			p, err := l.AddPod(n.Name, plan[n.Name][0])
			if err != nil {
				return fmt.Errorf("pod on %s: %w", n.Name, err)
			}
			pods = append(pods, p)
		}
		rep.PodsOK = l.PrintPairs(pods, l.CheckPods(pods))
		if !rep.PodsOK {
			return fmt.Errorf("some pods did not reach each other without NAT (above)")
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	err = l.phase("etcd: every member over TLS, on the certificates kubesalt issued", func() error {
		out, err := l.EtcdHealth()
		for _, line := range strings.Split(out, "\n") {
			l.say("    %s", line)
		}
		rep.EtcdOK = err == nil
		return err
	})
	if err != nil {
		return rep, err
	}
	err = l.phase("kubesalt status (from the returner)", func() error {
		out, err := l.Status(30 * time.Second)
		for _, line := range strings.Split(out, "\n") {
			l.say("    %s", line)
		}
		rep.StatusOK = err == nil
		return err
	})
	return rep, err
}
