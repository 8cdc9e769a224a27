package routes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// This file is the rtnetlink the reconciler speaks: kernel-filtered route
// dumps, nexthop objects, and batches of route changes sent many to a
// syscall with their acknowledgements matched back by sequence number.
// vishvananda/netlink parses every field of every route into a net.IPNet
// and waits for each acknowledgement in turn; at 20,000 routes that cost
// more than the kernel's own work.

const (
	rtaNHID         = 30    // RTA_NH_ID, missing from x/sys/unix
	nlmFCapped      = 0x100 // NLM_F_CAPPED: the ack does not echo the request
	nlmFAckTLVs     = 0x200 // NLM_F_ACK_TLVS: extended ack attributes follow
	nlmsgerrAttrMsg = 1     // NLMSGERR_ATTR_MSG: the kernel's error text
	batchSize       = 256   // requests per sendto; their acks fit the socket buffer
)

var native = binary.NativeEndian

// rtnl is a NETLINK_ROUTE socket in one network namespace.
type rtnl struct {
	fd  int
	seq uint32
	buf []byte
}

func openRTNL(nsName string) (*rtnl, error) {
	fd, err := socketIn(nsName, 0)
	if err != nil {
		return nil, fmt.Errorf("opening netlink: %w", err)
	}
	for _, o := range []int{unix.NETLINK_GET_STRICT_CHK, unix.NETLINK_EXT_ACK, unix.NETLINK_CAP_ACK} {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, o, 1); err != nil && o == unix.NETLINK_GET_STRICT_CHK {
			unix.Close(fd)
			return nil, fmt.Errorf("netlink strict checking (kernel 4.20+): %w", err)
		}
	}
	// Room for a batch's acks and a dump's bursts.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	return &rtnl{fd: fd, buf: make([]byte, 1<<20)}, nil
}

// socketIn opens the socket on a thread switched into the namespace; the
// socket stays there. groups are the multicast groups (RTMGRP_*) it joins.
func socketIn(nsName string, groups uint32) (int, error) {
	open := func() (int, error) {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return -1, err
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	if nsName == "" {
		return open()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	defer orig.Close()
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return -1, err
	}
	fd, err := open()
	if netns.Set(orig) == nil {
		runtime.UnlockOSThread() // else the thread dies with the goroutine
	}
	return fd, err
}

func (c *rtnl) Close() { unix.Close(c.fd) }

// message is one netlink request under construction.
type message []byte

func newMessage(typ, flags uint16, header []byte) message {
	m := make(message, unix.NLMSG_HDRLEN, 64)
	native.PutUint16(m[4:], typ)
	native.PutUint16(m[6:], flags|unix.NLM_F_REQUEST)
	return append(m, header...)
}

func (m message) attr(typ uint16, val []byte) message {
	var h [4]byte
	native.PutUint16(h[0:], uint16(4+len(val)))
	native.PutUint16(h[2:], typ)
	m = append(append(m, h[:]...), val...)
	for len(m)%4 != 0 {
		m = append(m, 0)
	}
	return m
}

// seal sets the message's length and sequence number and adds flags.
func (m message) seal(seq uint32, flags uint16) message {
	native.PutUint32(m[0:], uint32(len(m)))
	native.PutUint32(m[8:], seq)
	native.PutUint16(m[6:], native.Uint16(m[6:])|flags)
	return m
}

func (m message) u32(typ uint16, v uint32) message {
	var b [4]byte
	native.PutUint32(b[:], v)
	return m.attr(typ, b[:])
}

// kernelError is an errno with the kernel's extended-ack text.
type kernelError struct {
	errno unix.Errno
	text  string
}

func (e *kernelError) Error() string {
	if e.text == "" {
		return e.errno.Error()
	}
	return e.errno.Error() + " (" + e.text + ")"
}
func (e *kernelError) Unwrap() error { return e.errno }

// exec sends the requests in batches, one sendto each, and returns the
// outcome of every request, in order.
func (c *rtnl) exec(msgs []message) []error {
	errs := make([]error, len(msgs))
	for start := 0; start < len(msgs); start += batchSize {
		end := min(start+batchSize, len(msgs))
		base := c.seq + 1
		var out []byte
		for _, m := range msgs[start:end] {
			c.seq++
			out = append(out, m.seal(c.seq, unix.NLM_F_ACK)...)
		}
		if err := unix.Sendto(c.fd, out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			for i := start; i < end; i++ {
				errs[i] = err
			}
			continue
		}
		pending := end - start
		for pending > 0 {
			err := c.receive(func(h unix.NlMsghdr, payload []byte) bool {
				i := int(h.Seq - base)
				if h.Type != unix.NLMSG_ERROR || h.Seq < base || i >= end-start {
					return true
				}
				errs[start+i] = ackError(h, payload)
				pending--
				return pending > 0
			})
			if err != nil {
				for i := start; i < end; i++ {
					if errs[i] == nil {
						errs[i] = fmt.Errorf("netlink: %w", err)
					}
				}
				break
			}
		}
	}
	return errs
}

// ackError decodes an NLMSG_ERROR: nil for an ack, else the errno with the
// kernel's message.
func ackError(h unix.NlMsghdr, p []byte) error {
	if len(p) < 4 {
		return errors.New("netlink: short error message")
	}
	code := int32(native.Uint32(p))
	if code == 0 {
		return nil
	}
	e := &kernelError{errno: unix.Errno(-code)}
	if h.Flags&nlmFAckTLVs != 0 && len(p) >= 20 {
		off := 20 // struct nlmsgerr with the request's header
		if h.Flags&nlmFCapped == 0 {
			off = 4 + nlmAlign(int(native.Uint32(p[4:])))
		}
		forEachAttr(p[min(off, len(p)):], func(typ uint16, v []byte) {
			if typ == nlmsgerrAttrMsg {
				e.text = strings.TrimRight(string(v), "\x00")
			}
		})
	}
	return e
}

func nlmAlign(n int) int { return (n + 3) &^ 3 }

// receive reads one datagram and hands each message to fn until fn says
// stop.
func (c *rtnl) receive(fn func(h unix.NlMsghdr, payload []byte) bool) error {
	n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
	if err != nil {
		return err
	}
	b := c.buf[:n]
	for len(b) >= unix.NLMSG_HDRLEN {
		h := unix.NlMsghdr{Len: native.Uint32(b), Type: native.Uint16(b[4:]), Flags: native.Uint16(b[6:]), Seq: native.Uint32(b[8:]), Pid: native.Uint32(b[12:])}
		if int(h.Len) < unix.NLMSG_HDRLEN || int(h.Len) > len(b) {
			return errors.New("netlink: malformed message")
		}
		if !fn(h, b[unix.NLMSG_HDRLEN:h.Len]) {
			return nil
		}
		b = b[min(nlmAlign(int(h.Len)), len(b)):]
	}
	return nil
}

// errDumpInterrupted: the table changed during a dump; dump again.
var errDumpInterrupted = errors.New("netlink dump interrupted")

// dump sends a dump request and hands each answer's payload to fn.
func (c *rtnl) dump(m message, fn func(payload []byte)) error {
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		if last = c.dumpOnce(m, fn); !errors.Is(last, errDumpInterrupted) {
			return last
		}
	}
	return last
}

