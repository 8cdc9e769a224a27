package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/probe"
)

// The rest of Kubernetes The Hard Way's smoke test (its chapter "Smoke
// Test"), on the smoke Deployment: Secrets encrypted at rest, the
// Deployment rolled out, port-forward, logs, exec, a NodePort Service on
// every worker, and the cluster DNS: a pod reaches a Service by name. Each
// check prints a line; the first problem fails it.

// CheckEncryption reads the smoke Secret raw from etcd (etcdctl with the
// API server's etcd client certificate): it must be aescbc-encrypted.
func (l *Lab) CheckEncryption() error {
	first := l.firstMaster()
	pki := l.nodeDir(first) + "/root/etc/kubernetes/pki"
	key := "/registry/secrets/default/" + smokeName
	out, err := l.in(l.NodeNS(first), l.builtBin("etcdctl"), "--endpoints", fmt.Sprintf("https://%s:2379", l.nodeIP(first)),
		"--cacert", pki+"/ca.pem", "--cert", pki+"/kube-apiserver-etcd-client.pem", "--key", pki+"/kube-apiserver-etcd-client-key.pem",
		"get", key, "--print-value-only")
	if err != nil {
		return fmt.Errorf("etcdctl get %s: %v", key, err)
	}
	const want = "k8s:enc:aescbc:v1:"
	head := out
	if len(head) > len(want)+8 {
		head = head[:len(want)+8]
	}
	l.say("    etcd %s starts with %q", key, head)
	if !strings.HasPrefix(out, want) {
		return fmt.Errorf("the Secret %s is stored in etcd as %q..., not encrypted (%s...): check the API server's --encryption-provider-config", smokeName, head, want)
	}
	if strings.Contains(out, "mydata") {
		return fmt.Errorf("the Secret's value shows in clear in etcd")
	}
	return nil
}

func (l *Lab) nodeIP(name string) netip.Addr {
	for _, n := range l.st.Nodes {
		if n.Name == name {
			return n.IP
		}
	}
	return netip.Addr{}
}

// CheckRollout: kubectl rollout status of the smoke Deployment.
func (l *Lab) CheckRollout() error {
	out, err := l.kubectl("rollout", "status", "deployment/"+smokeName, "--timeout", "60s")
	l.say("    kubectl rollout status deployment/%s: %s", smokeName, strings.TrimSpace(out))
	if err != nil || !strings.Contains(out, "successfully rolled out") {
		return fmt.Errorf("deployment %s did not roll out: %v %s", smokeName, err, out)
	}
	return nil
}

