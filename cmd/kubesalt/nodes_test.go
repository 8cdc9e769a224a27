package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/nodes"
	"github.com/kubesalt/kubesalt/internal/testenv"
)

// apiDefinition is a dual-stack cluster whose API is localhost:port (the
// load balancer's name), so the admin kubeconfig `pki issue` writes points
// at a local API server.
func apiDefinition(port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `kubernetes:
  cluster_name: nodestest
  network:
    node_cidr: [192.168.170.0/24, "fd00:170::/64"]
    cluster_cidr: [10.200.0.0/16, "fd00:10:200::/56"]
    service_cidr: [10.32.0.0/24, "fd00:10:32::/112"]
  api: {name: localhost, port: %d}
  nodes:
    master-0: {role: master, ip: [192.168.170.10, "fd00:170::10"]}
`, port)
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&b, "    worker-%d: {role: worker, ip: [192.168.170.%d, \"fd00:170::%d\"]}\n", i, 20+i, 20+i)
	}
	return b.String()
}

// plannedCluster plans and issues apiDefinition into dir: the node list
// (as `cidr plan` prints its data) and the PKI directory.
func plannedCluster(t *testing.T, dir string, port int) (nodeList string, pkiDir string) {
	t.Helper()
	def := apiDefinition(port)
	r, code, stderr := call(t, def, "cidr", "plan", "--definition", "-", "--plan", filepath.Join(dir, "plan.json"))
	if code != 0 {
		t.Fatalf("cidr plan: %d %s %s", code, r.Comment, stderr)
	}
	pkiDir = filepath.Join(dir, "pki")
	if r, code, stderr := call(t, def, "pki", "issue", "--definition", "-", "--dir", pkiDir); code != 0 {
		t.Fatalf("pki issue: %d %s %s", code, r.Comment, stderr)
	}
	return string(r.Data), pkiDir
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Bad input: exit 2 and the field named, before the API is asked anything;
// an API server that is not there: exit 1, saying so.
func TestNodesSetCIDRsBadInput(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t) // closed again: nothing listens there
	plan, pkiDir := plannedCluster(t, dir, port)
	admin := filepath.Join(pkiDir, "admin.kubeconfig")
	pod := filepath.Join(dir, "pod.yaml")
	os.WriteFile(pod, []byte("kind: Pod\n"), 0o600)
	for _, c := range []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"no kubeconfig", plan, nil, 2, "--kubeconfig is required"},
		{"missing kubeconfig", plan, []string{"--kubeconfig", filepath.Join(dir, "nope")}, 2, "give --kubeconfig"},
		{"not a kubeconfig", plan, []string{"--kubeconfig", pod}, 2, `kind is "Pod", not Config`},
		{"no plan", "", []string{"--kubeconfig", admin}, 2, "node list: no input"},
		{"bad plan", `{"nodes": [{"name": "w", "pod_cidrs": ["10.0.0.1/24"]}]}`, []string{"--kubeconfig", admin}, 2, "host bits set"},
		{"plan the API refuses", `[{"name": "w", "pod_cidrs": ["10.0.0.0/24", "10.0.1.0/24"]}]`, []string{"--kubeconfig", admin}, 2, "two pod CIDRs of one family"},
		{"bad timeout", plan, []string{"--kubeconfig", admin, "--timeout", "0s"}, 2, "--timeout"},
		{"no API server", plan, []string{"--kubeconfig", admin, "--timeout", "5s"}, 1, "connection refused; is the API server up"},
	} {
		r, code, _ := call(t, c.stdin, append([]string{"nodes", "set-cidrs"}, c.args...)...)
		if code != c.code || r.Result == nil || *r.Result || !strings.Contains(r.Comment, c.want) {
			t.Errorf("%s: exit %d result %v comment %q; want exit %d and %q", c.name, code, r.Result, r.Comment, c.code, c.want)
		}
	}

	// --if-api-ready: bad input still fails; an API server not there yet,
	// or a kubeconfig not written yet, is a success that does nothing.
	for _, c := range []struct {
		name, stdin string
		args        []string
		code        int
		want        string
	}{
		{"bad plan, API not ready", `{"nodes": [{"name": "w", "pod_cidrs": ["10.0.0.1/24"]}]}`, []string{"--kubeconfig", admin}, 2, "host bits set"},
		{"no API server", plan, []string{"--kubeconfig", admin}, 0, "is not ready ("},
		{"kubeconfig not written", plan, []string{"--kubeconfig", filepath.Join(dir, "nope")}, 0, "nope is not written yet"},
	} {
		r, code, _ := call(t, c.stdin, append([]string{"nodes", "set-cidrs", "--if-api-ready"}, c.args...)...)
		ok := r.Result != nil && *r.Result == (c.code == 0)
		if code != c.code || !ok || len(r.Changes) != 0 || !strings.Contains(r.Comment, c.want) {
			t.Errorf("--if-api-ready, %s: exit %d %s; want exit %d and %q", c.name, code, show(r), c.code, c.want)
		}
	}
}