func (c *rtnl) dumpOnce(m message, fn func(payload []byte)) error {
	c.seq++
	seq := c.seq
	m = m.seal(seq, 0)
	if err := unix.Sendto(c.fd, m, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	var result error
	done, interrupted := false, false
	for !done {
		err := c.receive(func(h unix.NlMsghdr, p []byte) bool {
			if h.Seq != seq {
				return true
			}
			if h.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch h.Type {
			case unix.NLMSG_DONE:
				done = true
				return false
			case unix.NLMSG_ERROR:
				result, done = ackError(h, p), true
				return false
			}
			fn(p)
			return true
		})
		if err != nil {
			return err
		}
	}
	if result == nil && interrupted {
		return errDumpInterrupted
	}
	return result
}

func forEachAttr(b []byte, fn func(typ uint16, val []byte)) {
	for len(b) >= 4 {
		l := int(native.Uint16(b))
		if l < 4 || l > len(b) {
			return
		}
		fn(native.Uint16(b[2:])&^unix.NLA_F_NESTED, b[4:l])
		b = b[min(nlmAlign(l), len(b)):]
	}
}

// kroute is a route as the kernel reports it.
type kroute struct {
	dst       netip.Prefix
	gw        netip.Addr
	oif       uint32
	nhid      uint32
	priority  uint32
	table     uint32
	protocol  uint8
	multipath bool
}

func familyOf(is4 bool) uint8 {
	if is4 {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// rtmsg is struct rtmsg: family, dst_len, src_len, tos, table, protocol,
// scope, type, flags.
func rtmsg(family, dstLen uint8, table int, proto uint8, typ uint8) []byte {
	t := uint8(unix.RT_TABLE_UNSPEC)
	if table < 256 {
		t = uint8(table)
	}
	return []byte{family, dstLen, 0, 0, t, proto, unix.RT_SCOPE_UNIVERSE, typ, 0, 0, 0, 0}
}

// routes lists the table's routes of one family, only those of protocol
// proto when it is not 0, filtered by the kernel (strict checking).
func (c *rtnl) routes(is4 bool, table int, proto uint8) ([]kroute, error) {
	var out []kroute
	err := c.dump(routeDump(is4, table, proto), func(p []byte) {
		if r, ok := parseRoute(p, is4); ok && (proto == 0 || r.protocol == proto) && r.table == uint32(table) {
			out = append(out, r)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	return out, nil
}

// routeDump is the request for a table's routes of one family (and
// protocol, when not 0).
func routeDump(is4 bool, table int, proto uint8) message {
	return newMessage(unix.RTM_GETROUTE, unix.NLM_F_DUMP, rtmsg(familyOf(is4), 0, table, proto, 0)).u32(unix.RTA_TABLE, uint32(table))
}

// parseRoute decodes one RTM_NEWROUTE payload of a dump; false for a
// cached clone or a short message.
func parseRoute(p []byte, is4 bool) (kroute, bool) {
	if len(p) < 12 || native.Uint32(p[8:])&unix.RTM_F_CLONED != 0 {
		return kroute{}, false
	}
	r := kroute{table: uint32(p[4]), protocol: p[5]}
	dstLen := int(p[1])
	dst := netip.IPv6Unspecified()
	if is4 {
		dst = netip.IPv4Unspecified()
	}
	forEachAttr(p[12:], func(typ uint16, v []byte) {
		switch typ {
		case unix.RTA_DST:
			if ip, ok := netip.AddrFromSlice(v); ok {
				dst = ip
			}
		case unix.RTA_GATEWAY:
			r.gw, _ = netip.AddrFromSlice(v)
		case unix.RTA_OIF:
			r.oif = native.Uint32(v)
		case unix.RTA_PRIORITY:
			r.priority = native.Uint32(v)
		case unix.RTA_TABLE:
			r.table = native.Uint32(v)
		case rtaNHID:
			r.nhid = native.Uint32(v)
		case unix.RTA_MULTIPATH:
			r.multipath = true
		}
	})
	r.dst = netip.PrefixFrom(dst, dstLen)
	return r, true
}

// setRoute is the request that adds (or replaces) dst via a nexthop object
// (nhid > 0) or a gateway.
func setRoute(dst netip.Prefix, gw netip.Addr, nhid uint32, table int, proto uint8, replace bool) message {
	flags := uint16(unix.NLM_F_CREATE | unix.NLM_F_EXCL)
	if replace {
		flags = unix.NLM_F_CREATE | unix.NLM_F_REPLACE
	}
	m := newMessage(unix.RTM_NEWROUTE, flags, rtmsg(familyOf(dst.Addr().Is4()), uint8(dst.Bits()), table, proto, unix.RTN_UNICAST)).
		attr(unix.RTA_DST, dst.Addr().AsSlice()).
		u32(unix.RTA_TABLE, uint32(table))
	if nhid > 0 {
		return m.u32(rtaNHID, nhid)
	}
	return m.attr(unix.RTA_GATEWAY, gw.AsSlice())
}

// delRoute is the request that deletes r, matched by destination, table,
// protocol and metric but not next hop, so that a route via a nexthop
// object matches too.
func delRoute(r kroute) message {
	m := newMessage(unix.RTM_DELROUTE, 0, rtmsg(familyOf(r.dst.Addr().Is4()), uint8(r.dst.Bits()), int(r.table), r.protocol, 0)).
		attr(unix.RTA_DST, r.dst.Addr().AsSlice()).
		u32(unix.RTA_TABLE, r.table)
	if r.priority > 0 {
		m = m.u32(unix.RTA_PRIORITY, r.priority)
	}
	return m
}

// nhmsg is struct nhmsg: family, scope, protocol, reserved, flags.
func nhmsg(family, proto uint8) []byte { return []byte{family, 0, proto, 0, 0, 0, 0, 0} }

type nexthop struct {
	id       uint32
	gw       netip.Addr
	protocol uint8
}

// errNoNexthops marks a kernel without nexthop objects (before 5.3).
var errNoNexthops = errors.New("the kernel has no nexthop objects")

// nexthops lists every nexthop object; the kernel cannot filter them by
// protocol.
func (c *rtnl) nexthops() ([]nexthop, error) {
	var out []nexthop
	err := c.dump(newMessage(unix.RTM_GETNEXTHOP, unix.NLM_F_DUMP, nhmsg(unix.AF_UNSPEC, 0)), func(p []byte) {
		if nh, ok := parseNexthop(p); ok {
			out = append(out, nh)
		}
	})
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil, errNoNexthops
	}
	if err != nil {
		return nil, fmt.Errorf("listing nexthops: %w", err)
	}
	return out, nil
}

// parseNexthop decodes one RTM_NEWNEXTHOP payload of a dump.
func parseNexthop(p []byte) (nexthop, bool) {
	if len(p) < 8 {
		return nexthop{}, false
	}
	nh := nexthop{protocol: p[2]}
	forEachAttr(p[8:], func(typ uint16, v []byte) {
		switch typ {
		case unix.NHA_ID:
			nh.id = native.Uint32(v)
		case unix.NHA_GATEWAY:
			nh.gw, _ = netip.AddrFromSlice(v)
		}
	})
	return nh, true
}

func addNexthop(id uint32, gw netip.Addr, oif uint32, proto uint8) message {
	return newMessage(unix.RTM_NEWNEXTHOP, unix.NLM_F_CREATE|unix.NLM_F_EXCL, nhmsg(familyOf(gw.Is4()), proto)).
		u32(unix.NHA_ID, id).
		attr(unix.NHA_GATEWAY, gw.AsSlice()).
		u32(unix.NHA_OIF, oif)
}

func delNexthop(id uint32) message {
	return newMessage(unix.RTM_DELNEXTHOP, 0, nhmsg(unix.AF_UNSPEC, 0)).u32(unix.NHA_ID, id)
}
