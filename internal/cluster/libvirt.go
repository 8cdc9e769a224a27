package cluster

import (
	"net/netip"
	"regexp"
	"sort"
	"strings"
)

// Forward modes of the node network (libvirt's <forward mode=...>).
const (
	ForwardNAT   = "nat"   // nodes reach out through the hypervisor's masquerade
	ForwardRoute = "route" // routed, no NAT: the upstream router must know node_cidr
	ForwardNone  = "none"  // isolated: only the nodes and the hypervisor
	// ForwardBridge puts the VMs on an existing bridge of each hypervisor
	// (holding a NIC on the network the hypervisors share): libvirt adds no
	// address, DNS or NAT. The mode for several hypervisors.
	ForwardBridge = "bridge"
)

// Guest operating systems of the base image; they differ in what the seed
// must carry.
const (
	OSDebian  = "debian"  // cloud-init's network-config is enough
	OSCentOS7 = "centos7" // also the ifcfg file, as the blog injected it
)

// Defaults of the libvirt section.
const (
	DefaultLibvirtURI = "qemu:///system"
	DefaultPool       = "default"
)

// DefaultMachines are the per-role sizes when the definition gives none.
var DefaultMachines = map[string]Machine{
	RoleMaster: {VCPU: 2, MemoryMiB: 2048, DiskGiB: 20},
	RoleWorker: {VCPU: 2, MemoryMiB: 2048, DiskGiB: 20},
}

// Libvirt is where and how kubesalt-virt creates the cluster's VMs.
type Libvirt struct {
	URI       string
	Network   LibvirtNetwork
	Pool      string // storage pool for disks and seeds
	BaseImage string // volume name in Pool, or an absolute path of a volume
	BaseOS    string // OSDebian or OSCentOS7
	// SaltMaster is the address minions connect to (default: the gateway,
	// i.e. the hypervisor).
	SaltMaster        string
	SSHAuthorizedKeys []string
	Roles             map[string]Machine
	// DomainType is libvirt's domain type: kvm, or qemu for software
	// emulation (TCG) where KVM is missing or unusable.
	DomainType string
	// Hypervisors, when there are several: each a Salt minion (its id is
	// the key) running kubesalt-virt against its libvirt URI. Empty: one
	// hypervisor at URI.
	Hypervisors map[string]Hypervisor
}

// Hypervisor is one host of the cluster's VMs.
type Hypervisor struct {
	URI string
}

// LibvirtNetwork is the flat node network as a libvirt network.
type LibvirtNetwork struct {
	Name    string
	Bridge  string
	Forward string
	// Gateway is the hypervisor's address on the network, one per node_cidr
	// family, IPv4 first.
	Gateway []netip.Addr
	// DNS servers the nodes use (default: the gateway, libvirt's dnsmasq).
	DNS []netip.Addr
}

// Machine is a VM size.
type Machine struct {
	VCPU      int
	MemoryMiB int
	DiskGiB   int
}

type rawLibvirt struct {
	URI               string                   `yaml:"uri"`
	Network           rawLibvirtNetwork        `yaml:"network"`
	Pool              string                   `yaml:"pool"`
	BaseImage         string                   `yaml:"base_image"`
	BaseOS            string                   `yaml:"base_image_os"`
	SaltMaster        string                   `yaml:"salt_master"`
	SSHAuthorizedKeys []string                 `yaml:"ssh_authorized_keys"`
	Roles             map[string]rawMachine    `yaml:"roles"`
	DomainType        string                   `yaml:"domain_type"`
	Hypervisors       map[string]rawHypervisor `yaml:"hypervisors"`
}

type rawHypervisor struct {
	URI string `yaml:"uri"`
}

type rawLibvirtNetwork struct {
	Name    string     `yaml:"name"`
	Bridge  string     `yaml:"bridge"`
	Forward string     `yaml:"forward"`
	Gateway stringList `yaml:"gateway"`
	DNS     stringList `yaml:"dns"`
}

type rawMachine struct {
	VCPU      *int `yaml:"vcpu"`
	MemoryMiB *int `yaml:"memory_mib"`
	DiskGiB   *int `yaml:"disk_gib"`
}

func init() {
	// Name the section and its fields when the strict decoder meets a typo.
	knownFields["rawLibvirt"] = "uri, network, pool, base_image, base_image_os, salt_master, ssh_authorized_keys, roles, domain_type, hypervisors"
	sectionOf["rawHypervisor"] = "kubernetes:libvirt:hypervisors:<minion>"
	knownFields["rawHypervisor"] = "uri"
	sectionOf["rawLibvirt"] = "kubernetes:libvirt"
	knownFields["rawLibvirtNetwork"] = "name, bridge, forward, gateway, dns"
	sectionOf["rawLibvirtNetwork"] = "kubernetes:libvirt:network"
	knownFields["rawMachine"] = "vcpu, memory_mib, disk_gib"
	sectionOf["rawMachine"] = "kubernetes:libvirt:roles:<role>"
}

