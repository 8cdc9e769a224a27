package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/dnsload"
)

// The DNS benchmark: queries per second one CoreDNS replica answers to a
// pod (kubesalt-pod dnsload, run in a smoke pod by kubectl exec), beside
// the same load against the node's resolver. The lab's nodes share the
// host's /etc/resolv.conf but its switch reaches nothing outside (net.go),
// so that resolver is asked from the host, by the same binary.

// DNSBench is one measurement: CoreDNS's and the resolver's.
type DNSBench struct {
	Query            string
	CoreDNS, Node    dnsload.Result
	CoreDNSPod, From string
	Duration         time.Duration
	Concurrency      int
}

// BenchDNS runs the load for d against one CoreDNS pod, then the node's
// resolver, and prints them side by side with the ratio.
func (l *Lab) BenchDNS(d time.Duration, concurrency int) (DNSBench, error) {
	b := DNSBench{Query: "kubernetes.default.svc.cluster.local", Duration: d, Concurrency: concurrency}
	out, err := l.kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json")
	if err != nil {
		return b, err
	}
	dns, problem := readyPods(out)
	if len(dns) == 0 {
		return b, fmt.Errorf("no Ready CoreDNS pod %s: run the lab with K8S=1", problem)
	}
	pods, problem := l.smokePods(1)
	if len(pods) == 0 {
		return b, fmt.Errorf("no smoke pod to run the load from: %s", problem)
	}
	b.CoreDNSPod, b.From = dns[0].Name+" on "+dns[0].Node, pods[0].Name+" on "+pods[0].Node
	args := []string{"--name", b.Query, "--duration", d.String(), "--concurrency", fmt.Sprint(concurrency)}
	out, err = l.kubectl(append([]string{"exec", pods[0].Name, "--", "/kubesalt-pod", "dnsload",
		"--server", netip.AddrPortFrom(dns[0].IP, 53).String()}, args...)...)
	if b.CoreDNS, err = loadResult(out, err); err != nil {
		return b, fmt.Errorf("dnsload against CoreDNS from %s: %w", pods[0].Name, err)
	}
	resolver, err := hostResolver()
	if err != nil {
		return b, err
	}
	out, err = run(filepath.Join(l.Repo, "bin/kubesalt-pod"), append([]string{"dnsload", "--server", resolver}, args...)...)
	if b.Node, err = loadResult(out, err); err != nil {
		return b, fmt.Errorf("dnsload against the node's resolver %s: %w", resolver, err)
	}
	l.say("    DNS: %s A, %s, %d queries in flight", b.Query, d, concurrency)
	l.say("    %-44s %9s %8s %8s %8s  %s", "server", "answers/s", "p50 ms", "p99 ms", "timeouts", "rcodes")
	for _, r := range []struct {
		what string
		res  dnsload.Result
	}{{"CoreDNS pod " + b.CoreDNS.Server + " (from a pod)", b.CoreDNS}, {"node's resolver " + b.Node.Server + " (from the host)", b.Node}} {
		l.say("    %-44s %9.0f %8.2f %8.2f %8d  %v", r.what, r.res.QPS, r.res.P50ms, r.res.P99ms, r.res.Timeouts, r.res.Rcodes)
	}
	l.say("    CoreDNS answers %.2fx the node's resolver's rate", b.CoreDNS.QPS/b.Node.QPS)
	return b, nil
}

// loadResult reads dnsload's JSON result.
func loadResult(out string, runErr error) (dnsload.Result, error) {
	var res struct {
		Result  *bool          `json:"result"`
		Comment string         `json:"comment"`
		Data    dnsload.Result `json:"data"`
	}
	if i := strings.Index(out, "{"); i >= 0 {
		out = out[i:]
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return dnsload.Result{}, fmt.Errorf("%v: %s", runErr, out)
	}
	if res.Result == nil || !*res.Result {
		return res.Data, fmt.Errorf("%s", res.Comment)
	}
	return res.Data, nil
}

// hostResolver is the first nameserver of the host's /etc/resolv.conf.
func hostResolver() (string, error) {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" {
			if ip, err := netip.ParseAddr(f[1]); err == nil {
				return netip.AddrPortFrom(ip, 53).String(), nil
			}
		}
	}
	return "", fmt.Errorf("/etc/resolv.conf names no nameserver: this machine has no resolver to compare CoreDNS with")
}
