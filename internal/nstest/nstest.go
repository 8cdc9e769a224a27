// Package nstest builds throwaway labs of network namespaces for tests:
// nodes on one bridge (in a switch namespace of its own, so nothing is
// reachable from the root namespace), each with a pod bridge and pod
// namespaces on it. It builds with internal/topology, as the lab does, and
// fails the test on an error. Everything is named after a random lab id
// and removed by the test's cleanup.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/probe"
	"github.com/kubesalt/kubesalt/internal/testenv"
	"github.com/kubesalt/kubesalt/internal/topology"
)

// Lab is one set of namespaces.
type Lab struct {
	t      testing.TB
	ID     string // short random prefix of every name
	Switch string // namespace holding the node network's bridge
	nodes  int
}

// RequireRoot skips the test unless it runs as root with `ip` available.
func RequireRoot(t testing.TB) {
	t.Helper()
	testenv.Root(t, "create network namespaces")
	testenv.Tools(t, "apt-get install iproute2 iputils-ping", "ip", "ping")
}

// New makes an empty lab with its switch namespace and bridge.
func New(t testing.TB) *Lab {
	t.Helper()
	RequireRoot(t)
	b := make([]byte, 3)
	rand.Read(b)
	l := &Lab{t: t, ID: "ks" + hex.EncodeToString(b)}
	l.Switch = l.ID + "-sw"
	t.Cleanup(l.Destroy)
	l.must(topology.Switch(l.Switch))
	return l
}

func (l *Lab) must(err error) {
	l.t.Helper()
	if err != nil {
		l.t.Fatal(err)
	}
}

// With returns the lab reporting failures to t (a subtest must not fail
// its parent).
func (l *Lab) With(t testing.TB) *Lab {
	c := *l
	c.t = t
	return &c
}

// Run runs a command and fails the test with its output on error.
func (l *Lab) Run(name string, args ...string) string {
	l.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// IP runs `ip args...`.
func (l *Lab) IP(args ...string) string { l.t.Helper(); return l.Run("ip", args...) }

// In runs a command inside namespace ns.
func (l *Lab) In(ns string, args ...string) string {
	l.t.Helper()
	return l.Run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// Try runs a command inside ns and reports whether it succeeded.
func (l *Lab) Try(ns string, args ...string) bool {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).Run() == nil
}

// Node is a namespace on the node network with a pod bridge (cbr0).
type Node struct {
	NS   string
	IP   netip.Prefix // host address with the node network's length
	Pod  netip.Prefix // pod CIDR; cbr0 holds its first address
	IP6  netip.Prefix // optional IPv6 host address (dual-stack)
	Pod6 netip.Prefix // optional IPv6 pod CIDR
}

// AddNode creates a node namespace plugged into the switch, with ip
// forwarding on and a pod bridge holding the first address of pod.
func (l *Lab) AddNode(ip, pod netip.Prefix) Node {
	l.t.Helper()
	l.nodes++
	n := Node{NS: fmt.Sprintf("%s-n%d", l.ID, l.nodes), IP: ip, Pod: pod}
	port := fmt.Sprintf("%sn%d", l.ID, l.nodes)
	l.must(topology.Node(l.Switch, port, n.NS, ip))
	l.must(topology.PodBridge(n.NS, podBridge, netip.PrefixFrom(pod.Addr().Next(), pod.Bits())))
	return n
}

// podBridge is each node's pod bridge.
const podBridge = "cbr0"

// AddIPv6 makes node n dual-stack: ip on its eth0, the first address of
// pod on its pod bridge, IPv6 forwarding on. Addresses skip duplicate
// address detection so that they work at once.
func (l *Lab) AddIPv6(n *Node, ip, pod netip.Prefix) {
	l.t.Helper()
	n.IP6, n.Pod6 = ip, pod
	l.In(n.NS, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	l.In(n.NS, "ip", "addr", "add", ip.String(), "dev", "eth0", "nodad")
	l.In(n.NS, "ip", "addr", "add", netip.PrefixFrom(pod.Addr().Next(), pod.Bits()).String(), "dev", podBridge, "nodad")
}

// Pod is a namespace on a node's pod bridge.
type Pod struct {
	NS  string
	IP  netip.Addr
	IP6 netip.Addr // set on a dual-stack node
}

// AddPod creates a pod namespace on node n with the given host number in
// the node's pod CIDR, its default route via the bridge.
func (l *Lab) AddPod(n Node, host int) Pod {
	l.t.Helper()
	addr := n.Pod.Addr()
	for i := 0; i < host; i++ {
		addr = addr.Next()
	}
	p := Pod{NS: fmt.Sprintf("%s-p%d", n.NS, host), IP: addr}
	port := fmt.Sprintf("%sp%d", strings.TrimPrefix(n.NS, l.ID+"-"), host)
	l.must(topology.Pod(n.NS, podBridge, port, p.NS, netip.PrefixFrom(addr, n.Pod.Bits()), n.Pod.Addr().Next()))
	if n.Pod6.IsValid() {
		p.IP6 = n.Pod6.Addr()
		for i := 0; i < host; i++ {
			p.IP6 = p.IP6.Next()
		}
		l.In(p.NS, "ip", "addr", "add", netip.PrefixFrom(p.IP6, n.Pod6.Bits()).String(), "dev", "eth0", "nodad")
		l.In(p.NS, "ip", "-6", "route", "add", "default", "via", n.Pod6.Addr().Next().String())
	}
	return p
}

// Ping reports whether from reaches to with one echo.
func (l *Lab) Ping(from Pod, to netip.Addr) bool {
	return l.Try(from.NS, "ping", "-c", "1", "-W", "2", "-q", to.String())
}

// SourceSeen sends a UDP datagram from pod from to pod to and returns the
// source address the receiver saw.
func (l *Lab) SourceSeen(from, to Pod) (netip.Addr, error) {
	return probe.SourceSeen(from.NS, to.NS, to.IP)
}

// Namespaces lists the lab's namespaces still present.
func (l *Lab) Namespaces() []string {
	out, _ := exec.Command("ip", "netns", "list").Output()
	var mine []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], l.ID+"-") {
			mine = append(mine, f[0])
		}
	}
	return mine
}

// Destroy deletes every namespace of the lab (their links go with them).
// Safe to call twice.
func (l *Lab) Destroy() {
	for _, ns := range l.Namespaces() {
		topology.Delete(ns)
	}
}