var (
	// libvirt object names: no slash, no whitespace, not empty.
	libvirtName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
	// Linux interface names: at most 15 bytes.
	ifName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$`)
	uriRe  = regexp.MustCompile(`^[a-z][a-z0-9+]*://`)
)

// libvirt validates the optional `libvirt:` section against the already
// checked network and nodes.
func (c *checker) libvirt(r *rawLibvirt, d *Definition) *Libvirt {
	if r == nil {
		return nil
	}
	const f = "kubernetes:libvirt:"
	l := &Libvirt{
		URI: r.URI, Pool: r.Pool, BaseImage: strings.TrimSpace(r.BaseImage), BaseOS: r.BaseOS,
		SaltMaster: strings.TrimSpace(r.SaltMaster), Roles: map[string]Machine{},
		Network: LibvirtNetwork{Name: r.Network.Name, Bridge: r.Network.Bridge, Forward: r.Network.Forward},
	}
	if l.URI == "" {
		l.URI = DefaultLibvirtURI
	} else if !uriRe.MatchString(l.URI) {
		c.add(f+"uri", "%q is not a libvirt connection URI; use e.g. qemu:///system or qemu+ssh://root@host/system", l.URI)
	}
	if l.Pool == "" {
		l.Pool = DefaultPool
	} else if !libvirtName.MatchString(l.Pool) {
		c.add(f+"pool", "%q is not a storage pool name; use letters, digits, '-', '_' and '.'", l.Pool)
	}
	switch {
	case l.BaseImage == "":
		c.add(f+"base_image", "missing; give the cloud image's volume name in the pool (e.g. debian-12-genericcloud-amd64.qcow2) or its absolute path")
	case strings.ContainsAny(l.BaseImage, "\n\t") || (!strings.HasPrefix(l.BaseImage, "/") && strings.Contains(l.BaseImage, "/")):
		c.add(f+"base_image", "%q is neither a volume name nor an absolute path; give one of them", l.BaseImage)
	}
	switch l.BaseOS {
	case "":
		l.BaseOS = OSDebian
	case OSDebian, OSCentOS7:
	default:
		c.add(f+"base_image_os", "%q is not supported; use %q (and its derivatives: Ubuntu) or %q", l.BaseOS, OSDebian, OSCentOS7)
	}

	switch r.DomainType {
	case "":
		l.DomainType = "kvm"
	case "kvm", "qemu":
		l.DomainType = r.DomainType
	default:
		c.add(f+"domain_type", "%q is not a domain type; use kvm (hardware virtualisation) or qemu (software emulation, TCG)", r.DomainType)
	}

	n := &l.Network
	if n.Name == "" {
		n.Name = d.Name
	} else if !libvirtName.MatchString(n.Name) {
		c.add(f+"network:name", "%q is not a network name; use letters, digits, '-', '_' and '.'", n.Name)
	}
	if n.Bridge == "" {
		n.Bridge = "br-" + d.Name
		if len(n.Bridge) > 15 {
			n.Bridge = n.Bridge[:15]
		}
		n.Bridge = strings.TrimRight(n.Bridge, "-.")
	} else if !ifName.MatchString(n.Bridge) {
		c.add(f+"network:bridge", "%q is not an interface name; use at most 15 letters, digits, '-', '_' or '.'", n.Bridge)
	}
	switch n.Forward {
	case "":
		n.Forward = ForwardNAT
	case ForwardNAT, ForwardRoute, ForwardNone, ForwardBridge:
	default:
		c.add(f+"network:forward", "%q is not a forward mode; use %q, %q, %q (isolated) or %q (an existing bridge the hypervisors share)", n.Forward, ForwardNAT, ForwardRoute, ForwardNone, ForwardBridge)
	}
	nodeIP := map[netip.Addr]string{}
	for _, node := range d.Nodes {
		for _, ip := range node.IPs {
			nodeIP[ip] = node.Name
		}
	}
	n.Gateway = c.gateways(f+"network:gateway", r.Network.Gateway, d.Network.NodeCIDRs, nodeIP)
	if len(r.Network.DNS) == 0 {
		n.DNS = n.Gateway
	}
	for _, s := range r.Network.DNS {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			c.add(f+"network:dns", "%q is not an IP address; give the nodes' DNS servers, e.g. the gateway", s)
			continue
		}
		n.DNS = append(n.DNS, ip)
	}
	if l.SaltMaster == "" && len(n.Gateway) > 0 {
		l.SaltMaster = n.Gateway[0].String()
	} else if strings.ContainsAny(l.SaltMaster, " \t\n/") {
		c.add(f+"salt_master", "%q is not a host name or address; give where the minions reach the Salt master", l.SaltMaster)
	}
	for i, k := range r.SSHAuthorizedKeys {
		k = strings.TrimSpace(k)
		if strings.Contains(k, "\n") || len(strings.Fields(k)) < 2 || !(strings.HasPrefix(k, "ssh-") || strings.HasPrefix(k, "ecdsa-") || strings.HasPrefix(k, "sk-")) {
			c.add(f+"ssh_authorized_keys", "entry %d is not an OpenSSH public key line; paste one line of ~/.ssh/id_*.pub", i)
			continue
		}
		l.SSHAuthorizedKeys = append(l.SSHAuthorizedKeys, k)
	}

	roles := make([]string, 0, len(r.Roles))
	for role := range r.Roles {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	for _, role := range roles {
		if _, ok := DefaultMachines[role]; !ok {
			c.add(f+"roles:"+role, "%q is not a role; use %q or %q", role, RoleMaster, RoleWorker)
		}
	}
	for role, def := range DefaultMachines {
		m, rm := def, r.Roles[role]
		rf := f + "roles:" + role + ":"
		if rm.VCPU != nil {
			m.VCPU = *rm.VCPU
			if m.VCPU < 1 || m.VCPU > 256 {
				c.add(rf+"vcpu", "%d is not a vCPU count; use 1-256", m.VCPU)
			}
		}
		if rm.MemoryMiB != nil {
			m.MemoryMiB = *rm.MemoryMiB
			if m.MemoryMiB < 256 || m.MemoryMiB > 4<<20 {
				c.add(rf+"memory_mib", "%d MiB is not a usable memory size; use at least 256 (Kubernetes wants 2048)", m.MemoryMiB)
			}
		}
		if rm.DiskGiB != nil {
			m.DiskGiB = *rm.DiskGiB
			if m.DiskGiB < 1 || m.DiskGiB > 64<<10 {
				c.add(rf+"disk_gib", "%d GiB is not a usable disk size; use at least the base image's size, e.g. 20", m.DiskGiB)
			}
		}
		l.Roles[role] = m
	}
	c.hypervisors(r, l, d)
	return l
}

