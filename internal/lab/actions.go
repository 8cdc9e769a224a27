package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Each command of the lab is a list of actions built once from the
// options (as kind's cluster create builds its actions): the only place
// where the options choose which phases run. The actions then run in
// order; the first failure stops the command and names its phase.

// action is one phase: a heading for people, and its work.
type action struct {
	name string
	run  func() error
}

// runActions runs each action as a phase, in order; then, also after a
// failure, the cleanups the actions registered.
func (l *Lab) runActions(acts []action) error {
	defer func() {
		for _, c := range l.cleanups {
			c()
		}
		l.cleanups = nil
	}()
	for _, a := range acts {
		if err := l.phase(a.name, a.run); err != nil {
			return err
		}
	}
	return nil
}

// upActions: the network, the Kubernetes binaries and images (K8S), the
// salt-master, the minions.
func (l *Lab) upActions(nodes []Node) []action {
	acts := []action{
		{fmt.Sprintf("network: %d node namespaces and the salt-master's on one bridge (%s)", len(nodes), NodeNet),
			func() error { return l.buildNetwork(nodes) }},
		{"binaries the formula installs: kubesalt, etcd, the CNI plugins", l.stageBinaries},
	}
	if l.st.Options.K8S {
		acts = append(acts, action{"Kubernetes: its components, containerd and runc, the pause and test images (kubesalt-pod image)", l.stageK8S})
	}
	return append(acts,
		action{"salt-master", l.startMaster},
		action{fmt.Sprintf("salt-minions: %d, keys accepted in advance", len(nodes)), func() error { return l.startMinions(nodes) }},
	)
}

// convergeActions: the bootstrap orchestration, then the highstate twice;
// the second must change nothing.
func (l *Lab) convergeActions() []action {
	return []action{
		{"bootstrap: salt-run state.orchestrate orch.kubernetes.bootstrap (PKI, pillar, etcd, network)",
			func() error {
				rec, recErr := l.recordEvents()
				start := time.Now()
				err := l.orchestrate("orch.kubernetes.bootstrap", nil)
				if recErr != nil {
					l.say("    no timeline: %v", recErr)
					return err
				}
				// salt-run prints a large return (every step of 20 nodes)
				// after the orchestration has returned to the lab.
				poll(time.Minute, 250*time.Millisecond, func() (string, error) {
					if rec.orchestrationReturned("orch.kubernetes.bootstrap") {
						return "", nil
					}
					return "orch.kubernetes.bootstrap's return not recorded yet", nil
				})
				l.printTimeline(rec.stop(), start, "salt-run's start")
				return err
			}},
		{"salt '*' state.apply kubernetes", func() error { _, err := l.applyAll(); return err }},
		{"salt '*' state.apply kubernetes, again: nothing changes", l.applyChangesNothing},
	}
}

// showActions: the control plane and the nodes (K8S), every node's pod
// CIDR and routes, pod-to-pod traffic (through Kubernetes in a K8S lab,
// else namespace pods), etcd's health, the status store. Each check's
// outcome goes into rep.
func (l *Lab) showActions(rep *Report) []action {
	var acts []action
	if l.st.Options.K8S {
		source := "the plan's"
		if l.st.Options.Controller() {
			source = "the controller manager's"
		}
		acts = append(acts,
			action{"Kubernetes: every master's API server ready; controller manager and scheduler leaders elected", l.CheckControlPlane},
			action{"API load balancing: every node's haproxy has every master UP, one master holds the VIP " + VIP.String() + ", kubelets and kube-proxy use " + localAPIURL, func() error {
				err := l.CheckLoadBalancers(2 * time.Minute)
				rep.LBOK = err == nil
				return err
			}},
			action{"each API server its own identity (each node its own hostname); the leader leases name masters", l.CheckIdentities},
			action{"Kubernetes: every worker a Ready node with " + source + " pod CIDR in spec.podCIDRs", func() error {
				err := l.WaitNodesReady(5 * time.Minute)
				rep.NodesOK = err == nil
				return err
			}},
		)
	}
	var cidrs map[string][]netip.Prefix
	acts = append(acts, action{"pod CIDRs and routes (ip route show proto " + routeProto + ", in each node)", func() (err error) {
		cidrs, err = l.showRoutes()
		return err
	}})
	if l.st.Options.K8S {
		var pods []KubePod
		acts = append(acts,
			action{fmt.Sprintf("Deployment %s (%s) spread over the workers, Service in front", smokeName, PodRef), func() (err error) {
				pods, err = l.DeploySmoke(5 * time.Minute)
				return err
			}},
			action{"pods: each in its node's pod CIDR; every pod reaches every pod on another node, which sees the caller's pod address", func() error {
				ok, err := l.CheckKubePods(pods)
				rep.PodsOK = ok && err == nil
				if err == nil && !ok {
					err = fmt.Errorf("some pods failed (above)")
				}
				return err
			}},
			action{"Service: its ClusterIP from every pod, through kube-proxy", func() error {
				err := l.CheckService(pods)
				rep.ServiceOK = err == nil
				return err
			}},
			action{"cluster DNS: CoreDNS's replicas Ready on different workers, the kube-dns Service at cluster_dns", func() error {
				return l.CheckDNSAddon(3 * time.Minute)
			}},
			action{"DNS: a pod on every worker reaches the Service by name (FQDN and short name)", func() error {
				err := l.CheckDNS(pods)
				rep.DNSOK = err == nil
				return err
			}},
			action{"smoke test (Kubernetes The Hard Way): Secret encrypted in etcd, rollout, port-forward, logs, exec, NodePort", func() error {
				rep.SmokeOK = false
				for _, check := range []func() error{
					l.CheckEncryption, l.CheckRollout,
					func() error { return l.CheckPortForward(pods[0]) },
					func() error { return l.CheckLogs(pods[0]) },
					func() error { return l.CheckExec(pods[0]) },
					func() error { return l.CheckNodePort(pods) },
				} {
					if err := check(); err != nil {
						return err
					}
				}
				rep.SmokeOK = true
				return nil
			}},
		)
	} else {
		acts = append(acts, action{"pods: one on every worker, every pair pinged, the receiver sees the sender's pod address", func() error {
			ok, err := l.checkNamespacePods(cidrs)
			rep.PodsOK = ok
			return err
		}})
	}
	return append(acts,
		action{"etcd: every member over TLS, on the certificates kubesalt issued", func() error {
			err := l.showEtcd()
			rep.EtcdOK = err == nil
			return err
		}},
		action{"kubesalt status (from the returner)", func() error {
			err := l.showStatus()
			rep.StatusOK = err == nil
			return err
		}},
	)
}

