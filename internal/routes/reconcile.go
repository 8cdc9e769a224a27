package routes

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultProtocol is the route protocol number kubesalt owns (rtnetlink
// protocol; `ip route` shows it as `proto kubesalt` once registered).
const DefaultProtocol = 201

// Options says where and how to reconcile.
type Options struct {
	Netns    string // named network namespace (ip netns); "" = this one
	Protocol int
	Table    int  // routing table; 0 = main
	Adopt    bool // take over a foreign route for a desired destination
	Test     bool // compute the diff, apply nothing
}

// Failure is a route the kernel refused; the next run retries it.
type Failure struct {
	Route Route  `json:"route"`
	Error string `json:"error"`
}

// Conflict is a route kubesalt wants where a route it does not own exists.
type Conflict struct {
	Route    Route  `json:"route"`
	Existing string `json:"existing"`
}

// Report is what a reconcile found and did (or, in test mode, would do).
type Report struct {
	Desired   int        `json:"desired"`
	Present   int        `json:"present"` // desired routes already right before the run
	Added     []Route    `json:"added"`
	Replaced  []Route    `json:"replaced"`
	Removed   []Route    `json:"removed"`
	Failed    []Failure  `json:"failed"`
	Conflicts []Conflict `json:"conflicts"`
}

// Changed reports whether the run changed (or would change) anything.
func (r *Report) Changed() bool {
	return len(r.Added)+len(r.Replaced)+len(r.Removed) > 0
}

func (o Options) table() int {
	if o.Table == 0 {
		return unix.RT_TABLE_MAIN
	}
	return o.Table
}

// Handle opens a netlink handle in the options' namespace, with strict
// checking on so that route dumps are filtered by the kernel.
func (o Options) Handle() (*netlink.Handle, error) {
	ns := netns.None()
	if o.Netns != "" {
		var err error
		if ns, err = netns.GetFromName(o.Netns); err != nil {
			return nil, fmt.Errorf("network namespace %q: %w; create it (ip netns add) or fix --netns", o.Netns, err)
		}
		defer ns.Close()
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening netlink: %w", err)
	}
	if err := h.SetStrictCheck(true); err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink strict checking: %w", err)
	}
	return h, nil
}

// LocalAddrs returns the addresses on the namespace's interfaces.
func LocalAddrs(h *netlink.Handle) (map[netip.Addr]bool, error) {
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	out := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out[ip.Unmap()] = true
		}
	}
	return out, nil
}

// dump lists the routes of the table, only those of the protocol when
// proto > 0, filtered kernel-side, retrying a dump the kernel interrupted.
func dump(h *netlink.Handle, table, proto int) ([]netlink.Route, error) {
	filter := &netlink.Route{Table: table}
	mask := uint64(netlink.RT_FILTER_TABLE)
	if proto > 0 {
		filter.Protocol = netlink.RouteProtocol(proto)
		mask |= netlink.RT_FILTER_PROTOCOL
	}
	var out []netlink.Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			var rs []netlink.Route
			rs, err = h.RouteListFiltered(fam, filter, mask)
			if !errors.Is(err, netlink.ErrDumpInterrupted) {
				out = append(out, rs...)
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("listing routes: %w", err)
		}
	}
	return out, nil
}

func prefixOf(r *netlink.Route) (netip.Prefix, bool) {
	if r.Dst == nil {
		return netip.Prefix{}, false // a default route
	}
	ip, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

func gwOf(r *netlink.Route) netip.Addr {
	ip, _ := netip.AddrFromSlice(r.Gw)
	return ip.Unmap()
}

// List returns the routes kubesalt owns.
func List(h *netlink.Handle, o Options) ([]Route, error) {
	own, err := dump(h, o.table(), o.Protocol)
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(own))
	for i := range own {
		if dst, ok := prefixOf(&own[i]); ok {
			out = append(out, Route{Dst: dst, Via: gwOf(&own[i])})
		}
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].Dst, out[j].Dst) })
	return out, nil
}

func (o Options) kernelRoute(r Route) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())},
		Gw:       r.Via.AsSlice(),
		Protocol: netlink.RouteProtocol(o.Protocol),
		Table:    o.table(),
		Scope:    netlink.SCOPE_UNIVERSE,
		Type:     unix.RTN_UNICAST,
	}
}

