package routes

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func route(dst, via, node string) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via), Node: node}
}

// owned is a route of kubesalt's protocol as the kernel lists it.
func owned(dst, via string) kroute {
	return kroute{dst: netip.MustParsePrefix(dst), gw: netip.MustParseAddr(via), table: unix.RT_TABLE_MAIN, protocol: DefaultProtocol}
}

// foreign is a route another protocol made (`ip route add` is boot, a
// connected route kernel).
func foreign(dst, via string, proto uint8) kroute {
	k := kroute{dst: netip.MustParsePrefix(dst), table: unix.RT_TABLE_MAIN, protocol: proto, oif: 2}
	if via != "" {
		k.gw = netip.MustParseAddr(via)
	}
	return k
}

func locals(ips ...string) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, ip := range ips {
		m[netip.MustParseAddr(ip)] = true
	}
	return m
}

// lines writes changes one per line, in the order apply sends them.
func lines(ch changes) []string {
	out := []string{fmt.Sprintf("present %d", ch.present)}
	for _, k := range ch.remove {
		out = append(out, fmt.Sprintf("remove %s via %s", k.dst, k.gw))
	}
	for _, k := range ch.adopt {
		out = append(out, fmt.Sprintf("adopt %s (proto %d)", k.dst, k.protocol))
	}
	for _, r := range ch.replace {
		out = append(out, "replace "+r.String())
	}
	for _, r := range ch.add {
		out = append(out, "add "+r.String())
	}
	for _, c := range ch.conflicts {
		why := c.reason
		if len(c.foreign) > 0 {
			why = describe(c.foreign, func(uint32) string { return "eth0" })
		}
		out = append(out, "conflict "+c.route.String()+": "+why)
	}
	return out
}