// TestNodesSetCIDRsAgainstAPIServer runs `nodes set-cidrs` against a real
// kube-apiserver (on Debian's etcd, with the certificates `pki issue`
// makes, through the admin kubeconfig it writes): empty nodes get the
// plan, a node that differs is reported and left alone, an unregistered
// node waits, --test and a second run change nothing, and a user that may
// not patch nodes fails without changing anything.
func TestNodesSetCIDRsAgainstAPIServer(t *testing.T) {
	plan, pkiDir, apiPort, api := startAPIServer(t)
	pki := func(name string) string { return filepath.Join(pkiDir, name) }
	admin := pki("admin.kubeconfig")

	// The plan: master-0 10.200.0.0/24 + fd00:10:200::/64, workers after it.
	want := planned(t, plan)
	// master-0 and worker-0 registered without CIDRs, worker-1 with another
	// one (left alone), worker-2 with the plan's already, worker-3 not yet.
	createNode(t, api, apiPort, "master-0")
	createNode(t, api, apiPort, "worker-0")
	createNode(t, api, apiPort, "worker-1", "10.99.0.0/24")
	createNode(t, api, apiPort, "worker-2", want["worker-2"]...)
	before := apiCIDRs(t, admin)

	set := func(stdin, kubeconfig string, extra ...string) (result, int) {
		t.Helper()
		r, code, _ := call(t, stdin, append([]string{"nodes", "set-cidrs", "--kubeconfig", kubeconfig}, extra...)...)
		return r, code
	}
	changed := func(r result) []string {
		var names []string
		for n := range r.Changes {
			names = append(names, n)
		}
		sort.Strings(names)
		return names
	}

	// --if-api-ready on a ready API server does the work (the --test run).
	// --test: reports what it would set, and the mismatch; sets nothing.
	r, code := set(plan, admin, "--test", "--if-api-ready")
	if code != 1 || r.Result == nil || *r.Result || !reflect.DeepEqual(changed(r), []string{"master-0", "worker-0"}) {
		t.Fatalf("--test: exit %d %s", code, show(r))
	}
	if got := apiCIDRs(t, admin); !reflect.DeepEqual(got, before) {
		t.Fatalf("--test changed the API: %v -> %v", before, got)
	}

	// Apply: the empty nodes get the plan; worker-1 is named with the fix
	// and keeps its CIDR; worker-3 waits.
	r, code = set(plan, admin)
	if code != 1 || *r.Result || !reflect.DeepEqual(changed(r), []string{"master-0", "worker-0"}) {
		t.Fatalf("apply: exit %d %s", code, show(r))
	}
	for _, s := range []string{"worker-1 has 10.99.0.0/24", "kubectl delete node worker-1", "1 not registered yet (worker-3"} {
		if !strings.Contains(r.Comment, s) {
			t.Errorf("comment lacks %q: %s", s, r.Comment)
		}
	}
	got := apiCIDRs(t, admin)
	for _, n := range []string{"master-0", "worker-0", "worker-2"} {
		if !reflect.DeepEqual(got[n], want[n]) {
			t.Errorf("%s has %v, the plan says %v", n, got[n], want[n])
		}
	}
	if !reflect.DeepEqual(got["worker-1"], []string{"10.99.0.0/24"}) {
		t.Errorf("worker-1 was changed: %v", got["worker-1"])
	}
	if len(want["master-0"]) != 2 || !strings.Contains(want["master-0"][1], ":") {
		t.Errorf("master-0 is not dual-stack in the plan: %v", want["master-0"])
	}

	// Without the mismatched node in the plan: nothing to do, exit 0.
	without := dropNode(t, plan, "worker-1")
	r, code = set(without, admin)
	if code != 0 || r.Result == nil || !*r.Result || len(r.Changes) != 0 {
		t.Fatalf("second run: exit %d %s", code, show(r))
	}
	settled := apiCIDRs(t, admin)

	// worker-3 registers. kube-proxy's user may list nodes but not patch
	// them: the patch is refused, reported, and nothing changes.
	createNode(t, api, apiPort, "worker-3")
	// Its kubeconfig names a node's local load balancer: here, the API
	// server itself.
	raw, err := os.ReadFile(pki("kube-proxy.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	proxyKC := filepath.Join(t.TempDir(), "kube-proxy.kubeconfig")
	os.WriteFile(proxyKC, []byte(strings.Replace(string(raw), "https://127.0.0.1:6444", fmt.Sprintf("https://localhost:%d", apiPort), 1)), 0o600)
	r, code = set(without, proxyKC)
	if code != 1 || *r.Result || !strings.Contains(r.Comment, "worker-3: the API refused the patch") || !strings.Contains(r.Comment, "HTTP 403") {
		t.Fatalf("kube-proxy's user: exit %d %s", code, show(r))
	}
	if got := apiCIDRs(t, admin); len(got["worker-3"]) != 0 {
		t.Fatalf("a refused patch changed worker-3: %v", got["worker-3"])
	}
	r, code = set(without, admin)
	if code != 0 || !*r.Result || !reflect.DeepEqual(changed(r), []string{"worker-3"}) {
		t.Fatalf("worker-3: exit %d %s", code, show(r))
	}
	got = apiCIDRs(t, admin)
	settled["worker-3"] = want["worker-3"]
	if !reflect.DeepEqual(got, settled) {
		t.Errorf("after worker-3: %v, want %v", got, settled)
	}
}

// start runs a daemon for the test; its output goes to dir/<name>.log,
// shown when the test fails. Cleanup kills it and waits for it.
func start(t *testing.T, dir, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, filepath.Base(bin)+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = log, log, dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s (tail):\n%s", filepath.Base(bin), b)
		}
	})
}