// supervisedActions (K8S): a kubelet, an API server and an etcd killed
// with SIGKILL, each healthy again by itself.
func (l *Lab) supervisedActions(rep *Report) []action {
	if !l.st.Options.K8S {
		return nil
	}
	return []action{{"supervised daemons: a kubelet, an API server and an etcd killed with SIGKILL, each healthy again by itself", func() error {
		err := l.CheckSupervised()
		rep.SupervisedOK = err == nil
		return err
	}}}
}

// addNodeActions: the node into the pillar and its minion started; the
// reactors route it everywhere, and (K8S) make it a Ready node. took is
// the time from the minion's start to the last of these.
func (l *Lab) addNodeActions(n Node, took *time.Duration) []action {
	var start time.Time
	var holders []string
	var holderLog func() string // what the VIP's holder logged since the add began
	var rec *eventRecorder
	var stopPing func()
	var runs0, served0 int
	l.LastAdd = AddTiming{}
	acts := []action{
		{"recording the master's events (the timeline) and polling " + n.Name + " with test.ping (the floor)", func() error {
			var err error
			runs0, served0 = l.PlannerCounts()
			if rec, err = l.recordEvents(); err != nil {
				return err
			}
			stopPing, err = l.pollPing(n.Name)
			return err
		}},
		{fmt.Sprintf("add %s (%s): pillar, namespace, minion; the reactor does the rest", n.Name, n.IP), func() error {
			holders = l.VIPHolders()
			holderLog = l.vipLogFrom(holders)
			err := l.addNode(n)
			start = time.Now()
			return err
		}},
		{"routes: every node routes every other node's pod CIDR, and nothing else", func() error {
			if err := l.waitConverged(5 * time.Minute); err != nil {
				return err
			}
			*took = time.Since(start)
			l.say("    routes converged on every node %.1fs after %s's minion started", took.Seconds(), n.Name)
			return nil
		}},
	}
	if n.Role == RoleMaster {
		return append(acts, action{fmt.Sprintf("%s in etcd's members, every haproxy and the API server certificate; the VIP not taken from a live holder", n.Name), func() error {
			if err := l.waitMasters(nil, 5*time.Minute); err != nil {
				return err
			}
			*took = time.Since(start)
			l.say("    %s a member and a backend everywhere %.1fs after its minion started", n.Name, took.Seconds())
			// keepalived's nopreempt: a master that comes takes no VIP
			// from a live holder. The holder gives it up only when its own
			// API server fails its check (FAULT): the add restarts the old
			// masters' API servers for the certificate with the new IP.
			now := l.VIPHolders()
			if len(holders) != 1 || slices.Equal(now, holders) {
				return nil
			}
			if len(now) != 1 {
				return fmt.Errorf("the VIP %s is held by %v after %s came, want one holder", VIP, now, n.Name)
			}
			logged := holderLog()
			if !strings.Contains(logged, "Entering FAULT STATE") {
				return fmt.Errorf("the VIP %s moved from %v to %v when %s came, and %s's keepalived never failed its API server check: it was taken from a live holder (keepalived is nopreempt); %s logged:\n%s",
					VIP, holders, now, n.Name, holders[0], holders[0], logged)
			}
			l.say("    the VIP moved from %v to %v: %s's API server failed its check while it restarted for the new certificate (keepalived FAULT), as it should", holders, now, holders[0])
			return nil
		}})
	}
	if l.st.Options.K8S {
		acts = append(acts, action{fmt.Sprintf("Kubernetes: %s a Ready node with its pod CIDR", n.Name), func() error {
			if err := l.WaitNodesReady(5 * time.Minute); err != nil {
				return err
			}
			*took = time.Since(start)
			l.say("    %s a Ready node with its pod CIDR %.1fs after its minion started", n.Name, took.Seconds())
			return nil
		}})
	}
	// The poller and the recorder end also when a step above failed.
	stop := func() []saltEvent {
		if stopPing != nil {
			stopPing()
			stopPing = nil
		}
		if rec == nil {
			return nil
		}
		events := rec.stop()
		rec = nil
		return events
	}
	l.cleanups = append(l.cleanups, func() { stop() })
	return append(acts, action{"timeline: orch.kubernetes.add_node's steps from the events, the floor (" + n.Name + "'s first test.ping answer)", func() error {
		if stopPing != nil {
			stopPing()
			stopPing = nil
		}
		// The orchestration may still run steps the check above does not
		// wait for (a master's Node podCIDRs): its return has the steps.
		poll(2*time.Minute, 500*time.Millisecond, func() (string, error) {
			if rec.orchestrationReturned("orch.kubernetes.add_node") {
				return "", nil
			}
			return "orch.kubernetes.add_node has not returned", nil
		})
		events := stop()
		l.LastAdd.Took = *took
		if at, ok := firstPing(events, n.Name); ok {
			l.LastAdd.Floor = at.Sub(start)
		}
		l.say("    %s: %.1fs = the floor %.1fs (minion start to its first test.ping answer) + kubesalt's part %.1fs",
			n.Name, took.Seconds(), l.LastAdd.Floor.Seconds(), (*took - l.LastAdd.Floor).Seconds())
		l.printTimeline(events, start, n.Name+"'s minion start")
		runs, served := l.PlannerCounts()
		l.say("    the ext_pillar compiled %d pillars during the add; its planner ran %d time(s), the others were served from its cache",
			runs-runs0+served-served0, runs-runs0)
		return nil
	}})
}

