package routes

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The requests rtnl.go builds are decoded here by vishvananda/netlink's nl
// package and the standard library, and the replies it decodes are built by
// them: the encoding is checked against a second implementation, with no
// socket and no root.

// decoded is a sealed request taken apart.
type decoded struct {
	hdr   syscall.NlMsghdr
	body  []byte // the fixed header (rtmsg, nhmsg) and attributes
	attrs map[uint16]syscall.NetlinkRouteAttr
}

func decode(t *testing.T, m message, fixed int) decoded {
	t.Helper()
	m = m.seal(42, unix.NLM_F_ACK)
	if len(m)%4 != 0 {
		t.Fatalf("message of %d bytes is not 4-byte aligned", len(m))
	}
	msgs, err := syscall.ParseNetlinkMessage(m)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("not one netlink message: %v (%d)", err, len(msgs))
	}
	d := decoded{hdr: msgs[0].Header, body: msgs[0].Data}
	if int(d.hdr.Len) != len(m) || d.hdr.Seq != 42 {
		t.Errorf("header %+v for %d bytes, want its length and seq 42", d.hdr, len(m))
	}
	if d.attrs, err = nl.ParseRouteAttrAsMap(d.body[fixed:]); err != nil {
		t.Fatalf("attributes: %v", err)
	}
	return d
}

func (d decoded) u32(t *testing.T, typ uint16) uint32 {
	t.Helper()
	a, ok := d.attrs[typ]
	if !ok || len(a.Value) != 4 {
		t.Fatalf("attribute %d: %v", typ, a.Value)
	}
	return native.Uint32(a.Value)
}

func (d decoded) addr(t *testing.T, typ uint16) netip.Addr {
	t.Helper()
	ip, ok := netip.AddrFromSlice(d.attrs[typ].Value)
	if !ok {
		t.Fatalf("attribute %d is no address: %v", typ, d.attrs[typ].Value)
	}
	return ip
}

func TestSetRouteRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dst     string
		gw      string
		nhid    uint32
		table   int
		replace bool
	}{
		{name: "IPv4 via a gateway", dst: "10.200.1.0/24", gw: "192.168.170.20", table: unix.RT_TABLE_MAIN},
		{name: "IPv4 via a nexthop object, replacing", dst: "10.200.1.0/24", gw: "192.168.170.20", nhid: nexthopIDBase + 7, table: unix.RT_TABLE_MAIN, replace: true},
		{name: "IPv6 via a gateway", dst: "fd00:10:200:1::/64", gw: "fd00:170::20", table: unix.RT_TABLE_MAIN},
		{name: "a table id above 255", dst: "10.200.1.0/24", gw: "192.168.170.20", table: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst, gw := netip.MustParsePrefix(tc.dst), netip.MustParseAddr(tc.gw)
			d := decode(t, setRoute(dst, gw, tc.nhid, tc.table, 201, tc.replace), unix.SizeofRtMsg)
			flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_ACK | unix.NLM_F_CREATE | unix.NLM_F_EXCL)
			if tc.replace {
				flags = unix.NLM_F_REQUEST | unix.NLM_F_ACK | unix.NLM_F_CREATE | unix.NLM_F_REPLACE
			}
			if d.hdr.Type != unix.RTM_NEWROUTE || d.hdr.Flags != flags {
				t.Errorf("type %d flags %#x, want %d %#x", d.hdr.Type, d.hdr.Flags, unix.RTM_NEWROUTE, flags)
			}
			rt := nl.DeserializeRtMsg(d.body)
			family := uint8(unix.AF_INET)
			if dst.Addr().Is6() {
				family = unix.AF_INET6
			}
			headerTable := uint8(tc.table)
			if tc.table > 255 {
				headerTable = unix.RT_TABLE_UNSPEC // the id goes in RTA_TABLE alone
			}
			if rt.Family != family || int(rt.Dst_len) != dst.Bits() || rt.Table != headerTable || rt.Protocol != 201 ||
				rt.Scope != unix.RT_SCOPE_UNIVERSE || rt.Type != unix.RTN_UNICAST {
				t.Errorf("rtmsg %+v", rt.RtMsg)
			}
			if got := d.addr(t, unix.RTA_DST); got != dst.Addr() {
				t.Errorf("RTA_DST %s, want %s", got, dst.Addr())
			}
			if got := d.u32(t, unix.RTA_TABLE); got != uint32(tc.table) {
				t.Errorf("RTA_TABLE %d", got)
			}
			_, hasGw := d.attrs[unix.RTA_GATEWAY]
			if tc.nhid > 0 {
				if got := d.u32(t, rtaNHID); got != tc.nhid || hasGw {
					t.Errorf("RTA_NH_ID %d (gateway too: %v), want %d alone", got, hasGw, tc.nhid)
				}
			} else if got := d.addr(t, unix.RTA_GATEWAY); got != gw {
				t.Errorf("RTA_GATEWAY %s, want %s", got, gw)
			}
		})
	}
}

