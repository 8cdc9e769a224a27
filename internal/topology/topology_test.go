package topology

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/testenv"
)

func TestBadAddressesChangeNothing(t *testing.T) {
	// Refused before any command runs: no namespace named "never" appears.
	for _, err := range []error{
		Node("sw", "p1", "never", netip.Prefix{}),
		PodBridge("never", "cbr0", netip.Prefix{}),
		Pod("never", "cbr0", "vpod", "never-pod", netip.MustParsePrefix("10.200.1.2/24"), netip.MustParseAddr("10.200.2.1")),
	} {
		if err == nil || !strings.Contains(err.Error(), "want") {
			t.Errorf("%v: want an error saying what to give", err)
		}
	}
}

// Two nodes on a switch, a pod on each node's bridge: nodes reach each
// other, pods reach each other once each node routes the other's pod
// CIDR, and Delete removes every namespace.
func TestTwoNodesWithPods(t *testing.T) {
	testenv.Root(t, "create network namespaces")
	testenv.Tools(t, "apt-get install iproute2 iputils-ping", "ip", "ping")
	b := make([]byte, 3)
	rand.Read(b)
	id := "kt" + hex.EncodeToString(b)
	sw, n1, n2, p1, p2 := id+"-sw", id+"-n1", id+"-n2", id+"-p1", id+"-p2"
	all := []string{p2, p1, n2, n1, sw}
	t.Cleanup(func() {
		for _, ns := range all {
			Delete(ns)
		}
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	pfx := netip.MustParsePrefix
	must(Switch(sw))
	must(Node(sw, id+"n1", n1, pfx("192.168.170.11/24")))
	must(Node(sw, id+"n2", n2, pfx("192.168.170.12/24")))
	must(PodBridge(n1, "cbr0", pfx("10.200.1.1/24")))
	must(PodBridge(n2, "cbr0", pfx("10.200.2.1/24")))
	must(Pod(n1, "cbr0", "vpod", p1, pfx("10.200.1.2/24"), netip.MustParseAddr("10.200.1.1")))
	must(Pod(n2, "cbr0", "vpod", p2, pfx("10.200.2.2/24"), netip.MustParseAddr("10.200.2.1")))
	ping := func(ns, to string) error {
		_, err := In(ns, "ping", "-c", "1", "-W", "2", "-q", to)
		return err
	}
	must(ping(n1, "192.168.170.12"))
	must(ping(p1, "10.200.1.1"))
	if ping(p1, "10.200.2.2") == nil {
		t.Fatal("pod reached the other node's pod with no route to it")
	}
	_, err := In(n1, "ip", "route", "add", "10.200.2.0/24", "via", "192.168.170.12")
	must(err)
	_, err = In(n2, "ip", "route", "add", "10.200.1.0/24", "via", "192.168.170.11")
	must(err)
	must(ping(p1, "10.200.2.2"))

	for _, ns := range all {
		must(Delete(ns))
	}
	must(Delete(sw)) // twice: no error
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), id) {
		t.Errorf("namespaces left:\n%s", out)
	}
}
