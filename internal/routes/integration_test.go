package routes

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/nstest"
)

var (
	mp = netip.MustParsePrefix
	ma = netip.MustParseAddr
)

type labNode struct {
	nstest.Node
	name string
	pod  nstest.Pod
}

func members(nodes []labNode) []cluster.Member {
	var out []cluster.Member
	for _, n := range nodes {
		out = append(out, cluster.Member{Name: n.name, IPs: []netip.Addr{n.IP.Addr()}, PodCIDRs: []netip.Prefix{n.Pod}})
	}
	return out
}

func syncNode(t *testing.T, n labNode, list []cluster.Member, o Options) *Report {
	t.Helper()
	o.Netns = n.NS
	if o.Protocol == 0 {
		o.Protocol = DefaultProtocol
	}
	c, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local, err := c.LocalAddrs()
	if err != nil {
		t.Fatal(err)
	}
	desired, err := Desired(list, "", local)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Sync(desired)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func kernelRoutes(l *nstest.Lab, n labNode) string {
	return l.In(n.NS, "ip", "route", "show", "proto", "201")
}

func TestPodToPodAcrossNodes(t *testing.T) {
	for _, mode := range []string{"nexthop-objects", "plain"} {
		t.Run(mode, func(t *testing.T) { podToPod(t, mode) })
	}
}

func podToPod(t *testing.T, mode string) {
	l := nstest.New(t)
	plain := mode == "plain"
	var nodes []labNode
	for i, name := range []string{"master-0", "worker-0", "worker-1"} {
		n := l.AddNode(mp("192.168.170."+[]string{"10", "20", "21"}[i]+"/24"), mp("10.200."+[]string{"0", "1", "2"}[i]+".0/24"))
		nodes = append(nodes, labNode{Node: n, name: name, pod: l.AddPod(n, 2)})
	}
	list := members(nodes)

	if l.Ping(nodes[1].pod, nodes[2].pod.IP) {
		t.Fatal("pods reach each other before any route exists: the lab leaks")
	}

	t.Run("test mode applies nothing", func(t *testing.T) {
		l := l.With(t)
		rep := syncNode(t, nodes[0], list, Options{Test: true, Plain: plain})
		if len(rep.Added) != 2 || rep.Desired != 2 {
			t.Fatalf("report %+v", rep)
		}
		if got := kernelRoutes(l, nodes[0]); got != "" {
			t.Fatalf("test mode changed the kernel table:\n%s", got)
		}
	})

	t.Run("sync routes every pair, never the own CIDR", func(t *testing.T) {
		l := l.With(t)
		for _, n := range nodes {
			rep := syncNode(t, n, list, Options{Plain: plain})
			if len(rep.Added) != 2 || len(rep.Failed) != 0 || rep.Mode != mode {
				t.Fatalf("%s: %+v", n.name, rep)
			}
			table := kernelRoutes(l, n)
			if strings.Contains(table, n.Pod.String()) {
				t.Errorf("%s routes its own pod CIDR away:\n%s", n.name, table)
			}
		}
		for _, a := range nodes {
			for _, b := range nodes {
				if a.name == b.name {
					continue
				}
				if !l.Ping(a.pod, b.pod.IP) {
					t.Errorf("pod on %s cannot reach pod on %s", a.name, b.name)
				}
				src, err := l.SourceSeen(a.pod, b.pod)
				if err != nil || src != a.pod.IP {
					t.Errorf("pod on %s sees %v (err %v), want the sender's pod address %s", b.name, src, err, a.pod.IP)
				}
			}
		}
	})

	t.Run("second sync changes nothing", func(t *testing.T) {
		for _, n := range nodes {
			if rep := syncNode(t, n, list, Options{Plain: plain}); rep.Changed() || rep.Present != 2 {
				t.Errorf("%s: %+v", n.name, rep)
			}
		}
	})

	t.Run("a foreign route is reported and left alone", func(t *testing.T) {
		l := l.With(t)
		// Someone routes worker-1's CIDR by hand on master-0.
		l.In(nodes[0].NS, "ip", "route", "del", nodes[2].Pod.String())
		l.In(nodes[0].NS, "ip", "route", "add", nodes[2].Pod.String(), "via", "192.168.170.99")
		rep := syncNode(t, nodes[0], list, Options{Plain: plain})
		if len(rep.Conflicts) != 1 || len(rep.Added) != 0 || !strings.Contains(rep.Conflicts[0].Existing, "via 192.168.170.99") {
			t.Fatalf("report %+v", rep)
		}
		if got := l.In(nodes[0].NS, "ip", "route", "show", nodes[2].Pod.String()); !strings.Contains(got, "192.168.170.99") {
			t.Fatalf("the foreign route was touched: %s", got)
		}
		rep = syncNode(t, nodes[0], list, Options{Adopt: true, Plain: plain})
		if len(rep.Replaced) != 1 || len(rep.Conflicts) != 0 {
			t.Fatalf("adopt: %+v", rep)
		}
		if got := l.In(nodes[0].NS, "ip", "route", "show", nodes[2].Pod.String()); !strings.Contains(got, "via 192.168.170.21") || strings.Count(got, "\n") != 1 {
			t.Fatalf("after adopt: %s", got)
		}
	})

	t.Run("a node's IP change replaces its route", func(t *testing.T) {
		l := l.With(t)
		l.In(nodes[2].NS, "ip", "addr", "del", "192.168.170.21/24", "dev", "eth0")
		l.In(nodes[2].NS, "ip", "addr", "add", "192.168.170.31/24", "dev", "eth0")
		nodes[2].IP = mp("192.168.170.31/24")
		list = members(nodes)
		for _, n := range nodes[:2] {
			rep := syncNode(t, n, list, Options{Plain: plain})
			if len(rep.Replaced) != 1 || rep.Replaced[0].Via != ma("192.168.170.31") {
				t.Fatalf("%s: %+v", n.name, rep)
			}
		}
		syncNode(t, nodes[2], list, Options{Plain: plain})
		if !l.Ping(nodes[1].pod, nodes[2].pod.IP) || !l.Ping(nodes[2].pod, nodes[0].pod.IP) {
			t.Error("pods do not reach each other after the IP change")
		}
	})

	t.Run("an unreachable next hop fails alone and the next run repairs it", func(t *testing.T) {
		l := l.With(t)
		extra := cluster.Member{Name: "worker-9", IPs: []netip.Addr{ma("192.168.171.9")}, PodCIDRs: []netip.Prefix{mp("10.200.9.0/24")}}
		withExtra := append(append([]cluster.Member{}, list...), extra)
		removed := syncNode(t, nodes[0], withExtra, Options{Plain: plain})
		if len(removed.Failed) != 1 || removed.Failed[0].Route.Node != "worker-9" || !strings.Contains(removed.Failed[0].Error, "unreachable") {
			t.Fatalf("report %+v", removed)
		}
		if removed.Present != 2 {
			t.Errorf("the other routes were disturbed: %+v", removed)
		}
		// The next hop becomes reachable: the next run adds what failed.
		l.In(nodes[0].NS, "ip", "addr", "add", "192.168.171.1/24", "dev", "eth0")
		rep := syncNode(t, nodes[0], withExtra, Options{Plain: plain})
		if len(rep.Added) != 1 || len(rep.Failed) != 0 {
			t.Fatalf("repair: %+v", rep)
		}
		l.In(nodes[0].NS, "ip", "addr", "del", "192.168.171.1/24", "dev", "eth0")
	})

	t.Run("removing a node removes its routes everywhere", func(t *testing.T) {
		l := l.With(t)
		short := members(nodes[:2])
		for _, n := range nodes[:2] {
			rep := syncNode(t, n, short, Options{Plain: plain})
			if len(rep.Removed) == 0 {
				t.Fatalf("%s: %+v", n.name, rep)
			}
			if table := kernelRoutes(l, n); strings.Contains(table, "10.200.2.0") || strings.Contains(table, "10.200.9.0") {
				t.Errorf("%s keeps a removed node's route:\n%s", n.name, table)
			}
		}
		if l.Ping(nodes[0].pod, nodes[2].pod.IP) {
			t.Error("the removed node's pods are still routed")
		}
		if got := l.In(nodes[0].NS, "ip", "nexthop", "show", "proto", "201"); strings.Contains(got, "192.168.170.31") || (!plain && !strings.Contains(got, "192.168.170.20")) {
			t.Errorf("nexthop objects after the removal: %s", got)
		}
		if !l.Ping(nodes[0].pod, nodes[1].pod.IP) {
			t.Error("the remaining nodes lost their route")
		}
	})

	t.Run("flush removes only owned routes", func(t *testing.T) {
		l := l.With(t)
		l.In(nodes[0].NS, "ip", "route", "add", "10.77.0.0/24", "via", "192.168.170.20")
		c, err := Open(Options{Netns: nodes[0].NS, Plain: plain})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := kernelRoutes(l, nodes[0]); got != "" {
			t.Errorf("owned routes left: %s", got)
		}
		if got := l.In(nodes[0].NS, "ip", "nexthop", "show", "proto", "201"); got != "" {
			t.Errorf("owned nexthop objects left: %s", got)
		}
		if got := l.In(nodes[0].NS, "ip", "route", "show", "10.77.0.0/24"); got == "" {
			t.Error("flush removed a foreign route")
		}
	})

	l.Destroy()
	if left := l.Namespaces(); len(left) != 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
}

func TestDualStackPodToPod(t *testing.T) {
	l := nstest.New(t)
	var nodes []labNode
	var list []cluster.Member
	for i, name := range []string{"worker-0", "worker-1", "worker-2"} {
		n := l.AddNode(mp(fmt.Sprintf("192.168.170.%d/24", 20+i)), mp(fmt.Sprintf("10.200.%d.0/24", i)))
		l.AddIPv6(&n, mp(fmt.Sprintf("fd00:170::%d/64", 20+i)), mp(fmt.Sprintf("fd00:10:200:%d::/64", i)))
		nodes = append(nodes, labNode{Node: n, name: name, pod: l.AddPod(n, 2)})
		list = append(list, cluster.Member{Name: name, IPs: []netip.Addr{n.IP.Addr(), n.IP6.Addr()}, PodCIDRs: []netip.Prefix{n.Pod, n.Pod6}})
	}
	if l.Ping(nodes[0].pod, nodes[1].pod.IP6) {
		t.Fatal("IPv6 pods reach each other before any route exists")
	}
	for _, n := range nodes {
		if rep := syncNode(t, n, list, Options{}); len(rep.Added) != 4 || len(rep.Failed) != 0 {
			t.Fatalf("%s: %+v", n.name, rep)
		}
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a.name == b.name {
				continue
			}
			if !l.Ping(a.pod, b.pod.IP) {
				t.Errorf("pod on %s cannot reach pod on %s over IPv4", a.name, b.name)
			}
			if !l.Ping(a.pod, b.pod.IP6) {
				t.Errorf("pod on %s cannot reach pod on %s over IPv6", a.name, b.name)
			}
		}
	}
	if src, err := l.SourceSeen(nstest.Pod{NS: nodes[0].pod.NS, IP: nodes[0].pod.IP6}, nstest.Pod{NS: nodes[2].pod.NS, IP: nodes[2].pod.IP6}); err != nil || src != nodes[0].pod.IP6 {
		t.Errorf("IPv6 source seen %v (err %v), want %s", src, err, nodes[0].pod.IP6)
	}
	if rep := syncNode(t, nodes[0], list, Options{}); rep.Changed() || rep.Present != 4 {
		t.Errorf("second sync: %+v", rep)
	}
	if got := l.In(nodes[0].NS, "ip", "-6", "route", "show", "proto", "201"); strings.Count(got, "\n") != 2 || strings.Contains(got, "fd00:10:200::/64") {
		t.Errorf("IPv6 routes on worker-0:\n%s", got)
	}
}

