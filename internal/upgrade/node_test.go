package upgrade

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/nodes"
)

// A worker as the API and kube-proxy's metrics describe it.
func fakeWorker(t *testing.T, kubelet, proxy string, ready *bool) Probe {
	t.Helper()
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/nodes/worker-0" {
			http.NotFound(w, r)
			return
		}
		st := "False"
		if *ready {
			st = "True"
		}
		fmt.Fprintf(w, `{"status":{"nodeInfo":{"kubeletVersion":%q,"kubeProxyVersion":""},"conditions":[{"type":"Ready","status":%q}]}}`, kubelet, st)
	}))
	t.Cleanup(api.Close)
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# HELP kubernetes_build_info x\nkubernetes_build_info{build_date=\"\",compiler=\"gc\",git_version=%q,major=\"1\"} 1\n", proxy)
	}))
	t.Cleanup(metrics.Close)
	cfg := &nodes.APIConfig{Server: api.URL, TLS: api.Client().Transport.(*http.Transport).TLSClientConfig}
	return Probe{Name: "worker-0", Role: RoleWorker, API: cfg, ProxyMetrics: metrics.URL, Timeout: 2 * time.Second}
}

func TestProbeWorker(t *testing.T) {
	ready := true
	p := fakeWorker(t, "v1.36.3", "v1.35.4", &ready)
	st := p.Read(context.Background())
	if st.Version != "v1.35.4" || st.Components["kubelet"] != "v1.36.3" || st.Components["kube-proxy"] != "v1.35.4" || !st.Ready {
		t.Fatalf("state %+v: want the older of kubelet and kube-proxy", st)
	}
	if m := st.missing("v1.36.3"); m != "kube-proxy runs v1.35.4, not v1.36.3" {
		t.Errorf("missing %q", m)
	}
	// Not Ready is not done, even at the target.
	p = fakeWorker(t, "v1.36.3", "v1.36.3", new(bool))
	if _, err := p.Wait(context.Background(), "v1.36.3", 300*time.Millisecond, 100*time.Millisecond); err == nil ||
		!strings.Contains(err.Error(), "worker-0 (worker) not upgraded after 300ms: kubelet: the Node is not Ready") {
		t.Errorf("Wait: %v", err)
	}
	p = fakeWorker(t, "v1.36.3", "v1.36.3", &ready)
	if st, err := p.Wait(context.Background(), "v1.36.3", time.Second, 100*time.Millisecond); err != nil || st.Version != "v1.36.3" {
		t.Errorf("Wait: %+v, %v", st, err)
	}
}

// kube-proxy not answering: the version is unknown, and the problem says why.
func TestProbeWorkerProxyDown(t *testing.T) {
	ready := true
	p := fakeWorker(t, "v1.36.3", "v1.36.3", &ready)
	p.ProxyMetrics = "http://127.0.0.1:1/metrics"
	st := p.Read(context.Background())
	if st.Version != "" || !strings.Contains(st.Problem, "kube-proxy:") || st.missing("v1.36.3") == "" {
		t.Errorf("state %+v: want no version and kube-proxy's problem", st)
	}
}

func TestParseBuildInfo(t *testing.T) {
	v, err := parseBuildInfo(strings.NewReader("a 1\nkubernetes_build_info{git_version=\"v1.36.3\",major=\"1\"} 1\n"))
	if err != nil || v != "v1.36.3" {
		t.Errorf("%q %v", v, err)
	}
	if _, err := parseBuildInfo(strings.NewReader("x 1\n")); err == nil {
		t.Error("no build info: no error")
	}
}