// Sync makes the owned routes equal desired: it adds what is missing,
// replaces owned routes whose next hop changed, removes owned routes no
// longer desired, and leaves every other route alone. A route the kernel
// refuses is reported and the others go on.
func Sync(h *netlink.Handle, o Options, desired []Route) (*Report, error) {
	rep := &Report{Desired: len(desired), Added: []Route{}, Replaced: []Route{}, Removed: []Route{}, Failed: []Failure{}, Conflicts: []Conflict{}}
	own, err := dump(h, o.table(), o.Protocol)
	if err != nil {
		return nil, err
	}
	want := make(map[netip.Prefix]Route, len(desired))
	for _, r := range desired {
		want[r.Dst] = r
	}
	var stale []netlink.Route // owned, not desired, or a duplicate
	var replace []Route
	have := make(map[netip.Prefix]bool, len(own))
	for i := range own {
		dst, ok := prefixOf(&own[i])
		w, wanted := want[dst]
		switch {
		case !ok || !wanted || have[dst]:
			stale = append(stale, own[i])
		case gwOf(&own[i]) != w.Via:
			replace = append(replace, w)
			have[dst] = true
		default:
			rep.Present++
			have[dst] = true
		}
	}
	var add []Route
	for _, r := range desired {
		if !have[r.Dst] {
			add = append(add, r)
		}
	}
	var adopt []netlink.Route // foreign routes to remove when adopting
	if len(add) > 0 {
		foreign, err := foreignAt(h, o, add)
		if err != nil {
			return nil, err
		}
		kept := add[:0]
		for _, r := range add {
			f, clash := foreign[r.Dst]
			switch {
			case !clash:
				kept = append(kept, r)
			case o.Adopt:
				adopt = append(adopt, f...)
				replace = append(replace, r)
			default:
				rep.Conflicts = append(rep.Conflicts, Conflict{Route: r, Existing: describe(h, f)})
			}
		}
		add = kept
	}

	for i := range stale {
		dst, _ := prefixOf(&stale[i])
		r := Route{Dst: dst, Via: gwOf(&stale[i])}
		if !o.Test {
			if err := h.RouteDel(&stale[i]); err != nil && !errors.Is(err, unix.ESRCH) {
				rep.Failed = append(rep.Failed, Failure{Route: r, Error: "remove: " + err.Error()})
				continue
			}
		}
		rep.Removed = append(rep.Removed, r)
	}
	for i := range adopt {
		if !o.Test {
			_ = h.RouteDel(&adopt[i]) // replaced below; a failure shows there
		}
	}
	for _, r := range replace {
		if !o.Test {
			if err := h.RouteReplace(o.kernelRoute(r)); err != nil {
				rep.Failed = append(rep.Failed, Failure{Route: r, Error: "replace: " + err.Error()})
				continue
			}
		}
		rep.Replaced = append(rep.Replaced, r)
	}
	for _, r := range add {
		if !o.Test {
			// Add, not replace: a foreign route that appeared since the
			// listing is refused by the kernel (EEXIST), never clobbered.
			if err := h.RouteAdd(o.kernelRoute(r)); err != nil {
				if errors.Is(err, unix.EEXIST) {
					rep.Conflicts = append(rep.Conflicts, Conflict{Route: r, Existing: "a route for " + r.Dst.String() + " appeared during the sync"})
				} else {
					rep.Failed = append(rep.Failed, Failure{Route: r, Error: "add: " + err.Error()})
				}
				continue
			}
		}
		rep.Added = append(rep.Added, r)
	}
	return rep, nil
}

// foreignAt returns the routes not owned by kubesalt at the destinations of
// rs, read from one kernel-filtered dump of the table.
func foreignAt(h *netlink.Handle, o Options, rs []Route) (map[netip.Prefix][]netlink.Route, error) {
	all, err := dump(h, o.table(), 0)
	if err != nil {
		return nil, err
	}
	wanted := make(map[netip.Prefix]bool, len(rs))
	for _, r := range rs {
		wanted[r.Dst] = true
	}
	out := map[netip.Prefix][]netlink.Route{}
	for i := range all {
		if int(all[i].Protocol) == o.Protocol {
			continue
		}
		if dst, ok := prefixOf(&all[i]); ok && wanted[dst] {
			out[dst] = append(out[dst], all[i])
		}
	}
	return out, nil
}

func describe(h *netlink.Handle, rs []netlink.Route) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += "; "
		}
		dst, _ := prefixOf(&r)
		s += dst.String()
		if gw := gwOf(&r); gw.IsValid() {
			s += " via " + gw.String()
		}
		if link, err := h.LinkByIndex(r.LinkIndex); err == nil {
			s += " dev " + link.Attrs().Name
		}
		s += " proto " + r.Protocol.String()
		if r.Priority > 0 {
			s += fmt.Sprintf(" metric %d", r.Priority)
		}
	}
	return s
}

// Flush removes every route kubesalt owns.
func Flush(h *netlink.Handle, o Options) (*Report, error) {
	return Sync(h, o, nil)
}
