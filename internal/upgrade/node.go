package upgrade

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/nodes"
)

// Probe reads, on one node, the versions its Kubernetes components run
// (not the binaries on disk: a binary replaced but not restarted still
// runs the old version) and whether they are healthy.
type Probe struct {
	Name, Role string
	// API: the node's kubeconfig (a master's admin.kubeconfig with its
	// server set to the API server beside it; a worker's kubelet.kubeconfig).
	API *nodes.APIConfig
	// ProxyMetrics: kube-proxy's metrics URL (a worker), whose
	// kubernetes_build_info says the version it runs.
	ProxyMetrics string
	// Etcdctl and its flags, for a master's etcd member.
	Etcdctl                                 string
	EtcdEndpoint, CACert, EtcdCert, EtcdKey string
	Timeout                                 time.Duration
}

// NodeState is what a Probe found.
type NodeState struct {
	Node
	// Components: each component's version, as it reports it.
	Components map[string]string `json:"components"`
	// Ready: the API server answers /readyz (master), the Node is Ready
	// (worker).
	Ready bool `json:"ready"`
}

// Read probes the node once. Every failure is kept in Problem; the result
// is still returned (an unknown version is "").
func (p Probe) Read(ctx context.Context) NodeState {
	st := NodeState{Node: Node{Name: p.Name, Role: p.Role, Reachable: true}, Components: map[string]string{}}
	var problems []string
	client := nodes.NewClient(p.API, p.Timeout)
	switch p.Role {
	case RoleMaster:
		if v, err := apiVersion(ctx, client); err != nil {
			problems = append(problems, "kube-apiserver: "+err.Error())
		} else {
			st.Components["kube-apiserver"] = v
			st.Version = v
		}
		if _, err := client.Get(ctx, "/readyz"); err != nil {
			problems = append(problems, "kube-apiserver /readyz: "+err.Error())
		} else {
			st.Ready = true
		}
		healthy, err := p.etcdHealth(ctx)
		st.EtcdHealthy = &healthy
		if err != nil {
			problems = append(problems, "etcd: "+err.Error())
		}
	case RoleWorker:
		kubelet, ready, err := nodeInfo(ctx, client, p.Name)
		if err != nil {
			problems = append(problems, "kubelet: "+err.Error())
		} else {
			st.Components["kubelet"] = kubelet
			st.Ready = ready
			if !ready {
				problems = append(problems, "kubelet: the Node is not Ready")
			}
		}
		proxy, err := proxyVersion(ctx, p.ProxyMetrics, p.Timeout)
		if err != nil {
			problems = append(problems, "kube-proxy: "+err.Error())
		} else {
			st.Components["kube-proxy"] = proxy
		}
		st.Version = oldest(kubelet, proxy)
	}
	st.Problem = strings.Join(problems, "; ")
	return st
}

// oldest is the older of two versions, or "" when either is unknown.
func oldest(a, b string) string {
	va, ea := ParseVersion(a)
	vb, eb := ParseVersion(b)
	switch {
	case ea != nil || eb != nil:
		return ""
	case va.Compare(vb) <= 0:
		return a
	default:
		return b
	}
}

func apiVersion(ctx context.Context, c *nodes.Client) (string, error) {
	data, err := c.Get(ctx, "/version")
	if err != nil {
		return "", err
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(data, &v); err != nil || v.GitVersion == "" {
		return "", fmt.Errorf("/version answered %.100q, not a version", data)
	}
	return v.GitVersion, nil
}

// nodeInfo reads the kubelet's version and the Ready condition from the
// node's own Node object (the kubelet's credentials may read it).
func nodeInfo(ctx context.Context, c *nodes.Client, name string) (string, bool, error) {
	data, err := c.Get(ctx, "/api/v1/nodes/"+name)
	if err != nil {
		return "", false, err
	}
	var n struct {
		Status struct {
			NodeInfo struct {
				KubeletVersion string `json:"kubeletVersion"`
			} `json:"nodeInfo"`
			Conditions []struct{ Type, Status string } `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(data, &n); err != nil {
		return "", false, fmt.Errorf("the Node %s: %v", name, err)
	}
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			ready = c.Status == "True"
		}
	}
	return n.Status.NodeInfo.KubeletVersion, ready, nil
}

var buildInfo = regexp.MustCompile(`^kubernetes_build_info\{.*git_version="([^"]+)"`)

// proxyVersion reads kube-proxy's version from its metrics (the Node's
// kubeProxyVersion is no longer set).
func proxyVersion(ctx context.Context, url string, timeout time.Duration) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return "", fmt.Errorf("%v; is kube-proxy running?", err)
	}
	defer resp.Body.Close()
	return parseBuildInfo(io.LimitReader(resp.Body, 64<<20))
}

func parseBuildInfo(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if m := buildInfo.FindStringSubmatch(sc.Text()); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("no kubernetes_build_info in its metrics")
}

// etcdHealth asks this master's etcd member for its health.
func (p Probe) etcdHealth(ctx context.Context) (bool, error) {
	args := []string{"--endpoints=" + p.EtcdEndpoint, "--dial-timeout=5s", "--command-timeout=" + p.Timeout.String()}
	for _, f := range []struct{ flag, v string }{{"--cacert=", p.CACert}, {"--cert=", p.EtcdCert}, {"--key=", p.EtcdKey}} {
		if f.v != "" {
			args = append(args, f.flag+f.v)
		}
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, p.Etcdctl, append(args, "endpoint", "health")...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String() + " " + out.String())
		return false, fmt.Errorf("%s endpoint health: %v: %s", p.Etcdctl, err, msg)
	}
	return true, nil
}

// Wait probes until the node runs target and is ready (healthy etcd on a
// master), or limit passes; it returns the last state and, on timeout, an
// error naming what is still wrong.
func (p Probe) Wait(ctx context.Context, target string, limit, interval time.Duration) (NodeState, error) {
	deadline := time.Now().Add(limit)
	for {
		st := p.Read(ctx)
		missing := st.missing(target)
		if missing == "" {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%s (%s) not upgraded after %s: %s", p.Name, p.Role, limit, missing)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// missing says what keeps st from being done at target ("" when done):
// a component at another version, or any problem (not ready, etcd not
// healthy, a version that could not be read).
func (st NodeState) missing(target string) string {
	var out []string
	for _, c := range sortedKeys(st.Components) {
		if v := st.Components[c]; v != target {
			out = append(out, fmt.Sprintf("%s runs %s, not %s", c, v, target))
		}
	}
	switch {
	case st.Problem != "":
		out = append(out, st.Problem)
	case !st.Ready || len(st.Components) == 0:
		out = append(out, "not ready")
	}
	return strings.Join(out, "; ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
