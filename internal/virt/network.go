package virt

import (
	"fmt"
	"net/netip"
	"sort"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// Options change how an ensure runs.
type Options struct {
	Test   bool // report every change, make none
	Update bool // change drifted objects to the definition
}

// Drift is one setting that differs from the definition.
type Drift struct {
	Have any `json:"have"`
	Want any `json:"want"`
}

// NetworkReport is what EnsureNetwork did or would do.
type NetworkReport struct {
	Name string
	// Done lists the steps taken (or, in test mode, due): defined,
	// autostart, started, updated.
	Done  []string
	Drift map[string]Drift
	// Updated is true when drift was written to the definition; a running
	// network picks it up when restarted.
	Updated bool
	Active  bool
	Bridge  string
}

// NetworkXML is the libvirt network for the node network: a bridge with
// the gateway address, the forward mode, no DHCP (every node has a static
// address) and libvirt's DNS for the nodes.
func NetworkXML(d *cluster.Definition) (string, error) {
	n := desiredNetwork(d)
	return n.Marshal()
}

func desiredNetwork(d *cluster.Definition) *libvirtxml.Network {
	l := d.Libvirt.Network
	if l.Forward == cluster.ForwardBridge {
		// The host's bridge, which the hosts share: libvirt only attaches
		// the VMs to it (no address, DNS, NAT or STP settings of its own).
		return &libvirtxml.Network{
			Name:    l.Name,
			Bridge:  &libvirtxml.NetworkBridge{Name: l.Bridge},
			Forward: &libvirtxml.NetworkForward{Mode: cluster.ForwardBridge},
		}
	}
	n := &libvirtxml.Network{
		Name:   l.Name,
		Bridge: &libvirtxml.NetworkBridge{Name: l.Bridge, STP: "on", Delay: "0"},
	}
	if l.Forward != cluster.ForwardNone {
		n.Forward = &libvirtxml.NetworkForward{Mode: l.Forward}
	}
	for _, gw := range l.Gateway {
		for _, p := range d.Network.NodeCIDRs {
			if p.Contains(gw) {
				ip := libvirtxml.NetworkIP{Address: gw.String(), Prefix: uint(p.Bits())}
				if !gw.Is4() {
					ip.Family = "ipv6"
				}
				n.IPs = append(n.IPs, ip)
			}
		}
	}
	return n
}

// networkSettings flattens the settings kubesalt owns, for comparison.
func networkSettings(n *libvirtxml.Network) map[string]any {
	s := map[string]any{"forward": cluster.ForwardNone, "bridge": ""}
	if n.Forward != nil && n.Forward.Mode != "" {
		s["forward"] = n.Forward.Mode
	}
	if n.Bridge != nil {
		s["bridge"] = n.Bridge.Name
	}
	var ips []string
	for _, ip := range n.IPs {
		addr, err := netip.ParseAddr(ip.Address)
		if err != nil {
			ips = append(ips, ip.Address)
			continue
		}
		bits := int(ip.Prefix)
		if ip.Netmask != "" {
			if m, err := netip.ParseAddr(ip.Netmask); err == nil {
				bits = maskBits(m)
			}
		}
		if bits == 0 {
			bits = addr.BitLen() // libvirt's default for a bare address
		}
		ips = append(ips, netip.PrefixFrom(addr, bits).String())
	}
	sort.Strings(ips)
	s["addresses"] = ips
	return s
}

func maskBits(m netip.Addr) int {
	bits := 0
	for _, b := range m.AsSlice() {
		for ; b&0x80 != 0; b <<= 1 {
			bits++
		}
	}
	return bits
}

// diff compares flattened settings.
func diff(have, want map[string]any) map[string]Drift {
	out := map[string]Drift{}
	for k, w := range want {
		if fmt.Sprint(have[k]) != fmt.Sprint(w) {
			out[k] = Drift{Have: have[k], Want: w}
		}
	}
	return out
}

// EnsureNetwork defines, autostarts and starts the node network. An
// existing network whose settings differ is reported as drift, and
// redefined only with opts.Update.
func (h *Hypervisor) EnsureNetwork(d *cluster.Definition, opts Options) (*NetworkReport, error) {
	if d.Libvirt == nil {
		return nil, saltio.BadInputf("kubernetes:libvirt: missing; add the section that says where the VMs go (see pillar.example)")
	}
	want := desiredNetwork(d)
	rep := &NetworkReport{Name: want.Name, Bridge: want.Bridge.Name}
	if err := h.checkBridgeFree(want); err != nil {
		return nil, saltio.BadInput(err)
	}
	net, err := h.conn.LookupNetworkByName(want.Name)
	switch {
	case hasCode(err, libvirt.ERR_NO_NETWORK):
		rep.Done = append(rep.Done, "defined", "autostart", "started")
		if opts.Test {
			return rep, nil
		}
		x, err := want.Marshal()
		if err != nil {
			return nil, err
		}
		net, err = h.conn.NetworkDefineXML(x)
		if err != nil {
			return nil, wrap(err, "defining network %s", want.Name)
		}
		defer net.Free()
		if err := net.SetAutostart(true); err != nil {
			net.Undefine()
			return nil, wrap(err, "marking network %s autostart", want.Name)
		}
		if err := net.Create(); err != nil {
			net.Undefine() // nothing half-created
			return nil, wrap(err, "starting network %s (bridge %s)", want.Name, want.Bridge.Name)
		}
		rep.Active = true
		return rep, nil
	case err != nil:
		return nil, wrap(err, "looking up network %s", want.Name)
	}
	defer net.Free()

	x, err := networkXML(net)
	if err != nil {
		return nil, wrap(err, "reading network %s", want.Name)
	}
	var have libvirtxml.Network
	if err := have.Unmarshal(x); err != nil {
		return nil, err
	}
	if dr := diff(networkSettings(&have), networkSettings(want)); len(dr) > 0 {
		rep.Drift = dr
		if opts.Update {
			rep.Updated = true
			rep.Done = append(rep.Done, "updated")
			if !opts.Test {
				want.UUID = have.UUID
				nx, err := want.Marshal()
				if err != nil {
					return nil, err
				}
				n2, err := h.conn.NetworkDefineXML(nx)
				if err != nil {
					return nil, wrap(err, "updating network %s", want.Name)
				}
				n2.Free()
			}
		}
	}
	if auto, err := net.GetAutostart(); err != nil {
		return nil, wrap(err, "reading network %s autostart", want.Name)
	} else if !auto {
		rep.Done = append(rep.Done, "autostart")
		if !opts.Test {
			if err := net.SetAutostart(true); err != nil {
				return nil, wrap(err, "marking network %s autostart", want.Name)
			}
		}
	}
	active, err := net.IsActive()
	if err != nil {
		return nil, wrap(err, "reading network %s state", want.Name)
	}
	rep.Active = active
	if !active {
		rep.Done = append(rep.Done, "started")
		if !opts.Test {
			if err := net.Create(); err != nil {
				return nil, wrap(err, "starting network %s (bridge %s)", want.Name, want.Bridge.Name)
			}
			rep.Active = true
		}
	}
	return rep, nil
}

// checkBridgeFree refuses a bridge name that another libvirt network uses.
func (h *Hypervisor) checkBridgeFree(want *libvirtxml.Network) error {
	nets, err := h.conn.ListAllNetworks(0)
	if err != nil {
		return wrap(err, "listing networks")
	}
	defer func() {
		for i := range nets {
			nets[i].Free()
		}
	}()
	for i := range nets {
		x, err := networkXML(&nets[i])
		if err != nil {
			return wrap(err, "reading a network")
		}
		var n libvirtxml.Network
		if n.Unmarshal(x) != nil || n.Name == want.Name || n.Bridge == nil {
			continue
		}
		if n.Bridge.Name == want.Bridge.Name {
			return fmt.Errorf("kubernetes:libvirt:network:bridge: %s is already the bridge of libvirt network %s; pick another bridge name", want.Bridge.Name, n.Name)
		}
	}
	return nil
}

// networkState tells whether the named network is defined and running.
func (h *Hypervisor) networkState(name string) (exists, active bool, err error) {
	n, err := h.conn.LookupNetworkByName(name)
	if hasCode(err, libvirt.ERR_NO_NETWORK) {
		return false, false, nil
	}
	if err != nil {
		return false, false, wrap(err, "looking up network %s", name)
	}
	defer n.Free()
	active, err = n.IsActive()
	return true, active, wrap(err, "reading network %s state", name)
}

// networkXML returns the network's persistent definition; drivers that
// keep no separate inactive definition (the test driver) give the live one.
func networkXML(n *libvirt.Network) (string, error) {
	x, err := n.GetXMLDesc(libvirt.NETWORK_XML_INACTIVE)
	if hasCode(err, libvirt.ERR_INVALID_ARG) || hasCode(err, libvirt.ERR_NO_SUPPORT) {
		x, err = n.GetXMLDesc(0)
	}
	return x, err
}
