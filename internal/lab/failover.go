package lab

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kubesalt/kubesalt/internal/nodes"
	"github.com/kubesalt/kubesalt/internal/probe"
)

// What losing a master costs: every Kubernetes process of one master
// frozen (SIGSTOP, as a machine that hangs) for a bounded hold, while the
// lab watches what a user would see, then thawed.

// masterProcesses are what the formula runs on a master, frozen together.
var masterProcesses = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// leaderLeases are the leader-election leases in kube-system.
var leaderLeases = []string{"kube-controller-manager", "kube-scheduler"}

// quick is how long a watcher's kubectl waits for the API.
const quick = 3 * time.Second

// failoverName is the Deployment scaled up during the hold.
const failoverName = "kubesalt-failover"

// failoverReplicas: the Deployment has 1 Running pod before the freeze and
// is scaled to this many at its start.
const failoverReplicas = 3

func failoverManifest() string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 2
      containers:
        - name: pod
          image: %[2]s
          imagePullPolicy: Never
          args: [serve, --port, "%[3]d"]
`, failoverName, PodRef, smokePort)
}

// FailoverReport is what freezing one master cost. Durations run from the
// freeze, except those after the thaw.
type FailoverReport struct {
	Master string
	// Leases are the leader leases the frozen master held, and NewLeaders
	// who held them once they had moved.
	Leases, NewLeaders []string
	HeldVIP            bool
	NewHolder          string
	// Until every node's haproxy marked its API server DOWN, until another
	// master held the VIP (if it held it), until every lease it held had
	// another holder, until the Deployment scaled at the freeze had all its
	// pods Running, until etcdctl endpoint health answered for the others.
	LBDown, VIPMoved, LeasesMoved, PodsRunning, EtcdQuorum time.Duration
	// The longest run of failed requests, one every 100 ms (each given
	// 2 s), from the first one's start to the last one's end: through a
	// worker's node-local endpoint (its kubelet's identity) and through the
	// VIP (the admin's); how many requests each made and how many failed.
	LocalGap, VIPGap       time.Duration
	LocalTries, VIPTries   int
	LocalFailed, VIPFailed int
	// kubectl get nodes (admin kubeconfig, the VIP) every 2 s: how many,
	// how many failed, and every node seen NotReady.
	NodeChecks, NodeChecksFailed int
	NotReady                     []string
	// After the thaw: until every node's haproxy marked it UP again, and
	// until etcd answered healthy on every member (--cluster).
	LBUp, EtcdBack time.Duration
}

// FreezeMaster freezes (SIGSTOP) etcd, the API server, the controller
// manager and the scheduler of the master that leads the controller
// manager, for hold, while requests go through a worker's node-local
// endpoint and through the VIP. During the hold: every node stays Ready,
// every lease it held moves, a Deployment scaled from 1 to 3 at the
// freeze gets its pods Running, kubectl through the VIP answers, etcd
// keeps quorum. Then it thaws them and waits until etcd is healthy on
// every member and every load balancer has the API server back. It prints
// the benchmark.
func (l *Lab) FreezeMaster(hold time.Duration) (FailoverReport, error) {
	var rep FailoverReport
	if !l.st.Options.K8S {
		return rep, fmt.Errorf("no Kubernetes in this lab: bring one up with `make lab K8S=1`")
	}
	if len(l.withRole(RoleMaster)) < 3 {
		return rep, fmt.Errorf("%d masters: freezing one keeps etcd's quorum only with 3 or more (`make lab K8S=1 NODES=5`)", len(l.withRole(RoleMaster)))
	}
	workers := l.workers()
	if len(workers) == 0 {
		return rep, fmt.Errorf("no worker: the node-local endpoint is probed from one")
	}
	if err := poll(time.Minute, time.Second, func() (string, error) {
		p, _ := l.lbProblems("")
		return strings.Join(p, "; "), nil
	}); err != nil {
		return rep, fmt.Errorf("before the freeze: %w", err)
	}
	// The leaders as they are: each lease renewed within its last 5 s (a
	// lease left by a restarted leader would move at once, measuring nothing).
	var holders map[string]string
	if err := poll(2*time.Minute, time.Second, func() (string, error) {
		var err error
		holders, err = l.leaseHolders()
		if err != nil {
			return err.Error(), nil
		}
		return "", nil
	}); err != nil {
		return rep, fmt.Errorf("before the freeze: %w", err)
	}
	rep.Master = holders["kube-controller-manager"]
	for _, lease := range leaderLeases {
		if holders[lease] == rep.Master {
			rep.Leases = append(rep.Leases, lease)
		}
	}
	rep.HeldVIP = strings.Join(l.VIPHolders(), ",") == rep.Master
	pids := map[string]int{}
	var err error
	for _, comm := range masterProcesses {
		if pids[comm], err = l.processIn(rep.Master, comm); err != nil {
			return rep, err
		}
	}
	if err := l.startFailoverDeployment(); err != nil {
		return rep, err
	}
	defer l.kubectl("delete", "deployment", failoverName, "--ignore-not-found", "--wait=false")
	var others []string
	for _, m := range l.withRole(RoleMaster) {
		if m.Name != rep.Master {
			others = append(others, m.Name)
		}
	}

	worker := workers[0].Name
	kubelet, err := nodes.LoadKubeconfig(filepath.Join(l.nodeDir(worker), "root/etc/kubernetes/pki/kubelet.kubeconfig"))
	if err != nil {
		return rep, err
	}
	admin, err := nodes.LoadKubeconfig(filepath.Join(l.PKIDir(), "admin.kubeconfig"))
	if err != nil {
		return rep, err
	}
	// The probers run from before the freeze until the load balancers have
	// the master back; their figures are read once they have stopped.
	stop := make(chan struct{})
	var probers sync.WaitGroup
	var local, viaVIP probeStats
	probers.Add(2)
	go func() {
		defer probers.Done()
		local.run(stop, l.NodeNS(worker), localAPIURL+"/api/v1/nodes/"+worker, kubelet.TLS)
	}()
	go func() { defer probers.Done(); viaVIP.run(stop, l.masterNS(), admin.Server+"/readyz", admin.TLS) }()
	stopProbes := sync.OnceFunc(func() { close(stop); probers.Wait() })
	defer stopProbes()

	var list []string
	for _, comm := range masterProcesses {
		list = append(list, fmt.Sprintf("%s %d", comm, pids[comm]))
	}
	l.say("    freezing %s (leads %s; VIP holder: %v) for %s: %s", rep.Master, strings.Join(rep.Leases, ", "), rep.HeldVIP, hold, strings.Join(list, ", "))
	start := time.Now()
	for _, comm := range masterProcesses {
		if err := syscall.Kill(pids[comm], syscall.SIGSTOP); err != nil {
			return rep, err
		}
	}
	thawed := false
	thaw := func() {
		if !thawed {
			for _, comm := range masterProcesses {
				syscall.Kill(pids[comm], syscall.SIGCONT)
			}
			thawed = true
		}
	}
	defer thaw()
	end := start.Add(hold)

	// Each watcher owns its fields of rep and stops at its goal or at the
	// end of the hold.
	var watchers sync.WaitGroup
	watch := func(interval time.Duration, check func() bool) {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			for time.Now().Before(end) && !check() {
				time.Sleep(interval)
			}
		}()
	}
	// Every node's haproxy, and the VIP.
	watch(100*time.Millisecond, func() bool {
		problems, _ := l.lbProblems(rep.Master)
		if rep.LBDown == 0 && !hasPrefixIn(problems, "haproxy still has "+rep.Master) && !hasPrefixIn(problems, "stats") {
			rep.LBDown = time.Since(start)
		}
		if h := l.VIPHolders(); rep.HeldVIP && rep.VIPMoved == 0 && len(h) == 1 && h[0] != rep.Master {
			rep.VIPMoved, rep.NewHolder = time.Since(start), h[0]
		}
		return rep.LBDown != 0 && (rep.VIPMoved != 0 || !rep.HeldVIP)
	})
	// The leader leases.
	watch(500*time.Millisecond, func() bool {
		now, err := l.leaseHolders()
		if err != nil {
			return false
		}
		var moved []string
		for _, lease := range rep.Leases {
			if h := now[lease]; h != "" && h != rep.Master {
				moved = append(moved, lease+" to "+h)
			}
		}
		if len(moved) < len(rep.Leases) {
			return false
		}
		rep.LeasesMoved, rep.NewLeaders = time.Since(start), moved
		return true
	})
	// The Deployment scaled up, as a user would at once, then its pods.
	scaled := false
	watch(time.Second, func() bool {
		if !scaled {
			_, err := l.kubectlWithin(quick, "scale", "deployment", failoverName, fmt.Sprintf("--replicas=%d", failoverReplicas))
			scaled = err == nil
			return false
		}
		if n, _ := l.runningPods(failoverName); n < failoverReplicas {
			return false
		}
		rep.PodsRunning = time.Since(start)
		return true
	})
	// etcd's quorum: the other members healthy (a write and a read each).
	watch(time.Second, func() bool {
		if _, err := l.etcdctl(others[0], others, "endpoint", "health"); err != nil {
			return false
		}
		rep.EtcdQuorum = time.Since(start)
		return true
	})
	// Every node Ready, for the whole hold, through the admin's kubectl.
	notReady := map[string]bool{}
	watch(2*time.Second, func() bool {
		rep.NodeChecks++
		kn, err := l.kubeNodesWithin(quick)
		if err != nil {
			rep.NodeChecksFailed++
			return false
		}
		for _, w := range workers {
			if ok, msg := kn[w.Name].ready(); !ok && !notReady[w.Name] {
				notReady[w.Name] = true
				rep.NotReady = append(rep.NotReady, fmt.Sprintf("%s at %.0fs: %s", w.Name, time.Since(start).Seconds(), msg))
			}
		}
		return false
	})
	watchers.Wait()
	time.Sleep(time.Until(end))

	var problems []string
	if rep.LBDown == 0 {
		problems = append(problems, "not every haproxy marked "+rep.Master+" DOWN")
	}
	if rep.HeldVIP && rep.VIPMoved == 0 {
		problems = append(problems, "the VIP did not move")
	}
	if rep.LeasesMoved == 0 {
		problems = append(problems, fmt.Sprintf("the leases %v did not move", rep.Leases))
	}
	if rep.PodsRunning == 0 {
		n, _ := l.runningPods(failoverName)
		problems = append(problems, fmt.Sprintf("%d of the %d pods of Deployment %s Running", n, failoverReplicas, failoverName))
	}
	if rep.EtcdQuorum == 0 {
		problems = append(problems, "etcd on "+strings.Join(others, " and ")+" not healthy")
	}
	if len(rep.NotReady) > 0 {
		problems = append(problems, "nodes NotReady: "+strings.Join(rep.NotReady, "; "))
	}
	// kubectl through the VIP answers at the end of the hold.
	if err := l.workersReady(); err != nil {
		problems = append(problems, "at the end of the hold: "+err.Error())
	}
	vip := fmt.Sprintf("the VIP stayed on %v", l.VIPHolders())
	if rep.HeldVIP {
		vip = fmt.Sprintf("the VIP moved to %s after %.1fs", rep.NewHolder, rep.VIPMoved.Seconds())
	}
	l.say("    during the hold: every haproxy marked it DOWN after %.1fs; %s; leases %v moved (%s) after %.1fs; "+
		"%d pods Running after %.1fs; etcd healthy on %s after %.1fs; kubectl get nodes %d times, %d failed, NotReady: %v",
		rep.LBDown.Seconds(), vip, rep.Leases, strings.Join(rep.NewLeaders, ", "), rep.LeasesMoved.Seconds(),
		failoverReplicas, rep.PodsRunning.Seconds(), strings.Join(others, ", "), rep.EtcdQuorum.Seconds(),
		rep.NodeChecks, rep.NodeChecksFailed, rep.NotReady)
	if len(problems) > 0 {
		return rep, fmt.Errorf("with %s frozen for %s: %s", rep.Master, hold, strings.Join(problems, "; "))
	}

	thaw()
	start = time.Now()
	var masters []string
	for _, m := range l.withRole(RoleMaster) {
		masters = append(masters, m.Name)
	}
	if err := poll(2*time.Minute, 500*time.Millisecond, func() (string, error) {
		out, err := l.etcdctl(others[0], masters, "endpoint", "health", "--cluster")
		if err != nil || strings.Count(out, "is healthy") != len(masters) {
			return "etcd not healthy on every member: " + out, nil
		}
		return "", nil
	}); err != nil {
		return rep, fmt.Errorf("after the thaw: %w", err)
	}
	rep.EtcdBack = time.Since(start)
	if err := poll(time.Minute, 100*time.Millisecond, func() (string, error) {
		p, _ := l.lbProblems("")
		return strings.Join(p, "; "), nil
	}); err != nil {
		return rep, fmt.Errorf("after the thaw: %w", err)
	}
	rep.LBUp = time.Since(start)
	stopProbes()
	rep.LocalGap, rep.LocalTries, rep.LocalFailed = local.gap, local.tries, local.failed
	rep.VIPGap, rep.VIPTries, rep.VIPFailed = viaVIP.gap, viaVIP.tries, viaVIP.failed
	l.say("    thawed: etcd healthy on all %d members after %.1fs; every haproxy marked it UP again after %.1fs", len(masters), rep.EtcdBack.Seconds(), rep.LBUp.Seconds())
	l.say("    requests through %s's node-local endpoint: %d, %d failed, longest failing run %.1fs", worker, rep.LocalTries, rep.LocalFailed, rep.LocalGap.Seconds())
	l.say("    requests through the VIP: %d, %d failed, longest failing run %.1fs", rep.VIPTries, rep.VIPFailed, rep.VIPGap.Seconds())
	l.say("    benchmark (from the freeze): every haproxy DOWN %.1fs, leases moved %.1fs, scaled pods Running %.1fs, "+
		"longest unavailability through the node-local endpoint %.1fs (goal < 5 s), nodes NotReady: %d (goal 0)",
		rep.LBDown.Seconds(), rep.LeasesMoved.Seconds(), rep.PodsRunning.Seconds(), rep.LocalGap.Seconds(), len(rep.NotReady))
	return rep, nil
}

// probeStats is one prober's figures.
type probeStats struct {
	gap           time.Duration
	tries, failed int
}

// run GETs url every 100 ms until stop, recording the longest run of
// failures: from its first request's start (one that timed out counts its
// whole wait) to its last one's end.
func (st *probeStats) run(stop <-chan struct{}, ns, url string, conf *tls.Config) {
	var since time.Time // the first failure of the current run
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		sent := time.Now()
		code, _, err := probe.HTTPSGet(ns, url, conf, 2*time.Second)
		st.tries++
		if err == nil && code == 200 {
			since = time.Time{}
			continue
		}
		st.failed++
		if since.IsZero() {
			since = sent
		}
		st.gap = max(st.gap, time.Since(since))
	}
}

// startFailoverDeployment applies the Deployment with one replica and
// waits until its pod is Running.
func (l *Lab) startFailoverDeployment() error {
	manifest := filepath.Join(l.Dir, failoverName+".yaml")
	if err := os.WriteFile(manifest, []byte(failoverManifest()), 0o600); err != nil {
		return err
	}
	if out, err := l.kubectl("apply", "-f", manifest); err != nil {
		return fmt.Errorf("kubectl apply %s: %v: %s", manifest, err, out)
	}
	return poll(2*time.Minute, time.Second, func() (string, error) {
		if n, err := l.runningPods(failoverName); err != nil || n != 1 {
			return fmt.Sprintf("Deployment %s: %d pods Running, want 1 before the freeze (%v)", failoverName, n, err), nil
		}
		return "", nil
	})
}

// runningPods counts app's pods in phase Running and not being deleted.
func (l *Lab) runningPods(app string) (int, error) {
	out, err := l.kubectlWithin(quick, "get", "pods", "-l", "app="+app, "-o", "json")
	if err != nil {
		return 0, err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				DeletionTimestamp *string `json:"deletionTimestamp"`
			} `json:"metadata"`
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return 0, err
	}
	n := 0
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp == nil && p.Status.Phase == "Running" {
			n++
		}
	}
	return n, nil
}

// leaseHolders names the master holding each leader lease (the holder
// identity is <hostname>_<uuid>), if it renewed it within 5 s.
func (l *Lab) leaseHolders() (map[string]string, error) {
	out, err := l.kubectlWithin(quick, append([]string{"-n", "kube-system", "get", "lease", "-o", "json"}, leaderLeases...)...)
	if err != nil {
		return nil, fmt.Errorf("the leader leases: %v: %s", err, out)
	}
	return parseLeaseHolders([]byte(out), time.Now())
}

func parseLeaseHolders(raw []byte, now time.Time) (map[string]string, error) {
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				HolderIdentity string    `json:"holderIdentity"`
				RenewTime      time.Time `json:"renewTime"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("the leader leases: %v", err)
	}
	out := map[string]string{}
	for _, it := range list.Items {
		// A holder that has not renewed for 5 s (the retry period is 2 s)
		// is no live leader.
		if now.Sub(it.Spec.RenewTime) < 5*time.Second {
			out[it.Metadata.Name], _, _ = strings.Cut(it.Spec.HolderIdentity, "_")
		}
	}
	var missing []string
	for _, lease := range leaderLeases {
		if out[lease] == "" {
			missing = append(missing, lease)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return out, fmt.Errorf("no live holder (renewed within 5 s) for the leases %v", missing)
	}
	return out, nil
}

// etcdctl runs etcdctl in master from's namespace against the etcd of
// masters, over TLS with from's API server etcd client certificate.
func (l *Lab) etcdctl(from string, masters []string, args ...string) (string, error) {
	var endpoints []string
	for _, m := range masters {
		n, _ := l.st.Node(m)
		endpoints = append(endpoints, fmt.Sprintf("https://%s:2379", n.IP))
	}
	pki := filepath.Join(l.nodeDir(from), "root/etc/kubernetes/pki")
	out, err := l.in(l.NodeNS(from), append([]string{l.builtBin("etcdctl"), "--endpoints", strings.Join(endpoints, ","),
		"--cacert", filepath.Join(pki, "ca.pem"),
		"--cert", filepath.Join(pki, "kube-apiserver-etcd-client.pem"),
		"--key", filepath.Join(pki, "kube-apiserver-etcd-client-key.pem"),
		"--dial-timeout", "2s", "--command-timeout", "3s"}, args...)...)
	return strings.TrimSpace(out), err
}
