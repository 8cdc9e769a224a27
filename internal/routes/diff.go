package routes

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// The reconciler in two parts, as internal/cidr has them: diff decides,
// with no I/O, what a sync must change; Conn.apply (reconcile.go) reads the
// kernel, calls diff and executes its changes over netlink.

// current is the kernel's state as diff needs it.
type current struct {
	owned []kroute // kubesalt's routes (its protocol) in the table
	// foreign is every other route at a destination diff would add, by
	// destination. Only those can clash, so a caller may read them after a
	// first diff without any, and only when that diff adds something.
	foreign map[netip.Prefix][]kroute
	local   map[netip.Addr]bool // the namespace's own addresses
}

// changes is what makes the owned routes equal the desired ones.
type changes struct {
	present   int      // desired routes already right
	remove    []kroute // owned routes not desired, duplicates and multipath
	adopt     []kroute // foreign routes removed to take their destination over
	replace   []Route  // owned routes with another next hop, then adopted ones
	add       []Route
	conflicts []conflict // desired routes left undone
}

// conflict is a desired route that diff will not make: a foreign route is
// in the way (and adopting was not asked), or the route is this node's own.
type conflict struct {
	route   Route
	foreign []kroute
	reason  string // when no foreign route is in the way
}

// diff returns what a sync of desired against cur must change. An owned
// route whose next hop differs is replaced; an owned route for no desired
// destination goes; a desired destination held by a foreign route is a
// conflict unless adopt, which removes the foreign route and makes ours.
// A route via a local address, or to a destination holding one, is this
// node's own pod CIDR: never routed, never adopted, whatever the node list
// says (a CIDR the plan handed to another node while this one still has it).
func diff(desired []Route, cur current, adopt bool) changes {
	var ch changes
	want := make(map[netip.Prefix]Route, len(desired))
	ownCIDR := make(map[netip.Prefix]bool)
	for _, r := range desired {
		if why := ownRoute(r, cur.local); why != "" {
			ownCIDR[r.Dst] = true
			ch.conflicts = append(ch.conflicts, conflict{route: r, reason: why})
			continue
		}
		want[r.Dst] = r
	}
	have := make(map[netip.Prefix]bool, len(cur.owned))
	for _, k := range cur.owned {
		w, wanted := want[k.dst]
		switch {
		case !wanted || have[k.dst] || k.multipath:
			ch.remove = append(ch.remove, k)
		case k.gw != w.Via:
			ch.replace = append(ch.replace, w)
			have[k.dst] = true
		default:
			ch.present++
			have[k.dst] = true
		}
	}
	for _, r := range desired {
		if have[r.Dst] || ownCIDR[r.Dst] {
			continue
		}
		f, clash := cur.foreign[r.Dst]
		switch {
		case !clash:
			ch.add = append(ch.add, r)
		case adopt:
			ch.adopt = append(ch.adopt, f...)
			ch.replace = append(ch.replace, r)
		default:
			ch.conflicts = append(ch.conflicts, conflict{route: r, foreign: f})
		}
	}
	return ch
}

// ownRoute says why r would route this node's own addresses away, or "".
func ownRoute(r Route, local map[netip.Addr]bool) string {
	if local[r.Via] {
		return fmt.Sprintf("its next hop %s is this node's own address: a node's own pod CIDR is never routed", r.Via)
	}
	var in netip.Addr // the lowest, so the message is the same every run
	for a := range local {
		if r.Dst.Contains(a) && (!in.IsValid() || a.Less(in)) {
			in = a
		}
	}
	if in.IsValid() {
		return fmt.Sprintf("this node's own address %s lies in it: a node's own pod CIDR is never routed away", in)
	}
	return ""
}

// report is the Report of ch before anything is applied: in test mode, the
// whole answer. describe names the foreign routes of a conflict.
func (ch *changes) report(desired int, test bool, describe func([]kroute) string) *Report {
	rep := &Report{Desired: desired, Present: ch.present, Added: []Route{}, Replaced: []Route{}, Removed: []Route{}, Failed: []Failure{}, Conflicts: []Conflict{}, Mode: "plain"}
	for _, c := range ch.conflicts {
		existing := c.reason
		if len(c.foreign) > 0 {
			existing = describe(c.foreign)
		}
		rep.Conflicts = append(rep.Conflicts, Conflict{Route: c.route, Existing: existing})
	}
	if test {
		for _, k := range ch.remove {
			rep.Removed = append(rep.Removed, Route{Dst: k.dst, Via: k.gw})
		}
		rep.Replaced = append(rep.Replaced, ch.replace...)
		rep.Added = append(rep.Added, ch.add...)
	}
	return rep
}

// describe writes routes as `ip route` would, naming interfaces by
// linkName ("" when it has none).
func describe(rs []kroute, linkName func(index uint32) string) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += "; "
		}
		s += r.dst.String()
		if r.gw.IsValid() {
			s += " via " + r.gw.String()
		}
		if name := linkName(r.oif); name != "" {
			s += " dev " + name
		}
		s += " proto " + netlink.RouteProtocol(r.protocol).String()
		if r.priority > 0 {
			s += fmt.Sprintf(" metric %d", r.priority)
		}
	}
	return s
}
