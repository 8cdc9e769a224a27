package routes

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Routes via many distinct gateways are slow to add as plain routes: the
// kernel's IPv4 fib_info hash leaves the gateway out, so every such route
// on one device lands in one bucket and each add scans them all (20,000
// routes take seconds). A nexthop object per gateway (kernel 5.3+), with
// routes pointing at it by id, is hashed by id instead.

// nexthopIDBase is where kubesalt's nexthop ids start ("KS"), away from the
// small ids people and other daemons pick.
const nexthopIDBase = 0x4b530000

// nexthopSet is kubesalt's nexthop objects, one per gateway.
type nexthopSet struct {
	c      *rtnl
	proto  uint8
	byGw   map[netip.Addr]uint32
	used   map[uint32]bool
	next   uint32
	onLink []onLink
}

type onLink struct {
	net netip.Prefix
	oif uint32
}

func newNexthopSet(c *rtnl, h *netlink.Handle, proto uint8) (*nexthopSet, error) {
	all, err := c.nexthops()
	if err != nil {
		return nil, err
	}
	s := &nexthopSet{c: c, proto: proto, byGw: map[netip.Addr]uint32{}, used: map[uint32]bool{}, next: nexthopIDBase}
	for _, nh := range all {
		s.used[nh.id] = true
		if nh.protocol == proto && nh.gw.IsValid() {
			s.byGw[nh.gw] = nh.id
		}
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if ok && !ip.IsLinkLocalUnicast() {
			s.onLink = append(s.onLink, onLink{netip.PrefixFrom(ip.Unmap(), ones).Masked(), uint32(a.LinkIndex)})
		}
	}
	return s, nil
}

// ensure makes a nexthop object for every gateway in gws that has none,
// on the interface whose network holds it, and returns why each gateway
// that still has none failed.
func (s *nexthopSet) ensure(gws []netip.Addr) map[netip.Addr]error {
	failed := map[netip.Addr]error{}
	var msgs []message
	var pending []netip.Addr
	for _, gw := range gws {
		if _, ok := s.byGw[gw]; ok {
			continue
		}
		if _, ok := failed[gw]; ok {
			continue
		}
		oif, bits := uint32(0), -1
		for _, l := range s.onLink {
			if l.net.Contains(gw) && l.net.Bits() > bits {
				oif, bits = l.oif, l.net.Bits()
			}
		}
		if oif == 0 {
			failed[gw] = fmt.Errorf("next hop %s is unreachable: no interface here has an address in its network", gw)
			continue
		}
		for s.used[s.next] {
			s.next++
		}
		s.used[s.next] = true
		s.byGw[gw] = s.next
		msgs = append(msgs, addNexthop(s.next, gw, oif, s.proto))
		pending = append(pending, gw)
		failed[gw] = nil // placeholder: made below
	}
	for i, err := range s.c.exec(msgs) {
		gw := pending[i]
		if err != nil {
			delete(s.byGw, gw)
			failed[gw] = fmt.Errorf("nexthop via %s: %w", gw, err)
		} else {
			delete(failed, gw)
		}
	}
	return failed
}

// unused returns the requests that delete kubesalt's nexthop objects whose
// gateway no desired route uses.
func (s *nexthopSet) unused(keep map[netip.Addr]bool) []message {
	var msgs []message
	for gw, id := range s.byGw {
		if !keep[gw] {
			msgs = append(msgs, delNexthop(id))
		}
	}
	return msgs
}