func TestDelRouteRequest(t *testing.T) {
	k := kroute{dst: netip.MustParsePrefix("10.200.2.0/24"), gw: netip.MustParseAddr("192.168.170.99"), table: unix.RT_TABLE_MAIN, protocol: unix.RTPROT_BOOT, priority: 100, nhid: 9}
	d := decode(t, delRoute(k), unix.SizeofRtMsg)
	rt := nl.DeserializeRtMsg(d.body)
	if d.hdr.Type != unix.RTM_DELROUTE || d.hdr.Flags != unix.NLM_F_REQUEST|unix.NLM_F_ACK {
		t.Errorf("header %+v", d.hdr)
	}
	if rt.Family != unix.AF_INET || rt.Dst_len != 24 || rt.Protocol != unix.RTPROT_BOOT || rt.Table != unix.RT_TABLE_MAIN {
		t.Errorf("rtmsg %+v", rt.RtMsg)
	}
	if d.u32(t, unix.RTA_PRIORITY) != 100 || d.u32(t, unix.RTA_TABLE) != unix.RT_TABLE_MAIN || d.addr(t, unix.RTA_DST) != k.dst.Addr() {
		t.Errorf("attributes %v", d.attrs)
	}
	// Matched by destination, not next hop: a route via a nexthop object
	// and a plain one are deleted alike.
	for _, typ := range []uint16{unix.RTA_GATEWAY, rtaNHID, unix.RTA_OIF} {
		if _, ok := d.attrs[typ]; ok {
			t.Errorf("attribute %d in a delete: it would fail to match some routes", typ)
		}
	}
	k.priority = 0
	if d := decode(t, delRoute(k), unix.SizeofRtMsg); len(d.attrs) != 2 {
		t.Errorf("metric 0: attributes %v, want RTA_DST and RTA_TABLE alone", d.attrs)
	}
}

func TestRouteDumpRequest(t *testing.T) {
	d := decode(t, routeDump(false, 1000, 201), unix.SizeofRtMsg)
	rt := nl.DeserializeRtMsg(d.body)
	if d.hdr.Type != unix.RTM_GETROUTE || d.hdr.Flags&unix.NLM_F_DUMP != unix.NLM_F_DUMP {
		t.Errorf("header %+v", d.hdr)
	}
	if rt.Family != unix.AF_INET6 || rt.Protocol != 201 || rt.Table != unix.RT_TABLE_UNSPEC || d.u32(t, unix.RTA_TABLE) != 1000 {
		t.Errorf("rtmsg %+v, RTA_TABLE %v", rt.RtMsg, d.attrs[unix.RTA_TABLE].Value)
	}
}

func TestNexthopRequests(t *testing.T) {
	d := decode(t, addNexthop(nexthopIDBase, netip.MustParseAddr("fd00:170::20"), 3, 201), 8)
	if d.hdr.Type != unix.RTM_NEWNEXTHOP || d.hdr.Flags != unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL {
		t.Errorf("header %+v", d.hdr)
	}
	if d.body[0] != unix.AF_INET6 || d.body[2] != 201 {
		t.Errorf("nhmsg %v: want family AF_INET6, protocol 201", d.body[:8])
	}
	if d.u32(t, unix.NHA_ID) != nexthopIDBase || d.u32(t, unix.NHA_OIF) != 3 || d.addr(t, unix.NHA_GATEWAY) != netip.MustParseAddr("fd00:170::20") {
		t.Errorf("attributes %v", d.attrs)
	}
	d = decode(t, delNexthop(nexthopIDBase+1), 8)
	if d.hdr.Type != unix.RTM_DELNEXTHOP || len(d.attrs) != 1 || d.u32(t, unix.NHA_ID) != nexthopIDBase+1 {
		t.Errorf("delete: %+v %v", d.hdr, d.attrs)
	}
}

