package cluster

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestLibvirtSectionOfPillarExample(t *testing.T) {
	data, err := os.ReadFile("../../pillar.example")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	l := d.Libvirt
	if l == nil {
		t.Fatal("no libvirt section")
	}
	if l.URI != "qemu:///system" || l.Pool != "default" || l.Network.Bridge != "br-kubesalt" || l.Network.Forward != ForwardNAT ||
		l.Network.Gateway[0] != netip.MustParseAddr("192.168.170.1") || l.SaltMaster != "192.168.170.1" || l.BaseOS != OSDebian || l.DomainType != "kvm" {
		t.Errorf("libvirt = %+v", l)
	}
	if l.Roles[RoleWorker] != (Machine{VCPU: 2, MemoryMiB: 4096, DiskGiB: 40}) {
		t.Errorf("worker size %+v", l.Roles[RoleWorker])
	}
}

func TestLibvirtDefaults(t *testing.T) {
	d, err := Load([]byte(base + "  libvirt: {base_image: debian.qcow2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := d.Libvirt
	if l.Network.Name != "kubesalt" || l.Network.Bridge != "br-kubesalt" || l.Network.Gateway[0] != netip.MustParseAddr("192.168.170.1") ||
		l.Network.DNS[0] != l.Network.Gateway[0] || l.Roles[RoleMaster] != DefaultMachines[RoleMaster] {
		t.Errorf("defaults %+v", l)
	}
	d, _ = Load([]byte(base))
	if d.Libvirt != nil {
		t.Error("a definition without the section has one")
	}
}

func TestLibvirtValidationNamesFieldAndFix(t *testing.T) {
	cases := []struct{ section, want string }{
		{"{}", "kubernetes:libvirt:base_image: missing; give the cloud image's volume name"},
		{"{base_image: a, network: {forward: open}}", `kubernetes:libvirt:network:forward: "open" is not a forward mode`},
		{"{base_image: a, hypervisors: {hv-0: {uri: 'qemu:///system'}, hv-1: {uri: 'qemu:///system'}}}", `kubernetes:libvirt:hypervisors: 2 hypervisors share the node network only on a bridge of their own hosts; set kubernetes:libvirt:network:forward to "bridge"`},
		{"{base_image: a, hypervisors: {hv-0: {}}}", "kubernetes:libvirt:hypervisors:hv-0:uri: missing"},
		{"{base_image: a, hypervisors: {hv-0: {url: x}}}", `kubernetes:libvirt:hypervisors:<minion>:url: unknown field "url"`},
		{"{base_image: a, network: {bridge: a-very-long-bridge-name}}", "kubernetes:libvirt:network:bridge:"},
		{"{base_image: a, network: {gateway: 192.168.170.10}}", "kubernetes:libvirt:network:gateway: 192.168.170.10 is also node master-0's address"},
		{"{base_image: a, network: {gateway: 10.0.0.1}}", "kubernetes:libvirt:network:gateway: 10.0.0.1 is not a host address of the node network 192.168.170.0/24"},
		{"{base_image: a, roles: {worker: {memory_mib: 64}}}", "kubernetes:libvirt:roles:worker:memory_mib: 64 MiB is not a usable memory size"},
		{"{base_image: a, roles: {boss: {vcpu: 1}}}", `kubernetes:libvirt:roles:boss: "boss" is not a role`},
		{"{base_image: a, roles: {worker: {cpus: 1}}}", `kubernetes:libvirt:roles:<role>:cpus: unknown field "cpus"`},
		{"{base_image: a, pool_name: x}", `kubernetes:libvirt:pool_name: unknown field "pool_name"`},
		{"{base_image: a, base_image_os: windows}", `kubernetes:libvirt:base_image_os: "windows" is not supported`},
		{"{base_image: a, ssh_authorized_keys: [hello]}", "kubernetes:libvirt:ssh_authorized_keys: entry 0 is not an OpenSSH public key line"},
		{"{base_image: a, uri: 'not a uri'}", "kubernetes:libvirt:uri:"},
		{"{base_image: a, domain_type: xen}", `kubernetes:libvirt:domain_type: "xen" is not a domain type`},
	}
	for _, c := range cases {
		_, err := Load([]byte(base + "  libvirt: " + c.section + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.section, err, c.want)
		}
	}
}

// FuzzLoadLibvirt feeds the loader definitions with a libvirt section: it
// never panics, and a definition that loads has a usable section.
func FuzzLoadLibvirt(f *testing.F) {
	f.Add([]byte(base + "  libvirt: {base_image: a, network: {gateway: 192.168.170.1, forward: route}, roles: {worker: {vcpu: 2}}}\n"))
	f.Add([]byte(base + "  libvirt: {base_image: /x/y.qcow2, network: {gateway: [192.168.170.1, 'fd00::1'], dns: [1.1.1.1]}}\n"))
	f.Add([]byte(base + "  libvirt: {uri: 'qemu+ssh://h/system', ssh_authorized_keys: ['ssh-ed25519 AAAA a@b'], base_image_os: centos7}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Load(data)
		if err != nil || d.Libvirt == nil {
			return
		}
		l := d.Libvirt
		if l.BaseImage == "" || l.Network.Bridge == "" || len(l.Network.Bridge) > 15 || l.Roles[RoleMaster].VCPU < 1 || l.Roles[RoleWorker].MemoryMiB < 256 {
			t.Fatalf("loaded an unusable libvirt section: %+v", l)
		}
		for _, gw := range l.Network.Gateway {
			if nn, ok := ofFamily(d.Network.NodeCIDRs, gw.Is4()); !ok || !nn.Contains(gw) {
				t.Fatalf("gateway %s outside the node networks %v", gw, d.Network.NodeCIDRs)
			}
		}
	})
}

// Several hypervisors on a bridge they share; a node pinned to one of them,
// or to one that is not there, named with its fix.
func TestLibvirtHypervisors(t *testing.T) {
	def := strings.Replace(base, "worker-0: {role: worker, ip: 192.168.170.20}", "worker-0: {role: worker, ip: 192.168.170.20, hypervisor: hv-1}", 1) +
		"  libvirt: {base_image: a, network: {forward: bridge, bridge: br0}, hypervisors: {hv-0: {uri: 'qemu:///system'}, hv-1: {uri: 'qemu+ssh://root@hv-1/system'}}}\n"
	d, err := Load([]byte(def))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Libvirt.Hypervisors["hv-1"].URI; got != "qemu+ssh://root@hv-1/system" || len(d.Libvirt.Hypervisors) != 2 {
		t.Errorf("hypervisors %+v", d.Libvirt.Hypervisors)
	}
	for _, n := range d.Nodes {
		if want := map[string]string{"worker-0": "hv-1"}[n.Name]; n.Hypervisor != want {
			t.Errorf("%s pinned to %q, want %q", n.Name, n.Hypervisor, want)
		}
	}
	_, err = Load([]byte(strings.Replace(def, "hypervisor: hv-1", "hypervisor: hv-9", 1)))
	wantProblems(t, err, `kubernetes:nodes:worker-0:hypervisor: "hv-9" is not under kubernetes:libvirt:hypervisors`)
	_, err = Load([]byte(strings.Replace(base, "ip: 192.168.170.20}", "ip: 192.168.170.20, hypervisor: hv-1}", 1)))
	wantProblems(t, err, `kubernetes:nodes:worker-0:hypervisor: "hv-1" names a hypervisor, but the definition has no kubernetes:libvirt section`)
}
