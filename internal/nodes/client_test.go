package nodes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The client's handling of what an API server answers: the Status
// message of a refusal, a hint for a forbidden user, a server whose
// certificate the kubeconfig's CA did not sign, and a server that does
// not answer in time. The real API server is TestNodesSetCIDRsAgainstAPIServer's.
func TestClientErrors(t *testing.T) {
	var gotPatch, gotType string
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/v1/nodes/slow":
			<-release // past the client's timeout
		case r.Method == http.MethodPatch && r.URL.Path == "/api/v1/nodes/w0":
			b, _ := io.ReadAll(r.Body)
			gotPatch, gotType = string(b), r.Header.Get("Content-Type")
			w.Write([]byte(`{"kind":"Node"}`))
		case r.Method == http.MethodPatch:
			w.WriteHeader(http.StatusUnprocessableEntity)
			w.Write([]byte(`{"kind":"Status","message":"Node \"w1\" is invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"}`))
		default:
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"kind":"Status","message":"nodes is forbidden: User \"system:kube-proxy\" cannot list resource \"nodes\""}`))
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the foreign-CA case's handshake error
	srv.StartTLS()
	defer srv.Close()
	defer close(release)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := NewClient(&APIConfig{Server: srv.URL, TLS: &tls.Config{RootCAs: pool}}, 300*time.Millisecond)
	ctx := context.Background()

	r := &CIDRReport{Set: []Assignment{{Node: "w0", PodCIDRs: member("w0", "10.200.1.0/24").PodCIDRs}, {Node: "w1", PodCIDRs: member("w1", "10.200.2.0/24").PodCIDRs}}}
	c.SetPodCIDRs(ctx, r, true)
	if gotPatch != "" || len(r.Set) != 2 {
		t.Fatalf("test mode sent a patch: %q %+v", gotPatch, r)
	}
	c.SetPodCIDRs(ctx, r, false)
	if gotPatch != `{"spec":{"podCIDR":"10.200.1.0/24","podCIDRs":["10.200.1.0/24"]}}` || gotType != "application/merge-patch+json" {
		t.Errorf("patch %q (%s)", gotPatch, gotType)
	}
	if len(r.Set) != 1 || r.Set[0].Node != "w0" || len(r.Failed) != 1 || !strings.Contains(r.Failed[0].Error, "HTTP 422: Node \"w1\" is invalid") {
		t.Errorf("report %+v", r)
	}

	if _, err := c.ListNodes(ctx); err == nil || !strings.Contains(err.Error(), `HTTP 403: nodes is forbidden: User "system:kube-proxy"`) || !strings.Contains(err.Error(), "check the kubeconfig's user") {
		t.Errorf("forbidden: %v", err)
	}
	if err := c.PatchNode(ctx, "slow", []byte("{}")); err == nil || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Errorf("slow: %v", err)
	}
	other := NewClient(&APIConfig{Server: srv.URL, TLS: &tls.Config{RootCAs: x509.NewCertPool()}}, 300*time.Millisecond)
	if _, err := other.ListNodes(ctx); err == nil || !strings.Contains(err.Error(), "certificate-authority(-data) must be the CA") {
		t.Errorf("foreign CA: %v", err)
	}
}
