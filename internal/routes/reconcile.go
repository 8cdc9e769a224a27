package routes

import (
	"errors"
	"fmt"
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
	// Plain makes gateway routes instead of routes via nexthop objects
	// (kernels without nexthop objects get plain routes anyway).
	Plain bool
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
	// Mode is how routes point at their next hop: "nexthop-objects" or
	// "plain" (gateway routes).
	Mode string `json:"mode"`
}

// Changed reports whether the run changed (or would change) anything.
func (r *Report) Changed() bool {
	return len(r.Added)+len(r.Replaced)+len(r.Removed) > 0
}

// Conn is the reconciler's connection to one network namespace's routing.
type Conn struct {
	o     Options
	h     *netlink.Handle // addresses and links
	raw   *rtnl           // routes and nexthop objects
	local map[netip.Addr]bool
}

// Open connects to the options' namespace.
func Open(o Options) (*Conn, error) {
	if o.Protocol == 0 {
		o.Protocol = DefaultProtocol
	}
	if o.Table == 0 {
		o.Table = unix.RT_TABLE_MAIN
	}
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
	raw, err := openRTNL(o.Netns)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &Conn{o: o, h: h, raw: raw}, nil
}

// Close releases the sockets.
func (c *Conn) Close() {
	c.h.Close()
	c.raw.Close()
}

// LocalAddrs returns the addresses on the namespace's interfaces, read
// once per connection.
func (c *Conn) LocalAddrs() (map[netip.Addr]bool, error) {
	if c.local != nil {
		return c.local, nil
	}
	addrs, err := c.h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	out := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out[ip.Unmap()] = true
		}
	}
	c.local = out
	return out, nil
}

// routes lists the table's routes of both families, only kubesalt's when
// own is set.
func (c *Conn) routes(own bool) ([]kroute, error) {
	proto := uint8(0)
	if own {
		proto = uint8(c.o.Protocol)
	}
	v4, err := c.raw.routes(true, c.o.Table, proto)
	if err != nil {
		return nil, err
	}
	v6, err := c.raw.routes(false, c.o.Table, proto)
	return append(v4, v6...), err
}

// List returns the routes kubesalt owns.
func (c *Conn) List() ([]Route, error) {
	own, err := c.routes(true)
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(own))
	for _, r := range own {
		out = append(out, Route{Dst: r.dst, Via: r.gw})
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].Dst, out[j].Dst) })
	return out, nil
}

// change is one request of a sync and what to report of it.
type change struct {
	msg    message
	route  Route
	report *[]Route // where it goes when the kernel accepts it
	verb   string
}