// reply builds one RTM_NEWROUTE payload as the kernel sends it in a dump.
func reply(rt unix.RtMsg, attrs ...*nl.RtAttr) []byte {
	b := (&nl.RtMsg{RtMsg: rt}).Serialize()
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func u32(v uint32) []byte { b := make([]byte, 4); native.PutUint32(b, v); return b }

func TestParseRoute(t *testing.T) {
	v4 := unix.RtMsg{Family: unix.AF_INET, Dst_len: 24, Table: unix.RT_TABLE_MAIN, Protocol: 201, Type: unix.RTN_UNICAST}
	for _, tc := range []struct {
		name string
		is4  bool
		p    []byte
		want kroute
		skip bool
	}{{
		name: "IPv4 via a gateway",
		is4:  true,
		p: reply(v4, nl.NewRtAttr(unix.RTA_TABLE, u32(254)), nl.NewRtAttr(unix.RTA_DST, []byte{10, 200, 1, 0}),
			nl.NewRtAttr(unix.RTA_GATEWAY, []byte{192, 168, 170, 20}), nl.NewRtAttr(unix.RTA_OIF, u32(2)), nl.NewRtAttr(unix.RTA_PRIORITY, u32(100))),
		want: kroute{dst: mp("10.200.1.0/24"), gw: ma("192.168.170.20"), oif: 2, priority: 100, table: 254, protocol: 201},
	}, {
		name: "IPv6 via a nexthop object, in a table above 255",
		p: reply(unix.RtMsg{Family: unix.AF_INET6, Dst_len: 64, Table: unix.RT_TABLE_UNSPEC, Protocol: 201},
			nl.NewRtAttr(unix.RTA_TABLE, u32(1000)), nl.NewRtAttr(unix.RTA_DST, ma("fd00:10:200:1::").AsSlice()), nl.NewRtAttr(rtaNHID, u32(nexthopIDBase)),
			nl.NewRtAttr(unix.RTA_GATEWAY, ma("fd00:170::20").AsSlice())),
		want: kroute{dst: mp("fd00:10:200:1::/64"), gw: ma("fd00:170::20"), nhid: nexthopIDBase, table: 1000, protocol: 201},
	}, {
		name: "the default route has no RTA_DST",
		is4:  true,
		p:    reply(unix.RtMsg{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_BOOT}, nl.NewRtAttr(unix.RTA_GATEWAY, []byte{192, 168, 170, 1})),
		want: kroute{dst: mp("0.0.0.0/0"), gw: ma("192.168.170.1"), table: unix.RT_TABLE_MAIN, protocol: unix.RTPROT_BOOT},
	}, {
		name: "a multipath route, its nested next hops not read",
		is4:  true,
		p: reply(v4, nl.NewRtAttr(unix.RTA_DST, []byte{10, 200, 2, 0}),
			nl.NewRtAttr(unix.RTA_MULTIPATH|unix.NLA_F_NESTED, make([]byte, 16))),
		want: kroute{dst: mp("10.200.2.0/24"), table: unix.RT_TABLE_MAIN, protocol: 201, multipath: true},
	}, {
		name: "a cached clone is skipped",
		is4:  true,
		p:    reply(unix.RtMsg{Family: unix.AF_INET, Dst_len: 32, Table: unix.RT_TABLE_MAIN, Flags: unix.RTM_F_CLONED}, nl.NewRtAttr(unix.RTA_DST, []byte{10, 200, 2, 5})),
		skip: true,
	}, {
		name: "a short message is skipped",
		p:    []byte{unix.AF_INET6, 64},
		skip: true,
	}, {
		name: "a truncated attribute ends the parse, the rest is kept",
		is4:  true,
		p:    append(reply(v4, nl.NewRtAttr(unix.RTA_DST, []byte{10, 200, 3, 0})), 40, 0, unix.RTA_GATEWAY, 0, 192),
		want: kroute{dst: mp("10.200.3.0/24"), table: unix.RT_TABLE_MAIN, protocol: 201},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseRoute(tc.p, tc.is4)
			if ok == tc.skip || (ok && got != tc.want) {
				t.Errorf("parseRoute = %+v, %v; want %+v, %v", got, ok, tc.want, !tc.skip)
			}
		})
	}
}

func TestParseNexthop(t *testing.T) {
	p := append([]byte{unix.AF_INET, 0, 201, 0, 0, 0, 0, 0},
		append(nl.NewRtAttr(unix.NHA_ID, u32(nexthopIDBase+2)).Serialize(),
			append(nl.NewRtAttr(unix.NHA_GATEWAY, []byte{192, 168, 170, 21}).Serialize(), nl.NewRtAttr(unix.NHA_OIF, u32(2)).Serialize()...)...)...)
	nh, ok := parseNexthop(p)
	if want := (nexthop{id: nexthopIDBase + 2, gw: ma("192.168.170.21"), protocol: 201}); !ok || nh != want {
		t.Errorf("parseNexthop = %+v, %v; want %+v", nh, ok, want)
	}
	if _, ok := parseNexthop(p[:7]); ok {
		t.Error("a short nexthop message parsed")
	}
}

