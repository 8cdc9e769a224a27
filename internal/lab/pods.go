package lab

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/kubesalt/kubesalt/internal/probe"
	"github.com/kubesalt/kubesalt/internal/topology"
)

// Pod is a network namespace on a node's pod bridge, addressed from the
// node's pod CIDR, as the CNI bridge plugin would make it.
type Pod struct {
	Node string
	NS   string
	IP   netip.Addr
}

// AddPod makes (or finds) the pod of node on bridge cni0, whose address is
// the first of cidr, with the pod at the second address.
func (l *Lab) AddPod(node string, cidr netip.Prefix) (Pod, error) {
	nodeNS := l.NodeNS(node)
	gw := cidr.Addr().Next()
	p := Pod{Node: node, NS: l.st.ID + "-pod-" + node, IP: gw.Next()}
	if l.st.Pods[p.NS] {
		return p, nil
	}
	if _, err := l.in(nodeNS, "ip", "link", "show", podBridge); err != nil {
		if err := topology.PodBridge(nodeNS, podBridge, netip.PrefixFrom(gw, cidr.Bits())); err != nil {
			return Pod{}, err
		}
	}
	l.st.Pods[p.NS] = true
	if err := l.record(p.NS); err != nil {
		return Pod{}, err
	}
	if err := topology.Pod(nodeNS, podBridge, "vpod", p.NS, netip.PrefixFrom(p.IP, cidr.Bits()), gw); err != nil {
		return Pod{}, err
	}
	return p, nil
}

// podBridge is a node's pod bridge, named as the CNI bridge plugin's.
const podBridge = "cni0"

// PairResult is one pod-to-pod check.
type PairResult struct {
	From, To string
	Reached  bool
	Source   netip.Addr // the source address the receiving pod saw
	Err      string
}

// OK reports whether the pair reached each other without NAT.
func (r PairResult) OK(from Pod) bool { return r.Reached && r.Source == from.IP }

// CheckPods pings every pod from every other pod and sends one UDP
// datagram each way to see the source address the receiver gets.
func (l *Lab) CheckPods(pods []Pod) []PairResult {
	sort.Slice(pods, func(i, j int) bool { return pods[i].Node < pods[j].Node })
	var out []PairResult
	for _, a := range pods {
		l.keepNeighborRoom(pods)
		for _, b := range pods {
			if a.Node == b.Node {
				continue
			}
			r := PairResult{From: a.Node, To: b.Node}
			_, err := l.in(a.NS, "ping", "-c", "1", "-W", "2", "-q", b.IP.String())
			r.Reached = err == nil
			if src, err := probe.SourceSeen(a.NS, b.NS, b.IP); err != nil {
				r.Err = err.Error()
			} else {
				r.Source = src
			}
			out = append(out, r)
		}
	}
	return out
}

// PrintPairs writes the matrix for people and reports whether all passed.
func (l *Lab) PrintPairs(pods []Pod, results []PairResult) bool {
	byNode := map[string]Pod{}
	for _, p := range pods {
		byNode[p.Node] = p
	}
	ok := true
	for _, r := range results {
		mark := "ok"
		if !r.OK(byNode[r.From]) {
			mark, ok = "FAILED", false
		}
		detail := fmt.Sprintf("receiver saw %s", r.Source)
		if r.Err != "" {
			detail = r.Err
		}
		l.say("    pod %-16s -> pod %-16s %-6s %s", r.From+" "+byNode[r.From].IP.String(), r.To+" "+byNode[r.To].IP.String(), mark, detail)
	}
	return ok
}

// keepNeighborRoom empties the nodes' neighbor caches on their node
// network link when the kernel's neighbor table is three quarters full.
// Every namespace of the lab shares one table (gc_thresh3 entries, 1,024
// by default): the check's full mesh at 50 nodes needs over 2,000 (each
// node learns every other), and past the limit the kernel drops packets
// ("neighbor table overflow"). A real node has a table of its own.
// Emptying a cache changes no route; its entries are learnt again.
func (l *Lab) keepNeighborRoom(pods []Pod) {
	limit, used, err := neighborTable()
	if err != nil || used < limit*3/4 {
		return
	}
	for _, p := range pods {
		l.in(l.NodeNS(p.Node), "ip", "neigh", "flush", "dev", "eth0")
	}
	_, after, _ := neighborTable()
	l.say("    the kernel's neighbor table (shared by every namespace) held %d of %d entries: emptied the nodes' caches on eth0 (%d now)", used, limit, after)
}

// neighborTable reads the IPv4 neighbor table's hard limit (gc_thresh3)
// and the entries it holds now.
func neighborTable() (limit, used int, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
	if err != nil {
		return 0, 0, err
	}
	if limit, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		return 0, 0, err
	}
	b, err = os.ReadFile("/proc/net/stat/arp_cache")
	if err != nil {
		return 0, 0, err
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 || len(strings.Fields(lines[1])) == 0 {
		return 0, 0, fmt.Errorf("/proc/net/stat/arp_cache: no counters")
	}
	n, err := strconv.ParseInt(strings.Fields(lines[1])[0], 16, 64)
	return limit, int(n), err
}
