package lab

import (
	"fmt"
	"net/netip"
	"sort"

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