// AddTiming is the last add's time from the minion's start to done, and
// the floor in it: the minion's start to its first test.ping answer.
type AddTiming struct{ Took, Floor time.Duration }

// removeNodeActions: (K8S) a worker drained, a master stopped; the node
// out of the pillar and the master told; the reactors remove its routes
// everywhere (and a master's etcd member, backend, keepalived peer and
// certificate SAN); then (K8S) its Node, and its minion, namespaces and
// key. took is the time from the event to the routes converged (a
// master: to everything above gone).
func (l *Lab) removeNodeActions(n Node, took *time.Duration) []action {
	name := n.Name
	var start time.Time
	var acts []action
	master := n.Role == RoleMaster
	if l.st.Options.K8S && !master {
		// As its admin would: its pods go elsewhere before it does.
		acts = append(acts, action{"Kubernetes: kubectl drain " + name, func() error {
			out, err := l.kubectl("drain", name, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout", "2m")
			if err != nil {
				return fmt.Errorf("kubectl drain %s: %v: %s", name, err, out)
			}
			l.say("    %s", strings.ReplaceAll(strings.TrimSpace(out), "\n", "\n    "))
			return nil
		}})
	}
	if master {
		// A master being replaced is a dead machine: nothing of it answers.
		acts = append(acts, action{name + " stopped: its minion, namespaces and key removed", func() error { return l.dropNode(name) }})
	}
	acts = append(acts,
		action{fmt.Sprintf("remove %s: pillar, kubesalt/pillar/changed event", name), func() error {
			err := l.dropFromPillar(name)
			start = time.Now()
			return err
		}},
		action{"routes: every node's route to " + name + " gone, the others kept", func() error {
			if err := l.waitConverged(5 * time.Minute); err != nil {
				return err
			}
			*took = time.Since(start)
			l.say("    routes converged on every node %.1fs after the event", took.Seconds())
			return nil
		}},
	)
	if master {
		acts = append(acts, action{fmt.Sprintf("%s gone from etcd's members, every haproxy, the masters' keepalived peers and the API server certificate (%s)", name, n.IP), func() error {
			if err := l.waitMasters(&n, 5*time.Minute); err != nil {
				return err
			}
			*took = time.Since(start)
			l.say("    %s gone everywhere %.1fs after the event", name, took.Seconds())
			return nil
		}})
		return acts
	}
	if l.st.Options.K8S {
		acts = append(acts, action{"Kubernetes: kubectl delete node " + name, func() error {
			if out, err := l.kubectl("delete", "node", name, "--ignore-not-found"); err != nil {
				return fmt.Errorf("kubectl delete node %s: %v: %s", name, err, out)
			}
			return nil
		}})
	}
	return append(acts, action{name + ": its minion, namespaces and key removed", func() error { return l.dropNode(name) }})
}