// Sync makes the owned routes equal desired: it adds what is missing,
// replaces owned routes whose next hop changed, removes owned routes no
// longer desired, and leaves every other route alone (diff decides, apply
// executes). A route the kernel refuses is reported and the others go on;
// the next run retries it.
func (c *Conn) Sync(desired []Route) (*Report, error) {
	ch, err := c.diff(desired)
	if err != nil {
		return nil, err
	}
	rep := ch.report(len(desired), c.o.Test, c.describe)
	if c.o.Test {
		return rep, nil
	}
	if err := c.apply(desired, ch, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// diff reads what diff needs from the kernel and returns its changes. The
// foreign routes are read only when something is to be added: a no-op
// sync dumps kubesalt's routes alone.
func (c *Conn) diff(desired []Route) (changes, error) {
	var cur current
	var err error
	if cur.owned, err = c.routes(true); err != nil {
		return changes{}, err
	}
	if cur.local, err = c.LocalAddrs(); err != nil {
		return changes{}, err
	}
	ch := diff(desired, cur, c.o.Adopt)
	if len(ch.add) == 0 {
		return ch, nil
	}
	if cur.foreign, err = c.foreignAt(ch.add); err != nil {
		return changes{}, err
	}
	return diff(desired, cur, c.o.Adopt), nil
}

// apply executes ch over netlink and reports each request's outcome in rep.
func (c *Conn) apply(desired []Route, ch changes, rep *Report) error {
	o := c.o
	proto := uint8(o.Protocol)
	var nhs *nexthopSet
	if !o.Plain {
		var err error
		nhs, err = newNexthopSet(c.raw, c.h, proto)
		switch {
		case errors.Is(err, errNoNexthops):
			nhs = nil
		case err != nil:
			return err
		default:
			rep.Mode = "nexthop-objects"
		}
	}
	var nhFailed map[netip.Addr]error
	if nhs != nil {
		var gws []netip.Addr
		for _, r := range append(append([]Route{}, ch.replace...), ch.add...) {
			gws = append(gws, r.Via)
		}
		nhFailed = nhs.ensure(gws)
	}
	set := func(r Route, replace bool) message {
		if nhs != nil {
			return setRoute(r.Dst, r.Via, nhs.byGw[r.Via], o.Table, proto, replace)
		}
		return setRoute(r.Dst, r.Via, 0, o.Table, proto, replace)
	}

	// One batch, in order: removals, adopted routes' removal, replacements,
	// additions. Add, not replace: a foreign route that appeared since the
	// listing is refused by the kernel (EEXIST), never clobbered.
	var changes []change
	for _, k := range ch.remove {
		changes = append(changes, change{msg: delRoute(k), route: Route{Dst: k.dst, Via: k.gw}, report: &rep.Removed, verb: "remove"})
	}
	for _, k := range ch.adopt {
		changes = append(changes, change{msg: delRoute(k)})
	}
	queue := func(rs []Route, report *[]Route, replace bool, verb string) {
		for _, r := range rs {
			if err := nhFailed[r.Via]; err != nil {
				rep.Failed = append(rep.Failed, Failure{Route: r, Error: verb + ": " + err.Error()})
				continue
			}
			changes = append(changes, change{msg: set(r, replace), route: r, report: report, verb: verb})
		}
	}
	queue(ch.replace, &rep.Replaced, true, "replace")
	queue(ch.add, &rep.Added, false, "add")

	msgs := make([]message, len(changes))
	for i, x := range changes {
		msgs[i] = x.msg
	}
	var appeared []Route
	for i, err := range c.raw.exec(msgs) {
		x := changes[i]
		switch {
		case x.report == nil: // an adopted route's removal: its replacement tells
		case err == nil || (x.verb == "remove" && errors.Is(err, unix.ESRCH)):
			*x.report = append(*x.report, x.route)
		case x.verb == "add" && errors.Is(err, unix.EEXIST):
			appeared = append(appeared, x.route)
		default:
			rep.Failed = append(rep.Failed, Failure{Route: x.route, Error: x.verb + ": " + err.Error()})
		}
	}
	if err := c.sortAppeared(appeared, rep); err != nil {
		return err
	}
	if nhs != nil {
		keep := make(map[netip.Addr]bool, len(desired))
		for _, r := range desired {
			keep[r.Via] = true
		}
		for _, err := range c.raw.exec(nhs.unused(keep)) {
			if err != nil && !errors.Is(err, unix.ENOENT) {
				rep.Failed = append(rep.Failed, Failure{Error: "removing an unused nexthop object: " + err.Error()})
			}
		}
	}
	return nil
}

// sortAppeared looks again at the routes the kernel refused to add
// because one for their destination appeared since the listing: the same
// route of kubesalt's own protocol is another sync of this node that ran
// at the same time (a state run beside an orchestration's publish) and is
// as good as added; anything else is a conflict, never clobbered.
func (c *Conn) sortAppeared(appeared []Route, rep *Report) error {
	if len(appeared) == 0 {
		return nil
	}
	own, err := c.routes(true)
	if err != nil {
		return err
	}
	type hop struct {
		dst netip.Prefix
		via netip.Addr
	}
	ours := make(map[hop]bool, len(own))
	for _, k := range own {
		ours[hop{k.dst, k.gw}] = true
	}
	for _, r := range appeared {
		if !ours[hop{r.Dst, r.Via}] {
			rep.Conflicts = append(rep.Conflicts, Conflict{Route: r, Existing: "a route for " + r.Dst.String() + " appeared during the sync"})
		}
	}
	return nil
}

// foreignAt returns the routes not owned by kubesalt at the destinations of
// rs, read from one kernel-filtered dump of the table.
func (c *Conn) foreignAt(rs []Route) (map[netip.Prefix][]kroute, error) {
	all, err := c.routes(false)
	if err != nil {
		return nil, err
	}
	wanted := make(map[netip.Prefix]bool, len(rs))
	for _, r := range rs {
		wanted[r.Dst] = true
	}
	out := map[netip.Prefix][]kroute{}
	for _, k := range all {
		if k.protocol != uint8(c.o.Protocol) && wanted[k.dst] {
			out[k.dst] = append(out[k.dst], k)
		}
	}
	return out, nil
}

// describe names the routes' interfaces from the namespace's links.
func (c *Conn) describe(rs []kroute) string {
	return describe(rs, func(index uint32) string {
		if link, err := c.h.LinkByIndex(int(index)); err == nil {
			return link.Attrs().Name
		}
		return ""
	})
}

// Flush removes every route (and nexthop object) kubesalt owns.
func (c *Conn) Flush() (*Report, error) {
	all := *c
	all.o.Plain = false // nexthop objects made by an earlier run go too
	return all.Sync(nil)
}