// nlmsgerr is an NLMSG_ERROR payload: the error code, the request's
// header (and, unless capped, its body), then extended-ack attributes.
func nlmsgerr(code int32, request message, capped bool, text string) (unix.NlMsghdr, []byte) {
	h := unix.NlMsghdr{Type: unix.NLMSG_ERROR}
	p := u32(uint32(code))
	if capped {
		p = append(p, request[:unix.NLMSG_HDRLEN]...)
		h.Flags |= nlmFCapped
	} else {
		p = append(p, request...)
	}
	if text != "" {
		h.Flags |= nlmFAckTLVs
		p = append(p, nl.NewRtAttr(nlmsgerrAttrMsg, append([]byte(text), 0)).Serialize()...)
	}
	return h, p
}

func TestAckError(t *testing.T) {
	req := setRoute(mp("10.200.1.0/24"), ma("192.168.170.20"), 0, 254, 201, false).seal(3, unix.NLM_F_ACK)
	for _, tc := range []struct {
		name   string
		code   int32
		capped bool
		text   string
		errno  error
		want   string
	}{
		{name: "an ack", code: 0},
		{name: "a bare errno", code: -int32(unix.EEXIST), errno: unix.EEXIST, want: unix.EEXIST.Error()},
		{name: "capped, with the kernel's text", code: -int32(unix.ENETUNREACH), capped: true, text: "Nexthop has invalid gateway", errno: unix.ENETUNREACH,
			want: unix.ENETUNREACH.Error() + " (Nexthop has invalid gateway)"},
		{name: "the whole request echoed, then the text", code: -int32(unix.EINVAL), text: "Invalid prefix for given prefix length", errno: unix.EINVAL,
			want: unix.EINVAL.Error() + " (Invalid prefix for given prefix length)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ackError(nlmsgerr(tc.code, req, tc.capped, tc.text))
			switch {
			case tc.errno == nil && err != nil:
				t.Errorf("ack decoded as %v", err)
			case tc.errno != nil && (!errors.Is(err, tc.errno) || err.Error() != tc.want):
				t.Errorf("got %v, want %q (errors.Is %v)", err, tc.want, tc.errno)
			}
		})
	}
	if err := ackError(unix.NlMsghdr{Type: unix.NLMSG_ERROR}, []byte{1, 2}); err == nil {
		t.Error("a short error message decoded as an ack")
	}
}

// receive splits a datagram into its messages; a unix datagram socket
// stands in for the kernel's end.
func TestReceive(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := &rtnl{fd: fds[0], buf: make([]byte, 1<<16)}
	defer c.Close()
	defer unix.Close(fds[1])

	req := delNexthop(1).seal(5, unix.NLM_F_ACK)
	frame := func(h unix.NlMsghdr, p []byte, seq uint32) []byte {
		m := newMessage(h.Type, h.Flags, p)
		m = m.seal(seq, 0)
		native.PutUint16(m[6:], h.Flags) // as the kernel sends it: no NLM_F_REQUEST
		return m
	}
	ack, ackP := nlmsgerr(0, req, true, "")
	fail, failP := nlmsgerr(-int32(unix.ENOENT), req, true, "")
	datagram := append(append(frame(ack, ackP, 5), frame(fail, failP, 6)...), frame(unix.NlMsghdr{Type: unix.NLMSG_DONE}, u32(0), 7)...)
	if _, err := unix.Write(fds[1], datagram); err != nil {
		t.Fatal(err)
	}
	var seqs []uint32
	var errs []error
	err = c.receive(func(h unix.NlMsghdr, p []byte) bool {
		seqs = append(seqs, h.Seq)
		if h.Type == unix.NLMSG_ERROR {
			errs = append(errs, ackError(h, p))
		}
		return h.Type != unix.NLMSG_DONE
	})
	if err != nil || !slices.Equal(seqs, []uint32{5, 6, 7}) || len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], unix.ENOENT) {
		t.Errorf("receive: %v, seqs %v, errors %v", err, seqs, errs)
	}

	// fn stops the walk.
	unix.Write(fds[1], datagram)
	seqs = nil
	c.receive(func(h unix.NlMsghdr, p []byte) bool { seqs = append(seqs, h.Seq); return false })
	if !slices.Equal(seqs, []uint32{5}) {
		t.Errorf("after stop: %v", seqs)
	}

	// A length past the datagram is an error, not a read past its end.
	bad := frame(ack, ackP, 8)
	native.PutUint32(bad, uint32(len(bad)+100))
	unix.Write(fds[1], bad)
	if err := c.receive(func(unix.NlMsghdr, []byte) bool { return true }); err == nil {
		t.Error("a malformed length was accepted")
	}
}
