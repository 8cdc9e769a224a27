package lab

import (
	"fmt"
	"net/netip"
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
	NodesOK, ServiceOK       bool // Kubernetes labs only
}

// Show prints every node's pod CIDR and routes; checks pod-to-pod traffic
// (through Kubernetes in a K8S lab, else with a namespace pod on every
// worker); asks etcd for its health and prints the status store. It
// returns what passed.
func (l *Lab) Show() (Report, error) {
	var rep Report
	if l.st.Options.K8S {
		if err := l.phase("Kubernetes: every master's API server ready; controller manager and scheduler leaders elected", l.CheckControlPlane); err != nil {
			return rep, err
		}
		if err := l.phase("Kubernetes: every worker a Ready node with its pod CIDR in spec.podCIDRs", func() error {
			err := l.WaitNodesReady(5 * time.Minute)
			rep.NodesOK = err == nil
			return err
		}); err != nil {
			return rep, err
		}
	}
	cidrs, err := l.podCIDRs()
	if err != nil {
		return rep, fmt.Errorf("reading the pod CIDRs: %w", err)
	}
	err = l.phase("pod CIDRs and routes (ip route show proto "+routeProto+", in each node)", func() error {
		for _, n := range l.st.Nodes {
			l.say("  %s %s  pod CIDR %v", n.Name, n.IP, cidrs[n.Name])
			for _, line := range strings.Split(l.Routes(n.Name), "\n") {
				l.say("      %s", line)
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if l.st.Options.K8S {
		err = l.showKubernetes(&rep)
	} else {
		err = l.showNamespacePods(&rep, cidrs)
	}
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

// showNamespacePods starts a namespace pod on every worker's pod bridge and
// checks every pair.
func (l *Lab) showNamespacePods(rep *Report, cidrs map[string][]netip.Prefix) error {
	return l.phase("pods: one on every worker, every pair pinged, the receiver sees the sender's pod address", func() error {
		var pods []Pod
		for _, n := range l.workers() {
			if len(cidrs[n.Name]) == 0 {
				continue
			}
			p, err := l.AddPod(n.Name, cidrs[n.Name][0])
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
}

// showKubernetes runs the smoke test through Kubernetes.
func (l *Lab) showKubernetes(rep *Report) error {
	var pods []KubePod
	if err := l.phase(fmt.Sprintf("Deployment %s (%s) spread over the workers, Service in front", smokeName, PodRef), func() error {
		var err error
		pods, err = l.DeploySmoke(5 * time.Minute)
		return err
	}); err != nil {
		return err
	}
	if err := l.phase("pods: each in its node's pod CIDR; every pod reaches every pod on another node, which sees the caller's pod address", func() error {
		ok, err := l.CheckKubePods(pods)
		rep.PodsOK = ok && err == nil
		if err == nil && !ok {
			err = fmt.Errorf("some pods failed (above)")
		}
		return err
	}); err != nil {
		return err
	}
	return l.phase("Service: its ClusterIP from every pod, through kube-proxy", func() error {
		err := l.CheckService(pods)
		rep.ServiceOK = err == nil
		return err
	})
}