// master-0 (192.168.170.10, pods 10.200.0.0/24 on cbr0 10.200.0.1) and
// its view of worker-0 and worker-1.
var (
	here = locals("127.0.0.1", "192.168.170.10", "10.200.0.1", "fe80::1")
	w0   = route("10.200.1.0/24", "192.168.170.20", "worker-0")
	w1   = route("10.200.2.0/24", "192.168.170.21", "worker-1")
)

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		desired []Route
		cur     current
		adopt   bool
		want    []string
	}{{
		name:    "nothing owned: add every missing route",
		desired: []Route{w0, w1},
		cur:     current{local: here},
		want:    []string{"present 0", "add 10.200.1.0/24 via 192.168.170.20", "add 10.200.2.0/24 via 192.168.170.21"},
	}, {
		name:    "all in place: no change",
		desired: []Route{w0, w1},
		cur:     current{owned: []kroute{owned("10.200.1.0/24", "192.168.170.20"), owned("10.200.2.0/24", "192.168.170.21")}, local: here},
		want:    []string{"present 2"},
	}, {
		name:    "a removed node's route, a duplicate and a multipath route are stale",
		desired: []Route{w0},
		cur: current{owned: []kroute{
			owned("10.200.1.0/24", "192.168.170.20"),
			owned("10.200.9.0/24", "192.168.170.29"),
			owned("10.200.1.0/24", "192.168.170.20"),
			func() kroute { k := owned("10.200.2.0/24", "192.168.170.21"); k.multipath = true; return k }(),
		}, local: here},
		want: []string{"present 1", "remove 10.200.9.0/24 via 192.168.170.29", "remove 10.200.1.0/24 via 192.168.170.20", "remove 10.200.2.0/24 via 192.168.170.21"},
	}, {
		name:    "a node that changed IP: its route is replaced",
		desired: []Route{w0, route("10.200.2.0/24", "192.168.170.31", "worker-1")},
		cur:     current{owned: []kroute{owned("10.200.1.0/24", "192.168.170.20"), owned("10.200.2.0/24", "192.168.170.21")}, local: here},
		want:    []string{"present 1", "replace 10.200.2.0/24 via 192.168.170.31"},
	}, {
		name: "a CIDR reused by another node: replaced, the old node's other CIDR removed",
		// worker-1 left; worker-5 took its IPv4 block.
		desired: []Route{w0, route("10.200.2.0/24", "192.168.170.25", "worker-5")},
		cur:     current{owned: []kroute{owned("10.200.1.0/24", "192.168.170.20"), owned("10.200.2.0/24", "192.168.170.21"), owned("fd00:200:0:2::/64", "fd00::21")}, local: here},
		want:    []string{"present 1", "remove fd00:200:0:2::/64 via fd00::21", "replace 10.200.2.0/24 via 192.168.170.25"},
	}, {
		name:    "a foreign route is a conflict and left alone",
		desired: []Route{w0, w1},
		cur: current{owned: []kroute{owned("10.200.1.0/24", "192.168.170.20")}, local: here,
			foreign: map[netip.Prefix][]kroute{w1.Dst: {foreign("10.200.2.0/24", "192.168.170.99", unix.RTPROT_BOOT)}}},
		want: []string{"present 1", "conflict 10.200.2.0/24 via 192.168.170.21: 10.200.2.0/24 via 192.168.170.99 dev eth0 proto boot"},
	}, {
		name:    "adopt takes the foreign route over",
		desired: []Route{w0, w1},
		cur: current{owned: []kroute{owned("10.200.1.0/24", "192.168.170.20")}, local: here,
			foreign: map[netip.Prefix][]kroute{w1.Dst: {foreign("10.200.2.0/24", "192.168.170.99", unix.RTPROT_BOOT), foreign("10.200.2.0/24", "192.168.170.98", unix.RTPROT_STATIC)}}},
		adopt: true,
		want:  []string{"present 1", "adopt 10.200.2.0/24 (proto 3)", "adopt 10.200.2.0/24 (proto 4)", "replace 10.200.2.0/24 via 192.168.170.21"},
	}, {
		name: "the node's own CIDR is never routed, not even with adopt",
		// The list hands master-0's block (cbr0 holds 10.200.0.1) to
		// worker-9, and names master-0 under another name: both are
		// master-0's own; its owned route there goes.
		desired: []Route{w0, route("10.200.0.0/24", "192.168.170.29", "worker-9"), route("10.200.7.0/24", "192.168.170.10", "alias")},
		cur: current{owned: []kroute{owned("10.200.1.0/24", "192.168.170.20"), owned("10.200.0.0/24", "192.168.170.29")}, local: here,
			foreign: map[netip.Prefix][]kroute{mp("10.200.0.0/24"): {foreign("10.200.0.0/24", "", unix.RTPROT_KERNEL)}}},
		adopt: true,
		want: []string{"present 1", "remove 10.200.0.0/24 via 192.168.170.29",
			"conflict 10.200.0.0/24 via 192.168.170.29: this node's own address 10.200.0.1 lies in it: a node's own pod CIDR is never routed away",
			"conflict 10.200.7.0/24 via 192.168.170.10: its next hop 192.168.170.10 is this node's own address: a node's own pod CIDR is never routed"},
	}, {
		name:    "flush: nothing desired, everything owned goes",
		desired: nil,
		cur:     current{owned: []kroute{owned("10.200.1.0/24", "192.168.170.20")}, local: here},
		want:    []string{"present 0", "remove 10.200.1.0/24 via 192.168.170.20"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := lines(diff(tc.desired, tc.cur, tc.adopt))
			if !slices.Equal(got, tc.want) {
				t.Errorf("diff:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// A sync reads foreign routes only when a first diff adds something, and
// only at those destinations: the second diff must agree with one that saw
// every foreign route.
func TestDiffForeignReadLater(t *testing.T) {
	desired := []Route{w0, w1}
	all := map[netip.Prefix][]kroute{
		w1.Dst:               {foreign("10.200.2.0/24", "192.168.170.99", unix.RTPROT_BOOT)},
		mp("10.200.1.0/24"):  {foreign("10.200.1.0/24", "192.168.170.98", unix.RTPROT_BOOT)}, // beside an owned route: not a clash
		mp("192.168.0.0/16"): {foreign("192.168.0.0/16", "192.168.170.1", unix.RTPROT_BOOT)},
	}
	cur := current{owned: []kroute{owned("10.200.1.0/24", "192.168.170.20")}, local: here}
	first := diff(desired, cur, false)
	if len(first.add) != 1 || first.add[0] != w1 {
		t.Fatalf("first diff adds %v, want only %v", first.add, w1)
	}
	cur.foreign = map[netip.Prefix][]kroute{}
	for _, r := range first.add {
		cur.foreign[r.Dst] = all[r.Dst]
	}
	second := lines(diff(desired, cur, false))
	cur.foreign = all
	if full := lines(diff(desired, cur, false)); !slices.Equal(second, full) {
		t.Errorf("with the foreign routes at the additions:\n  %s\nwith all of them:\n  %s", strings.Join(second, "\n  "), strings.Join(full, "\n  "))
	}
}

// Test mode's report is the diff itself; the report apply starts from
// lists only what is known before the kernel answers (conflicts).
func TestDiffReport(t *testing.T) {
	cur := current{
		owned: []kroute{owned("10.200.1.0/24", "192.168.170.20"), owned("10.200.2.0/24", "192.168.170.11"), owned("10.200.9.0/24", "192.168.170.29")},
		local: here,
		foreign: map[netip.Prefix][]kroute{
			mp("10.200.3.0/24"): {foreign("10.200.3.0/24", "192.168.170.99", unix.RTPROT_STATIC)},
		},
	}
	desired := []Route{w0, w1, route("10.200.3.0/24", "192.168.170.22", "worker-2"), route("10.200.4.0/24", "192.168.170.23", "worker-3")}
	ch := diff(desired, cur, false)
	named := func(rs []kroute) string { return fmt.Sprintf("%d routes", len(rs)) }

	rep := ch.report(len(desired), true, named)
	want := Report{Desired: 4, Present: 1, Mode: "plain",
		Added:     []Route{route("10.200.4.0/24", "192.168.170.23", "worker-3")},
		Replaced:  []Route{w1},
		Removed:   []Route{{Dst: mp("10.200.9.0/24"), Via: ma("192.168.170.29")}},
		Failed:    []Failure{},
		Conflicts: []Conflict{{Route: route("10.200.3.0/24", "192.168.170.22", "worker-2"), Existing: "1 routes"}},
	}
	if fmt.Sprint(*rep) != fmt.Sprint(want) {
		t.Errorf("test-mode report\n  %+v\nwant\n  %+v", *rep, want)
	}
	if !rep.Changed() {
		t.Error("a test-mode report with changes says nothing changes")
	}

	rep = ch.report(len(desired), false, named)
	if rep.Changed() || len(rep.Conflicts) != 1 || rep.Present != 1 || rep.Desired != 4 || rep.Added == nil || rep.Failed == nil {
		t.Errorf("report before apply: %+v", *rep)
	}
}