// adminHTTP is an HTTP client with the kubeconfig's TLS: what the test
// uses to create nodes and read them back.
func adminHTTP(t *testing.T, kubeconfig string) *http.Client {
	t.Helper()
	cfg, err := nodes.LoadKubeconfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg.TLS}}
}

func waitReady(t *testing.T, c *http.Client, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, b.String())
		} else {
			last = err.Error()
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the API server is not ready within %s: %s", within, last)
}

func createNode(t *testing.T, c *http.Client, port int, name string, cidrs ...string) {
	t.Helper()
	spec := "{}"
	if len(cidrs) > 0 {
		spec = fmt.Sprintf(`{"podCIDR": %q, "podCIDRs": ["%s"]}`, cidrs[0], strings.Join(cidrs, `", "`))
	}
	body := fmt.Sprintf(`{"apiVersion": "v1", "kind": "Node", "metadata": {"name": %q}, "spec": %s}`, name, spec)
	resp, err := c.Post(fmt.Sprintf("https://127.0.0.1:%d/api/v1/nodes", port), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		t.Fatalf("creating node %s: HTTP %d %s", name, resp.StatusCode, b.String())
	}
}

// apiCIDRs is every node's spec.podCIDRs as the API has them now.
func apiCIDRs(t *testing.T, kubeconfig string) map[string][]string {
	t.Helper()
	cfg, err := nodes.LoadKubeconfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	list, err := nodes.NewClient(cfg, 10*time.Second).ListNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, err := nodes.ParseNodeCIDRs(list)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// planned is the node list's pod CIDRs by node.
func planned(t *testing.T, plan string) map[string][]string {
	t.Helper()
	var l struct {
		Nodes []struct {
			Name     string   `json:"name"`
			PodCIDRs []string `json:"pod_cidrs"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(plan), &l); err != nil || len(l.Nodes) != 5 {
		t.Fatalf("plan %v: %s", err, plan)
	}
	out := map[string][]string{}
	for _, n := range l.Nodes {
		out[n.Name] = n.PodCIDRs
	}
	return out
}

// dropNode is the node list without the named node.
func dropNode(t *testing.T, plan, name string) string {
	t.Helper()
	var l struct {
		Nodes []map[string]any `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(plan), &l); err != nil {
		t.Fatal(err)
	}
	kept := l.Nodes[:0]
	for _, n := range l.Nodes {
		if n["name"] != name {
			kept = append(kept, n)
		}
	}
	b, _ := json.Marshal(map[string]any{"nodes": kept})
	return string(b)
}

// show is a result as a person reads it.
func show(r result) string {
	changes, _ := json.Marshal(r.Changes)
	res := "null"
	if r.Result != nil {
		res = fmt.Sprint(*r.Result)
	}
	return fmt.Sprintf("result %s, changes %s, comment %q", res, changes, r.Comment)
}

// startAPIServer runs a real kube-apiserver (on the etcd of
// KUBESALT_ETCD_BIN_DIR, `make etcd`'s, else Debian's; with the
// certificates `pki issue` makes for apiDefinition) for the test, or skips
// it where there is none; it returns the plan, the PKI directory, the
// API's port and a client with the admin's certificate.
func startAPIServer(t *testing.T) (plan, pkiDir string, apiPort int, api *http.Client) {
	t.Helper()
	testenv.Root(t, "run etcd and kube-apiserver")
	binDir := os.Getenv("KUBESALT_K8S_BIN_DIR")
	if binDir == "" {
		t.Skip("set KUBESALT_K8S_BIN_DIR to the directory of kube-apiserver (make k8s-binaries builds it into bin/k8s/<version>)")
	}
	apiserver := filepath.Join(binDir, "kube-apiserver")
	if _, err := os.Stat(apiserver); err != nil {
		t.Skipf("no kube-apiserver in KUBESALT_K8S_BIN_DIR: %v", err)
	}
	etcd := "etcd"
	if d := os.Getenv("KUBESALT_ETCD_BIN_DIR"); d != "" {
		etcd = filepath.Join(d, "etcd")
	} else {
		testenv.Tools(t, "apt-get install etcd-server, or make etcd and set KUBESALT_ETCD_BIN_DIR", "etcd")
	}

	dir := t.TempDir()
	apiPort = freePort(t)
	etcdPort, peerPort := freePort(t), freePort(t)
	plan, pkiDir = plannedCluster(t, dir, apiPort)
	pki := func(name string) string { return filepath.Join(pkiDir, name) }
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	start(t, dir, etcd, "--name", "default", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL)
	start(t, dir, apiserver,
		"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(apiPort), "--cert-dir", filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file", pki("kube-apiserver.pem"), "--tls-private-key-file", pki("kube-apiserver-key.pem"),
		"--client-ca-file", pki("ca.pem"), "--authorization-mode", "Node,RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", pki("service-account.pub"),
		"--service-account-signing-key-file", pki("service-account-key.pem"),
		"--service-cluster-ip-range", "10.32.0.0/24", "--profiling=false")

	api = adminHTTP(t, pki("admin.kubeconfig"))
	waitReady(t, api, fmt.Sprintf("https://127.0.0.1:%d/readyz", apiPort), 3*time.Minute)

	return plan, pkiDir, apiPort, api
}