// forwarding is kubectl port-forward's line that names its local port.
var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> `)

// CheckPortForward runs kubectl port-forward to pod in the salt-master's
// namespace and asks the forwarded port for /whoami: pod must answer.
func (l *Lab) CheckPortForward(pod KubePod) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.masterNS(), l.k8sBin("kubectl"), "--kubeconfig", l.PKIDir()+"/admin.kubeconfig",
		"port-forward", "pod/"+pod.Name, fmt.Sprintf(":%d", smokePort))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cancel(); cmd.Wait() }()
	port := ""
	sc := bufio.NewScanner(stdout)
	for port == "" && sc.Scan() {
		if m := forwarding.FindStringSubmatch(sc.Text()); m != nil {
			port = m[1]
		}
	}
	if port == "" {
		cancel()
		cmd.Wait()
		return fmt.Errorf("kubectl port-forward pod/%s printed no local port: %s", pod.Name, strings.TrimSpace(stderr.String()))
	}
	go func() { // keep draining its stdout: one line per connection
		for sc.Scan() {
		}
	}()
	status, body, err := probe.HTTPGet(l.masterNS(), "http://127.0.0.1:"+port+"/whoami", 10*time.Second)
	var got whoami
	if err == nil {
		err = json.Unmarshal(body, &got)
	}
	l.say("    kubectl port-forward pod/%s 127.0.0.1:%s -> %d: HTTP %d from %s", pod.Name, port, smokePort, status, got.Pod)
	if err != nil || status != 200 || got.Pod != pod.Name {
		return fmt.Errorf("port-forward to %s: HTTP %d %s %v (kubectl: %s)", pod.Name, status, body, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// CheckLogs: kubectl logs shows the pod's own start line.
func (l *Lab) CheckLogs(pod KubePod) error {
	out, err := l.kubectl("logs", pod.Name)
	want := fmt.Sprintf("pod %s serving on", pod.Name)
	first, _, _ := strings.Cut(out, "\n")
	l.say("    kubectl logs %s: %s", pod.Name, strings.TrimSpace(first))
	if err != nil || !strings.Contains(out, want) {
		return fmt.Errorf("kubectl logs %s lacks %q: %v %s", pod.Name, want, err, out)
	}
	return nil
}

// CheckExec: kubectl exec runs the image's one binary in the pod.
func (l *Lab) CheckExec(pod KubePod) error {
	out, err := l.kubectl("exec", pod.Name, "--", "/kubesalt-pod", "version")
	l.say("    kubectl exec %s -- /kubesalt-pod version: %s", pod.Name, strings.TrimSpace(out))
	// kubectl's own stderr (e.g. "Unknown stream id 1, discarding message"
	// from its websocket) may come first in the combined output.
	if err != nil || !regexp.MustCompile(`(?m)^kubesalt-pod `).MatchString(out) {
		return fmt.Errorf("kubectl exec in %s: %v %s", pod.Name, err, out)
	}
	return nil
}

// CheckNodePort asks the NodePort Service on every worker's address, from
// the first master's namespace: each must answer from a smoke pod.
func (l *Lab) CheckNodePort(pods []KubePod) error {
	out, err := l.kubectl("get", "service", smokeName+"-nodeport", "-o", "jsonpath={.spec.ports[0].nodePort}")
	port := strings.TrimSpace(out)
	if err != nil || port == "" {
		return fmt.Errorf("service %s-nodeport has no node port: %v %s", smokeName, err, out)
	}
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
	}
	var problems []string
	for _, w := range l.workers() {
		u := fmt.Sprintf("http://%s:%s/whoami", w.IP, port)
		var got whoami
		// kube-proxy programs a new Service a moment after the API has it.
		err := poll(30*time.Second, time.Second, func() (string, error) {
			status, body, err := probe.HTTPGet(l.NodeNS(l.firstMaster()), u, 5*time.Second)
			if err != nil {
				return err.Error(), nil
			}
			if jerr := json.Unmarshal(body, &got); status != 200 || jerr != nil {
				return fmt.Sprintf("HTTP %d %s", status, body), nil
			}
			return "", nil
		})
		l.say("    NodePort %-21s answered by %s", strings.TrimPrefix(u, "http://"), got.Pod)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", u, err))
		case !names[got.Pod]:
			problems = append(problems, fmt.Sprintf("%s answered from %q, not a smoke pod", u, got.Pod))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the NodePort Service failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// CheckDNSAddon waits until the cluster DNS has its replicas Ready, on
// different workers where there are several, behind the Service at
// cluster_dns; it prints them.
func (l *Lab) CheckDNSAddon(limit time.Duration) error {
	var pods []KubePod
	err := poll(limit, 2*time.Second, func() (string, error) {
		out, err := l.kubectl("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json")
		if err != nil {
			return err.Error(), nil
		}
		var problem string
		if pods, problem = readyPods(out); problem != "" {
			return problem, nil
		}
		nodes := map[string]bool{}
		for _, p := range pods {
			nodes[p.Node] = true
		}
		switch {
		case len(pods) < 2:
			return fmt.Sprintf("%d of 2 CoreDNS pods Ready", len(pods)), nil
		case len(l.workers()) > 1 && len(nodes) < 2:
			return "both CoreDNS pods on one worker", nil
		}
		return "", nil
	})
	for _, p := range pods {
		l.say("    CoreDNS pod %-30s on %-10s %s", p.Name, p.Node, p.IP)
	}
	if err != nil {
		out, _ := l.kubectl("-n", "kube-system", "get", "deploy,pods", "-o", "wide")
		return fmt.Errorf("cluster DNS: %w\n%s", err, out)
	}
	ip, err := l.kubectl("-n", "kube-system", "get", "service", "kube-dns", "-o", "jsonpath={.spec.clusterIP}")
	l.say("    Service kube-system/kube-dns at %s", strings.TrimSpace(ip))
	if err != nil || strings.TrimSpace(ip) != "10.32.0.10" {
		return fmt.Errorf("the kube-dns Service is at %q, not the cluster_dns 10.32.0.10: %v", ip, err)
	}
	return nil
}

// readyPods reads `kubectl get pods -o json`: the Ready pods, or why none.
func readyPods(js string) ([]KubePod, string) {
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string  `json:"name"`
				DeletionTimestamp *string `json:"deletionTimestamp"`
			} `json:"metadata"`
			Spec struct {
				NodeName string `json:"nodeName"`
			} `json:"spec"`
			Status struct {
				PodIP      string `json:"podIP"`
				Conditions []struct{ Type, Status string }
			} `json:"status"`
		}
	}
	if err := json.Unmarshal([]byte(js), &list); err != nil {
		return nil, err.Error()
	}
	var pods []KubePod
	for _, p := range list.Items {
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || c.Type == "Ready" && c.Status == "True"
		}
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if p.Metadata.DeletionTimestamp == nil && ready && err == nil {
			pods = append(pods, KubePod{Name: p.Metadata.Name, Node: p.Spec.NodeName, IP: ip})
		}
	}
	return pods, ""
}

// CheckDNS: one pod per worker asks the smoke Service by its full name and
// by its short name (the pod's search path, from the kubelet's
// clusterDomain), through the cluster DNS; a smoke pod must answer.
func (l *Lab) CheckDNS(pods []KubePod) error {
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
	}
	seen := map[string]bool{}
	var problems []string
	for _, a := range pods {
		if seen[a.Node] {
			continue
		}
		seen[a.Node] = true
		for _, host := range []string{smokeName + ".default.svc.cluster.local", smokeName} {
			var got whoami
			// kube-proxy programs a new Service's rules a moment after the
			// API has its endpoints.
			err := poll(30*time.Second, time.Second, func() (string, error) {
				var err error
				if got, err = l.viaPod(a, host); err != nil {
					return err.Error(), nil
				}
				return "", nil
			})
			mark := "ok"
			if err != nil || !names[got.Pod] {
				mark = "FAILED"
				problems = append(problems, fmt.Sprintf("%s could not reach http://%s/ by name: %v", a.Name, host, err))
			}
			l.say("    %-34s (%s) -> http://%s/ %-6s answered by %s", a.Name, a.Node, host, mark, got.Pod)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("DNS: %s (the pods' resolv.conf points at cluster_dns; is CoreDNS answering? kubectl -n kube-system logs -l k8s-app=kube-dns)", strings.Join(problems, "; "))
	}
	return nil
}
