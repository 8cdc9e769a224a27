// Package nodes is kubesalt's side of the API's Node objects. In
// controller mode it discovers the nodes and the pod CIDRs
// kube-controller-manager allocated (`kubectl get nodes -o json`), as a
// node list that route sync takes as is. In planned mode it sets each
// node's Node.spec.podCIDRs to the plan (ComparePodCIDRs, pure, then
// Client.SetPodCIDRs), talking to the API with net/http as a kubeconfig
// says.
package nodes

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/tidwall/gjson"
)

// Problem is a node that cannot be routed yet, and why.
type Problem struct {
	Node    string `json:"node"`
	Problem string `json:"problem"`
}

// Parse reads a NodeList (or a single Node) as kubectl prints it. Nodes
// without an InternalIP or a pod CIDR are listed (with what they have) and
// reported as problems, never silently dropped.
func Parse(data []byte) ([]cluster.Member, []Problem, error) {
	if !gjson.ValidBytes(data) {
		return nil, nil, fmt.Errorf("the node list is not valid JSON; give the output of `kubectl get nodes -o json`")
	}
	doc := gjson.ParseBytes(data)
	var items []gjson.Result
	switch kind := doc.Get("kind").String(); {
	case kind == "Node":
		items = []gjson.Result{doc}
	case doc.Get("items").IsArray():
		items = doc.Get("items").Array()
	default:
		return nil, nil, fmt.Errorf("the JSON is a %q, not a NodeList; give the output of `kubectl get nodes -o json`", kind)
	}
	members := []cluster.Member{}
	problems := []Problem{}
	for i, it := range items {
		name := it.Get("metadata.name").String()
		if name == "" {
			problems = append(problems, Problem{Node: fmt.Sprintf("items[%d]", i), Problem: "has no metadata.name; skipped"})
			continue
		}
		m := cluster.Member{Name: name, Role: role(it), IPs: []netip.Addr{}, PodCIDRs: []netip.Prefix{}}
		for _, a := range it.Get("status.addresses").Array() {
			if a.Get("type").String() != "InternalIP" {
				continue
			}
			ip, err := netip.ParseAddr(a.Get("address").String())
			if err != nil {
				problems = append(problems, Problem{Node: name, Problem: fmt.Sprintf("InternalIP %q is not an IP address", a.Get("address").String())})
				continue
			}
			m.IPs = append(m.IPs, ip)
		}
		cidrs := it.Get("spec.podCIDRs").Array()
		if len(cidrs) == 0 && it.Get("spec.podCIDR").Exists() {
			cidrs = []gjson.Result{it.Get("spec.podCIDR")}
		}
		for _, c := range cidrs {
			p, err := netip.ParsePrefix(c.String())
			if err != nil || p.Masked() != p {
				problems = append(problems, Problem{Node: name, Problem: fmt.Sprintf("pod CIDR %q is not a network CIDR", c.String())})
				continue
			}
			m.PodCIDRs = append(m.PodCIDRs, p)
		}
		if len(m.IPs) == 0 {
			problems = append(problems, Problem{Node: name, Problem: "has no InternalIP in status.addresses; it cannot be routed until the kubelet reports one"})
		}
		if len(m.PodCIDRs) == 0 {
			problems = append(problems, Problem{Node: name, Problem: "has no spec.podCIDR(s) yet; kube-controller-manager has not allocated one (is --allocate-node-cidrs=true?)"})
		}
		members = append(members, m)
	}
	return members, problems, nil
}

func role(it gjson.Result) string {
	labels := it.Get("metadata.labels")
	for _, k := range []string{`node-role\.kubernetes\.io/control-plane`, `node-role\.kubernetes\.io/master`} {
		if labels.Get(k).Exists() {
			return cluster.RoleMaster
		}
	}
	return cluster.RoleWorker
}

// Kubectl runs `kubectl get nodes -o json` and returns its output.
func Kubectl(ctx context.Context, kubectl, kubeconfig string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"get", "nodes", "-o", "json"}
	if kubeconfig != "" {
		args = append([]string{"--kubeconfig", kubeconfig}, args...)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kubectl, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s get nodes: no answer within %s; is the API server up?", kubectl, timeout)
		}
		return nil, fmt.Errorf("%s get nodes: %v: %s", kubectl, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}
