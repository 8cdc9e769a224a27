package probe_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/nstest"
	"github.com/kubesalt/kubesalt/internal/probe"
)

// Two nodes on one link: the receiver sees the sender's own address; a
// datagram lost on the way is sent again; when none arrives, the probe
// fails saying how many it sent.
func TestSourceSeenResendsThenFails(t *testing.T) {
	nstest.RequireRoot(t)
	lab := nstest.New(t)
	a := lab.AddNode(netip.MustParsePrefix("192.168.232.10/24"), netip.MustParsePrefix("10.232.1.0/24"))
	b := lab.AddNode(netip.MustParsePrefix("192.168.232.11/24"), netip.MustParsePrefix("10.232.2.0/24"))
	to := netip.MustParseAddr("192.168.232.11")
	src, err := probe.SourceSeen(a.NS, b.NS, to)
	if err != nil || src != netip.MustParseAddr("192.168.232.10") {
		t.Fatalf("SourceSeen %s -> %s: %v %v; want 192.168.232.10", a.NS, b.NS, src, err)
	}
	// The receiver drops every other datagram, the next probe's first one
	// among them: the second arrives.
	lab.In(b.NS, "iptables", "-A", "INPUT", "-p", "udp", "-m", "statistic", "--mode", "nth", "--every", "2", "--packet", "0", "-j", "DROP")
	if src, err := probe.SourceSeen(a.NS, b.NS, to); err != nil || src != netip.MustParseAddr("192.168.232.10") {
		t.Fatalf("with every other datagram dropped: %v %v; want 192.168.232.10", src, err)
	}
	lab.In(b.NS, "iptables", "-F", "INPUT")
	// A firewall on the receiver drops every datagram: nothing arrives.
	lab.In(b.NS, "iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP")
	_, err = probe.SourceSeen(a.NS, b.NS, to)
	if err == nil || !strings.Contains(err.Error(), "no datagram arrived (6 sent in 3s)") {
		t.Fatalf("with every datagram dropped: %v; want no datagram arrived after 6 sent", err)
	}
}