// hypervisors checks kubernetes:libvirt:hypervisors and the nodes pinned to
// one. Several hypervisors share one node network only on a bridge of
// their own hosts (forward: bridge): a network of libvirt's would hold the
// same gateway address on each.
func (c *checker) hypervisors(r *rawLibvirt, l *Libvirt, d *Definition) {
	const f = "kubernetes:libvirt:hypervisors"
	l.Hypervisors = map[string]Hypervisor{}
	for name, h := range r.Hypervisors {
		if !minionID.MatchString(name) || name == NoHypervisor {
			c.add(f+":"+name, "%q is not a Salt minion id; name each hypervisor by its minion's id", name)
		}
		if h.URI == "" {
			c.add(f+":"+name+":uri", "missing; give the libvirt URI kubesalt-virt uses on that minion, e.g. qemu:///system")
		} else if !uriRe.MatchString(h.URI) {
			c.add(f+":"+name+":uri", "%q is not a libvirt connection URI; use e.g. qemu:///system", h.URI)
		}
		l.Hypervisors[name] = Hypervisor{URI: h.URI}
	}
	if len(l.Hypervisors) > 1 && l.Network.Forward != ForwardBridge {
		c.add(f, "%d hypervisors share the node network only on a bridge of their own hosts; set kubernetes:libvirt:network:forward to %q (and network:bridge to that bridge)", len(l.Hypervisors), ForwardBridge)
	}
	for _, n := range d.Nodes {
		if n.Hypervisor == "" || n.Hypervisor == NoHypervisor {
			continue
		}
		if _, ok := l.Hypervisors[n.Hypervisor]; !ok {
			c.add("kubernetes:nodes:"+n.Name+":hypervisor", "%q is not under kubernetes:libvirt:hypervisors; name one of them or remove the pin", n.Hypervisor)
		}
	}
}

// minionID: what a Salt minion id and a libvirt-side name can both be.
var minionID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// gateways parses the gateway list, defaulting to the first host of each
// node network.
func (c *checker) gateways(field string, in []string, nets []netip.Prefix, nodeIP map[netip.Addr]string) []netip.Addr {
	var out []netip.Addr
	if len(in) == 0 {
		for _, p := range nets {
			out = append(out, p.Addr().Next())
		}
		in = nil
	}
	seen := map[bool]bool{}
	for _, s := range in {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || ip.Zone() != "" {
			c.add(field, "%q is not an IP address; give the hypervisor's address in the node network, e.g. 192.168.170.1", s)
			continue
		}
		if seen[ip.Is4()] {
			c.add(field, "has two %s addresses; give at most one per family", family(ip.Is4()))
			continue
		}
		seen[ip.Is4()] = true
		out = append(out, ip)
	}
	for _, ip := range out {
		nn, ok := ofFamily(nets, ip.Is4())
		switch {
		case !ok:
			c.add(field, "%s is %s but there is no %s node network; remove it or add the network", ip, family(ip.Is4()), family(ip.Is4()))
		case !nn.Contains(ip) || ip == nn.Addr():
			c.add(field, "%s is not a host address of the node network %s; give one inside it", ip, nn)
		}
		if node, clash := nodeIP[ip]; clash {
			c.add(field, "%s is also node %s's address; the gateway needs its own, e.g. %s", ip, node, nn.Addr().Next())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Is4() && !out[j].Is4() })
	return out
}
