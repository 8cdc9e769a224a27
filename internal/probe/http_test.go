package probe_test

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/nstest"
	"github.com/kubesalt/kubesalt/internal/probe"
)

// HTTPGet dials inside the namespace: a server on an address only that
// namespace has answers, and the caller's address it sees is the
// namespace's own.
func TestHTTPGetDialsInsideTheNamespace(t *testing.T) {
	nstest.RequireRoot(t)
	lab := nstest.New(t)
	a := lab.AddNode(netip.MustParsePrefix("192.168.231.10/24"), netip.MustParsePrefix("10.231.1.0/24"))
	b := lab.AddNode(netip.MustParsePrefix("192.168.231.11/24"), netip.MustParsePrefix("10.231.2.0/24"))
	var ln net.Listener
	if err := probe.InNetns(b.NS, func() (err error) {
		ln, err = net.Listen("tcp", "192.168.231.11:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		w.Write([]byte("caller " + host))
	}))
	url := "http://" + ln.Addr().String() + "/whoami"

	status, body, err := probe.HTTPGet(a.NS, url, 5*time.Second)
	if err != nil || status != 200 || string(body) != "caller 192.168.231.10" {
		t.Fatalf("from %s: %d %q %v; want 200 \"caller 192.168.231.10\"", a.NS, status, body, err)
	}
	// The host has no route to the node network: the same request fails
	// there, so the request above went through the namespace.
	if _, err := http.Get(url); err == nil {
		t.Fatalf("GET %s from the host worked: the test cannot tell where HTTPGet dials", url)
	}
	if _, _, err := probe.HTTPGet(a.NS, "http://192.168.231.99:80/", 500*time.Millisecond); err == nil || !strings.Contains(err.Error(), "192.168.231.99") {
		t.Errorf("an address nobody has: %v, want a dial error naming it", err)
	}
}
