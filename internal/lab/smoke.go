package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/probe"
)

// The smoke test through Kubernetes: a Deployment of the test image spread
// over the workers, a ClusterIP and a NodePort Service in front of it, and
// a Secret (encrypted at rest, kthw.go). Each pod serves
// /whoami (the caller's address as it arrived) and /fetch (the pod itself
// asks another address), so a request from a node to pod A can make A call
// pod B or the Service.

const (
	smokeName = "kubesalt-smoke"
	smokePort = 8080
)

func smokeManifest(replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: default
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 2
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: DoNotSchedule
          labelSelector:
            matchLabels: {app: %[1]s}
      containers:
        - name: pod
          image: %[3]s
          imagePullPolicy: Never
          args: [serve, --port, "%[4]d"]
          ports: [{containerPort: %[4]d}]
          readinessProbe:
            httpGet: {path: /healthz, port: %[4]d}
            periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
  namespace: default
spec:
  type: ClusterIP
  selector: {app: %[1]s}
  ports:
    - port: 80
      targetPort: %[4]d
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s-nodeport
  namespace: default
spec:
  type: NodePort
  selector: {app: %[1]s}
  ports:
    - port: 80
      targetPort: %[4]d
---
apiVersion: v1
kind: Secret
metadata:
  name: %[1]s
  namespace: default
stringData:
  mykey: mydata
`, smokeName, replicas, PodRef, smokePort)
}

// KubePod is one pod of the smoke Deployment.
type KubePod struct {
	Name, Node string
	IP         netip.Addr
}

// DeploySmoke applies the Deployment (two pods per worker) and the
// Service, and waits until every pod is Ready, on every worker.
func (l *Lab) DeploySmoke(limit time.Duration) ([]KubePod, error) {
	workers := l.workers()
	manifest := filepath.Join(l.Dir, smokeName+".yaml")
	if err := os.WriteFile(manifest, []byte(smokeManifest(2*len(workers))), 0o600); err != nil {
		return nil, err
	}
	if out, err := l.kubectl("apply", "-f", manifest); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	var pods []KubePod
	err := poll(limit, 2*time.Second, func() (problem string, _ error) {
		pods, problem = l.smokePods(2 * len(workers))
		return problem, nil
	})
	if err != nil {
		out, _ := l.kubectl("get", "pods", "-o", "wide", "-l", "app="+smokeName)
		return nil, fmt.Errorf("%w\n%s", err, out)
	}
	return pods, nil
}

// smokePods returns the Deployment's pods once want of them are Ready and
// every worker has one; else what is missing.
func (l *Lab) smokePods(want int) ([]KubePod, string) {
	out, err := l.kubectl("get", "pods", "-l", "app="+smokeName, "-o", "json")
	if err != nil {
		return nil, err.Error()
	}
	pods, problem := readyPods(out)
	if problem != "" {
		return nil, problem
	}
	perNode := map[string]int{}
	for _, p := range pods {
		perNode[p.Node]++
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Node+pods[i].Name < pods[j].Node+pods[j].Name })
	if len(pods) < want {
		return nil, fmt.Sprintf("%d of %d pods Ready", len(pods), want)
	}
	for _, w := range l.workers() {
		if perNode[w.Name] == 0 {
			return nil, fmt.Sprintf("no Ready pod on %s", w.Name)
		}
	}
	return pods, ""
}

// whoami is the test image's /whoami answer; fetched wraps one in /fetch.
type whoami struct {
	Pod    string `json:"pod"`
	IP     string `json:"ip"`
	Caller string `json:"caller"`
}

type fetched struct {
	Status int    `json:"status"`
	Body   whoami `json:"body"`
	Error  string `json:"error"`
}

// viaPod asks pod from to GET target's /whoami, from the first master's
// namespace (it routes to every worker's pod CIDR).
func (l *Lab) viaPod(from KubePod, target string) (whoami, error) {
	u := fmt.Sprintf("http://%s/fetch?url=%s", netip.AddrPortFrom(from.IP, smokePort), url.QueryEscape("http://"+target+"/whoami"))
	status, body, err := probe.HTTPGet(l.NodeNS(l.firstMaster()), u, 10*time.Second)
	if err != nil {
		return whoami{}, fmt.Errorf("reaching pod %s: %w", from.Name, err)
	}
	var f fetched
	if jerr := json.Unmarshal(body, &f); jerr != nil {
		return whoami{}, fmt.Errorf("pod %s answered %d: %s", from.Name, status, body)
	}
	if status != 200 || f.Status != 200 {
		return whoami{}, fmt.Errorf("pod %s could not reach %s: %s", from.Name, target, f.Error)
	}
	return f.Body, nil
}

func (l *Lab) firstMaster() string {
	if m := l.withRole(RoleMaster); len(m) > 0 {
		return m[0].Name
	}
	return ""
}

// CheckKubePods checks that each pod's address lies in its node's pod
// CIDR and that every pod reaches every pod on another node by pod address,
// seen there with its own address (no NAT). It prints one line per pair.
func (l *Lab) CheckKubePods(pods []KubePod) (bool, error) {
	cidrs, err := l.podCIDRs()
	if err != nil {
		return false, err
	}
	ok := true
	for _, p := range pods {
		in := false
		for _, c := range cidrs[p.Node] {
			in = in || c.Contains(p.IP)
		}
		mark := "ok"
		if !in {
			mark, ok = "FAILED", false
		}
		l.say("    pod %-34s on %-10s %-15s in its node's pod CIDR %v: %s", p.Name, p.Node, p.IP, cidrs[p.Node], mark)
	}
	for _, a := range pods {
		for _, b := range pods {
			if a.Node == b.Node {
				continue
			}
			got, err := l.viaPod(a, netip.AddrPortFrom(b.IP, smokePort).String())
			detail, mark := fmt.Sprintf("%s saw caller %s", got.Pod, got.Caller), "ok"
			switch {
			case err != nil:
				detail, mark = err.Error(), "FAILED"
			case got.Pod != b.Name || got.Caller != a.IP.String():
				mark = "FAILED"
			}
			ok = ok && mark == "ok"
			l.say("    %-15s (%s) -> %-15s (%s) %-6s %s", a.IP, a.Node, b.IP, b.Node, mark, detail)
		}
	}
	return ok, nil
}

// CheckService asks the Service's ClusterIP from every pod, several times,
// through kube-proxy, once it answers there: every request must reach one
// of the Deployment's pods, and together they must reach more than one.
func (l *Lab) CheckService(pods []KubePod) error {
	ip, err := l.kubectl("get", "service", smokeName, "-o", "jsonpath={.spec.clusterIP}")
	if err != nil {
		return err
	}
	ip = strings.TrimSpace(ip)
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
	}
	reached := map[string]int{}
	var problems []string
	for _, a := range pods {
		// kube-proxy programs a new Service (or a new node's rules) a moment
		// after the API has it, and its endpoints one sync at a time: until
		// then the ClusterIP is unroutable, or leads to one pod only. Wait
		// until a burst from this pod reaches more than one (a kube-proxy
		// that never balances fails the count below).
		poll(30*time.Second, time.Second, func() (string, error) {
			seen := map[string]bool{}
			for i := 0; i < 8 && len(seen) < min(2, len(pods)); i++ {
				got, err := l.viaPod(a, ip+":80")
				if err != nil {
					return err.Error(), nil
				}
				seen[got.Pod] = true
			}
			if len(seen) < min(2, len(pods)) {
				return fmt.Sprintf("the Service led %s to one pod only", a.Name), nil
			}
			return "", nil
		})
		for i := 0; i < 4; i++ {
			got, err := l.viaPod(a, ip+":80")
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			if !names[got.Pod] {
				problems = append(problems, fmt.Sprintf("%s reached %q, not a pod of the Service", a.Name, got.Pod))
			}
			reached[got.Pod]++
		}
	}
	l.say("    Service %s (ClusterIP %s:80) from every pod, 4 times each: answered by %d pods %v", smokeName, ip, len(reached), reached)
	if len(problems) > 0 {
		return fmt.Errorf("the Service failed: %s", strings.Join(problems, "; "))
	}
	if len(reached) < 2 {
		return fmt.Errorf("every request to the Service reached the same pod: kube-proxy is not balancing")
	}
	return nil
}
