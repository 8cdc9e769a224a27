// Package probe checks traffic between network namespaces: it opens
// sockets inside named namespaces and reports what a receiver sees.
package probe

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
)

// InNetns runs fn on a thread switched into namespace name. Sockets made
// by fn stay in that namespace.
func InNetns(name string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	ns, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		return err
	}
	defer netns.Set(orig)
	return fn()
}

// ListenUDP opens a UDP socket on ip:port (port 0: any) in the current
// network namespace (InNetns picks one).
func ListenUDP(ip netip.Addr, port int) (*net.UDPConn, error) {
	return net.ListenUDP("udp", &net.UDPAddr{IP: ip.AsSlice(), Port: port})
}

// SendUDP sends one datagram to ip:port from the current network namespace.
func SendUDP(ip netip.Addr, port int) error {
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: ip.AsSlice(), Port: port})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte("kubesalt"))
	return err
}

// Probe timing: a datagram every resendEvery until one arrives or
// probeDeadline passes, as ping sends more than one: UDP may lose one (a
// neighbor still being resolved, a loaded machine); a path that does not
// route loses them all.
const (
	resendEvery   = 500 * time.Millisecond
	probeDeadline = 3 * time.Second
)

// SourceSeen sends UDP datagrams from namespace fromNS to address to in
// namespace toNS and returns the source address the receiver saw first:
// the sender's own address unless something on the way rewrote it (NAT).
func SourceSeen(fromNS, toNS string, to netip.Addr) (netip.Addr, error) {
	var recv *net.UDPConn
	if err := InNetns(toNS, func() (err error) {
		recv, err = ListenUDP(to, 0)
		return err
	}); err != nil {
		return netip.Addr{}, err
	}
	defer recv.Close()
	port := recv.LocalAddr().(*net.UDPAddr).Port
	deadline := time.Now().Add(probeDeadline)
	sent := 0
	for {
		if err := InNetns(fromNS, func() error { return SendUDP(to, port) }); err != nil {
			return netip.Addr{}, err
		}
		sent++
		wait := time.Now().Add(resendEvery)
		if wait.After(deadline) {
			wait = deadline
		}
		recv.SetReadDeadline(wait)
		_, src, err := recv.ReadFromUDPAddrPort(make([]byte, 64))
		if err == nil {
			return src.Addr().Unmap(), nil
		}
		if !time.Now().Before(deadline) {
			return netip.Addr{}, fmt.Errorf("no datagram arrived (%d sent in %s): %w", sent, probeDeadline, err)
		}
	}
}
