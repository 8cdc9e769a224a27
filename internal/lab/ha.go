package lab

import (
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/nodes"
	"github.com/kubesalt/kubesalt/internal/probe"
)

// The API's high availability in a Kubernetes lab: every node's haproxy
// (the node-local endpoint its kubelet and kube-proxy use), the VIP that
// keepalived holds on one master, and what losing an API server costs.

const (
	// The lab keeps the defaults: api:local_port and the formula's
	// haproxy:stats_port.
	localAPIPort     = cluster.DefaultLocalAPIPort
	haproxyStatsPort = 6445
)

var localAPIURL = cluster.HTTPSURL("127.0.0.1", localAPIPort)

// Backends reads node's haproxy stats page (CSV, on loopback in its
// namespace): each API server backend's status by master name ("UP",
// "DOWN", "UP 1/2" while it rises...).
func (l *Lab) Backends(node string) (map[string]string, error) {
	code, body, err := probe.HTTPGet(l.NodeNS(node), fmt.Sprintf("http://127.0.0.1:%d/;csv", haproxyStatsPort), 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%s's haproxy stats: %w", node, err)
	}
	if code != 200 {
		return nil, fmt.Errorf("%s's haproxy stats: HTTP %d", node, code)
	}
	return parseBackends(string(body))
}

