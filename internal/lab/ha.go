package lab

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/etcdmembers"
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

// vipLogFrom returns a function that reads what the one master in holders
// has logged to its keepalived log (kube-api-vip) since now; "" for no
// single holder.
func (l *Lab) vipLogFrom(holders []string) func() string {
	if len(holders) != 1 {
		return func() string { return "" }
	}
	path := filepath.Join(l.nodeDir(holders[0]), "root/var/log/kubernetes/kube-api-vip.log")
	var from int64
	if fi, err := os.Stat(path); err == nil {
		from = fi.Size()
	}
	return func() string {
		b, err := os.ReadFile(path)
		if err != nil || int64(len(b)) < from {
			return fmt.Sprintf("(%s: %v)", path, err)
		}
		return string(b[from:])
	}
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
	name := comm
	if len(name) > 15 {
		name = name[:15] // the kernel keeps 15 bytes of a command's name
	}
	var found []int
	for _, f := range strings.Fields(mustOut("ip", "netns", "pids", l.NodeNS(node))) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(c)) == name {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%d processes called %s in %s's namespace, want one: %v", len(found), comm, node, found)
	}
	return found[0], nil
}

// waitMasters waits until the lab's masters agree with the definition
// after a master came or went (gone, if one went): etcd's members are
// exactly them, every node's haproxy has them (all UP) and no other
// backend, one of them holds the VIP, their API server certificate names
// every one of them and not gone's address, their keepalived configs name
// no peer at gone's address. It prints what it found.
func (l *Lab) waitMasters(gone *Node, limit time.Duration) error {
	var members []string
	err := poll(limit, 2*time.Second, func() (string, error) {
		var problems []string
		members, problems = l.mastersProblems(gone)
		return strings.Join(problems, "; "), nil
	})
	l.say("    etcd members: %v", members)
	for _, node := range l.st.Nodes {
		got, _ := l.Backends(node.Name)
		l.say("    haproxy on %-10s %v", node.Name, got)
	}
	l.say("    VIP %s held by %v", VIP, l.VIPHolders())
	for _, m := range l.withRole(RoleMaster) {
		ips, _ := certIPs(filepath.Join(l.nodeDir(m.Name), "root/etc/kubernetes/pki/kube-apiserver.pem"))
		l.say("    %s's API server certificate: IP SANs %v", m.Name, ips)
	}
	if err != nil {
		return fmt.Errorf("the masters %w (see %s/master/master.log)", err, l.Dir)
	}
	return nil
}

func (l *Lab) mastersProblems(gone *Node) (members []string, problems []string) {
	masters := l.withRole(RoleMaster)
	var names []string
	for _, m := range masters {
		names = append(names, m.Name)
	}
	out, err := l.etcdctl(names[0], names, "member", "list", "-w", "json")
	if err != nil {
		problems = append(problems, fmt.Sprintf("etcdctl member list: %v: %s", err, out))
	} else if list, err := etcdmembers.Parse([]byte(out)); err != nil {
		problems = append(problems, err.Error())
	} else {
		for _, m := range list {
			members = append(members, m.Name)
		}
		if strings.Join(members, ",") != strings.Join(names, ",") {
			problems = append(problems, fmt.Sprintf("etcd's members are %v, want %v", members, names))
		}
	}
	lb, _ := l.lbProblems("")
	problems = append(problems, lb...)
	for _, m := range masters {
		root := filepath.Join(l.nodeDir(m.Name), "root/etc/kubernetes")
		ips, err := certIPs(filepath.Join(root, "pki/kube-apiserver.pem"))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s's API server certificate: %v", m.Name, err))
			continue
		}
		for _, o := range masters {
			if !slices.Contains(ips, o.IP) {
				problems = append(problems, fmt.Sprintf("%s's API server certificate does not name %s (%s)", m.Name, o.Name, o.IP))
			}
		}
		// What it serves, not only the file: it was restarted and runs.
		served, err := l.servedIPs(m)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s's API server: %v", m.Name, err))
		case !slices.Equal(served, ips):
			problems = append(problems, fmt.Sprintf("%s's API server serves a certificate for %v, its file names %v", m.Name, served, ips))
		}
		if gone == nil {
			continue
		}
		if slices.Contains(ips, gone.IP) {
			problems = append(problems, fmt.Sprintf("%s's API server certificate still names %s (%s)", m.Name, gone.Name, gone.IP))
		}
		conf, err := os.ReadFile(filepath.Join(root, "keepalived.conf"))
		if err != nil || slices.Contains(strings.Fields(string(conf)), gone.IP.String()) {
			problems = append(problems, fmt.Sprintf("%s's keepalived.conf still names %s as a peer (%v)", m.Name, gone.IP, err))
		}
	}
	return members, problems
}

// servedIPs asks master m's API server for /readyz (as the admin, from
// the salt-master's namespace) and returns the IP SANs of the certificate
// it served.
func (l *Lab) servedIPs(m Node) ([]netip.Addr, error) {
	admin, err := nodes.LoadKubeconfig(filepath.Join(l.PKIDir(), "admin.kubeconfig"))
	if err != nil {
		return nil, err
	}
	conf := admin.TLS.Clone()
	conf.ServerName = m.IP.String()
	var ips []netip.Addr
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		ips = nil
		for _, ip := range cs.PeerCertificates[0].IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok {
				ips = append(ips, a.Unmap())
			}
		}
		return nil
	}
	code, body, err := probe.HTTPSGet(l.masterNS(), cluster.HTTPSURL(m.IP.String(), 6443)+"/readyz", conf, 3*time.Second)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("/readyz: HTTP %d: %s", code, body)
	}
	sortAddrs(ips)
	return ips, nil
}

func sortAddrs(a []netip.Addr) { slices.SortFunc(a, func(x, y netip.Addr) int { return x.Compare(y) }) }

// certIPs reads a PEM certificate's IP SANs.
func certIPs(path string) ([]netip.Addr, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var out []netip.Addr
	for _, ip := range cert.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	sortAddrs(out)
	return out, nil
}