// Two syncs of one node at the same time (a state run beside an
// orchestration's publish of routes_sync): a route the other sync added
// between this one's listing and its request is kubesalt's own and no
// conflict; a foreign route that appeared there still is one, left alone.
func TestConcurrentSyncOfOneNode(t *testing.T) {
	for _, mode := range []string{"nexthop-objects", "plain"} {
		t.Run(mode, func(t *testing.T) {
			l := nstest.New(t)
			var nodes []labNode
			for i, name := range []string{"master-0", "worker-0", "worker-1"} {
				n := l.AddNode(mp("192.168.170."+[]string{"10", "20", "21"}[i]+"/24"), mp("10.200."+[]string{"0", "1", "2"}[i]+".0/24"))
				nodes = append(nodes, labNode{Node: n, name: name})
			}
			c, err := Open(Options{Netns: nodes[0].NS, Protocol: DefaultProtocol, Plain: mode == "plain"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			local, err := c.LocalAddrs()
			if err != nil {
				t.Fatal(err)
			}
			desired, err := Desired(members(nodes), "", local)
			if err != nil {
				t.Fatal(err)
			}
			ch, err := c.diff(desired)
			if err != nil || len(ch.add) != 2 {
				t.Fatalf("diff: %+v %v", ch, err)
			}
			// The other sync's route, and a foreign one.
			l.In(nodes[0].NS, "ip", "route", "add", nodes[1].Pod.String(), "via", nodes[1].IP.Addr().String(), "proto", "201")
			l.In(nodes[0].NS, "ip", "route", "add", nodes[2].Pod.String(), "via", "192.168.170.99")
			rep := ch.report(len(desired), false, c.describe)
			if err := c.apply(desired, ch, rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Conflicts) != 1 || rep.Conflicts[0].Route.Dst != nodes[2].Pod || len(rep.Failed) != 0 {
				t.Fatalf("want one conflict, for %s (the foreign route): %+v", nodes[2].Pod, rep)
			}
			if got := l.In(nodes[0].NS, "ip", "route", "show", nodes[2].Pod.String()); !strings.Contains(got, "192.168.170.99") {
				t.Fatalf("the foreign route was touched: %s", got)
			}
		})
	}
}