// parseBackends reads haproxy's CSV statistics: the servers of backend
// kube-apiserver and their status.
func parseBackends(text string) (map[string]string, error) {
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(text, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("haproxy stats: not CSV: %v", err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	px, sv, st := col["pxname"], col["svname"], col["status"]
	if rows[0][px] != "pxname" || rows[0][sv] != "svname" || rows[0][st] != "status" {
		return nil, fmt.Errorf("haproxy stats: no pxname, svname and status columns in %q", rows[0])
	}
	out := map[string]string{}
	for _, row := range rows[1:] {
		if len(row) > st && row[px] == "kube-apiserver" && row[sv] != "FRONTEND" && row[sv] != "BACKEND" {
			out[row[sv]] = row[st]
		}
	}
	return out, nil
}

// VIPHolders lists the masters whose node interface holds the VIP.
func (l *Lab) VIPHolders() []string {
	var out []string
	for _, m := range l.withRole(RoleMaster) {
		addrs, _ := l.in(l.NodeNS(m.Name), "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if strings.Contains(addrs, " "+VIP.String()+"/") {
			out = append(out, m.Name)
		}
	}
	return out
}

// lbProblems lists what differs from: every node's haproxy has every
// master as an UP backend (and no other), and one master holds the VIP.
func (l *Lab) lbProblems(down string) (problems []string, backends map[string]map[string]string) {
	backends = map[string]map[string]string{}
	masters := l.withRole(RoleMaster)
	for _, n := range l.st.Nodes {
		got, err := l.Backends(n.Name)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		backends[n.Name] = got
		for _, m := range masters {
			switch want := m.Name != down; {
			case got[m.Name] == "":
				problems = append(problems, fmt.Sprintf("%s's haproxy has no backend %s", n.Name, m.Name))
			case want && got[m.Name] != "UP":
				problems = append(problems, fmt.Sprintf("%s's haproxy has %s %s", n.Name, m.Name, got[m.Name]))
			case !want && got[m.Name] != "DOWN":
				problems = append(problems, fmt.Sprintf("%s's haproxy still has %s %s", n.Name, m.Name, got[m.Name]))
			}
		}
		if len(got) != len(masters) {
			problems = append(problems, fmt.Sprintf("%s's haproxy has %d backends, the lab %d masters: %v", n.Name, len(got), len(masters), got))
		}
	}
	if h := l.VIPHolders(); len(h) != 1 || h[0] == down {
		problems = append(problems, fmt.Sprintf("the VIP %s is held by %v, want one master (not %q)", VIP, h, down))
	}
	return problems, backends
}

// CheckLoadBalancers waits until every node's haproxy has every master as
// an UP backend and one master holds the VIP, and checks that every
// node's kubelet and kube-proxy kubeconfig names the node-local endpoint.
// It prints each node's backends and the VIP's holder.
func (l *Lab) CheckLoadBalancers(limit time.Duration) error {
	var backends map[string]map[string]string
	err := poll(limit, time.Second, func() (string, error) {
		var problems []string
		problems, backends = l.lbProblems("")
		return strings.Join(problems, "; "), nil
	})
	for _, n := range l.st.Nodes {
		var list []string
		for _, m := range l.withRole(RoleMaster) {
			list = append(list, m.Name+" "+backends[n.Name][m.Name])
		}
		l.say("    haproxy on %-10s %s", n.Name, strings.Join(list, ", "))
	}
	l.say("    VIP %s held by %v", VIP, l.VIPHolders())
	if err != nil {
		return fmt.Errorf("the API load balancers %w (logs: %s/nodes/<node>/root/var/log/kubernetes/kube-api-{lb,vip}.log)", err, l.Dir)
	}
	var problems []string
	for _, n := range l.st.Nodes {
		for _, kc := range []string{"kubelet.kubeconfig", "kube-proxy.kubeconfig"} {
			c, err := nodes.LoadKubeconfig(filepath.Join(l.nodeDir(n.Name), "root/etc/kubernetes/pki", kc))
			switch {
			case err != nil:
				problems = append(problems, err.Error())
			case c.Server != localAPIURL:
				problems = append(problems, fmt.Sprintf("%s's %s names %s, not the node-local %s", n.Name, kc, c.Server, localAPIURL))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	l.say("    every node's kubelet and kube-proxy kubeconfig: %s", localAPIURL)
	return nil
}

// CheckIdentities checks that each API server has its own identity lease,
// labelled with its master's hostname (each node has its own UTS
// namespace), and that the leader leases name a master. It prints both.
func (l *Lab) CheckIdentities() error {
	out, err := l.kubectl("-n", "kube-system", "get", "leases", "-l", "apiserver.kubernetes.io/identity=kube-apiserver", "-o", "json")
	if err != nil {
		return fmt.Errorf("the API servers' identity leases: %v: %s", err, out)
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return fmt.Errorf("the API servers' identity leases: %v", err)
	}
	var hosts []string
	for _, it := range list.Items {
		hosts = append(hosts, it.Metadata.Labels["kubernetes.io/hostname"])
		l.say("    identity lease %s: hostname %s", it.Metadata.Name, it.Metadata.Labels["kubernetes.io/hostname"])
	}
	sort.Strings(hosts)
	var want []string
	for _, m := range l.withRole(RoleMaster) {
		want = append(want, m.Name)
	}
	var problems []string
	if strings.Join(hosts, ",") != strings.Join(want, ",") {
		problems = append(problems, fmt.Sprintf("the API servers' identity leases name hosts %v, want one per master %v", hosts, want))
	}
	for _, lease := range []string{"kube-controller-manager", "kube-scheduler"} {
		holder, _ := l.kubectl("-n", "kube-system", "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}")
		name, _, _ := strings.Cut(strings.TrimSpace(holder), "_")
		if _, ok := l.st.Node(name); !ok {
			problems = append(problems, fmt.Sprintf("%s's leader %q is no node of the lab", lease, holder))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// FailoverReport is what freezing one master's API server cost.
type FailoverReport struct {
	Master, NewHolder string
	// From the freeze: until every node's haproxy marked it DOWN, and
	// until another master held the VIP.
	LBDown, VIPMoved time.Duration
	// The longest run of failed requests, one every 100 ms (each given
	// 2 s), from the first one's start to the last one's end: through a
	// worker's node-local endpoint (its kubelet's identity) and through the
	// VIP (the admin's); how many requests each made and how many failed.
	LocalGap, VIPGap       time.Duration
	LocalTries, VIPTries   int
	LocalFailed, VIPFailed int
	// After the thaw: until every node's haproxy marked it UP again.
	LBUp time.Duration
}

// FreezeAPIServer freezes (SIGSTOP) the API server of the master that
// holds the VIP for hold, as a master that hangs, while requests go
// through a worker's node-local endpoint and through the VIP; every node
// must stay Ready. Then it thaws it and waits until every load balancer
// has it back.
func (l *Lab) FreezeAPIServer(hold time.Duration) (FailoverReport, error) {
	var rep FailoverReport
	if !l.st.Options.K8S {
		return rep, fmt.Errorf("no Kubernetes in this lab: bring one up with `make lab K8S=1`")
	}
	if err := poll(time.Minute, time.Second, func() (string, error) {
		p, _ := l.lbProblems("")
		return strings.Join(p, "; "), nil
	}); err != nil {
		return rep, fmt.Errorf("before the freeze: %w", err)
	}
	rep.Master = l.VIPHolders()[0]
	pid, err := l.processIn(rep.Master, "kube-apiserver")
	if err != nil {
		return rep, err
	}
	workers := l.workers()
	if len(workers) == 0 {
		return rep, fmt.Errorf("no worker: the node-local endpoint is probed from one")
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

	// Each prober's figures are read once it has stopped.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	type probeStats struct {
		gap           time.Duration
		tries, failed int
	}
	var local, viaVIP probeStats
	prober := func(ns, url string, conf *tls.Config, st *probeStats) {
		defer wg.Done()
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
			// A run of failures lasts from its first request's start (one
			// that timed out counts its whole wait).
			st.failed++
			if since.IsZero() {
				since = sent
			}
			st.gap = max(st.gap, time.Since(since))
		}
	}
	wg.Add(2)
	go prober(l.NodeNS(worker), localAPIURL+"/api/v1/nodes/"+worker, kubelet.TLS, &local)
	go prober(l.masterNS(), admin.Server+"/readyz", admin.TLS, &viaVIP)
	stopProbes := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopProbes()

	l.say("    freezing %s's kube-apiserver (pid %d), the VIP's holder, for %s", rep.Master, pid, hold)
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return rep, err
	}
	thawed := false
	thaw := func() {
		if !thawed {
			syscall.Kill(pid, syscall.SIGCONT)
			thawed = true
		}
	}
	defer thaw()
	err = poll(hold, 100*time.Millisecond, func() (string, error) {
		problems, _ := l.lbProblems(rep.Master)
		if rep.LBDown == 0 && !hasPrefixIn(problems, "haproxy still has "+rep.Master) && !hasPrefixIn(problems, "stats") {
			rep.LBDown = time.Since(start)
		}
		if h := l.VIPHolders(); rep.VIPMoved == 0 && len(h) == 1 && h[0] != rep.Master {
			rep.VIPMoved, rep.NewHolder = time.Since(start), h[0]
		}
		if rep.LBDown == 0 || rep.VIPMoved == 0 {
			return strings.Join(problems, "; "), nil
		}
		return "", nil
	})
	if err != nil {
		return rep, fmt.Errorf("with %s's API server frozen: %w", rep.Master, err)
	}
	l.say("    every haproxy marked it DOWN after %.1fs; the VIP moved to %s after %.1fs", rep.LBDown.Seconds(), rep.NewHolder, rep.VIPMoved.Seconds())
	// Frozen for hold in all: longer than a kubelet's lease renewal, so a
	// kubelet stuck on the frozen master would show.
	time.Sleep(time.Until(start.Add(hold)))
	if err := l.workersReady(); err != nil {
		return rep, fmt.Errorf("with %s's API server frozen for %s: %w", rep.Master, hold, err)
	}
	l.say("    every worker still Ready after %s frozen", hold)
	thaw()
	start = time.Now()
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
	l.say("    thawed: every haproxy marked it UP again after %.1fs", rep.LBUp.Seconds())
	l.say("    requests through %s's node-local endpoint: %d, %d failed, longest failing run %.1fs", worker, rep.LocalTries, rep.LocalFailed, rep.LocalGap.Seconds())
	l.say("    requests through the VIP: %d, %d failed, longest failing run %.1fs", rep.VIPTries, rep.VIPFailed, rep.VIPGap.Seconds())
	return rep, nil
}

func hasPrefixIn(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// workersReady checks through the API (the VIP) that every worker is a
// Ready node.
func (l *Lab) workersReady() error {
	nodes, err := l.KubeNodes()
	if err != nil {
		return err
	}
	var problems []string
	for _, w := range l.workers() {
		if ok, msg := nodes[w.Name].ready(); !ok {
			problems = append(problems, fmt.Sprintf("%s is not Ready: %s", w.Name, msg))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// processIn finds the one process called comm in node's namespace.
func (l *Lab) processIn(node, comm string) (int, error) {
	var found []int
	for _, f := range strings.Fields(mustOut("ip", "netns", "pids", l.NodeNS(node))) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(c)) == comm {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%d processes called %s in %s's namespace, want one: %v", len(found), comm, node, found)
	}
	return found[0], nil
}
