package virt

import (
	"encoding/xml"
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// MetadataNS marks the domains kubesalt-virt made (and so may change or
// remove): libvirt keeps this element in the domain's <metadata>.
const MetadataNS = "https://github.com/kubesalt/kubesalt/virt/1"

// nodeMetadata is the <ks:node> element in a domain's metadata.
type nodeMetadata struct {
	XMLName xml.Name `xml:"https://github.com/kubesalt/kubesalt/virt/1 node"`
	Cluster string   `xml:"cluster,attr"`
	Node    string   `xml:"name,attr"`
	Role    string   `xml:"role,attr"`
	// MinionPublicKey is the public half of the minion key in the node's
	// seed, so that the master's accepted key can be restored and checked.
	MinionPublicKey string `xml:"minion-public-key,omitempty"`
}

func (m nodeMetadata) xml() (string, error) {
	b, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"ks:node"`
		NS      string   `xml:"xmlns:ks,attr"`
		Cluster string   `xml:"cluster,attr"`
		Node    string   `xml:"name,attr"`
		Role    string   `xml:"role,attr"`
		Key     string   `xml:"ks:minion-public-key,omitempty"`
	}{NS: MetadataNS, Cluster: m.Cluster, Node: m.Node, Role: m.Role, Key: m.MinionPublicKey})
	return string(b), err
}

// parseMetadata finds kubesalt's element in a domain's metadata.
func parseMetadata(md *libvirtxml.DomainMetadata) (nodeMetadata, bool) {
	if md == nil || !strings.Contains(md.XML, MetadataNS) {
		return nodeMetadata{}, false
	}
	dec := xml.NewDecoder(strings.NewReader(md.XML))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nodeMetadata{}, false
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Space == MetadataNS && se.Name.Local == "node" {
			var m nodeMetadata
			if dec.DecodeElement(&m, &se) != nil {
				return nodeMetadata{}, false
			}
			return m, true
		}
	}
}

// domainInputs are the parts of a domain that come from the hypervisor
// rather than the definition.
type domainInputs struct {
	Type      string // kvm, qemu or test
	Network   string
	DiskPath  string
	SeedPath  string
	MinionPub string
	LogDir    string // where the serial console is logged; "" = not logged
}

// DomainXML builds node s's domain: vCPUs, memory, the qcow2 disk, the
// seed as a cdrom, a virtio NIC on the node network with the node's MAC, a
// serial console (logged, so its output survives) and kubesalt's metadata.
func DomainXML(s NodeSpec, in domainInputs) (*libvirtxml.Domain, error) {
	md, err := nodeMetadata{Cluster: s.Cluster, Node: s.Name, Role: s.Role, MinionPublicKey: in.MinionPub}.xml()
	if err != nil {
		return nil, err
	}
	port := uint(0)
	serial := libvirtxml.DomainSerial{
		Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
		Target: &libvirtxml.DomainSerialTarget{Port: &port},
	}
	if in.LogDir != "" {
		serial.Log = &libvirtxml.DomainChardevLog{File: in.LogDir + "/" + s.Name + "-serial.log", Append: "on"}
	}
	d := &libvirtxml.Domain{
		Type:        in.Type,
		Name:        s.Name,
		Description: fmt.Sprintf("kubesalt %s node %s of cluster %s", s.Role, s.Name, s.Cluster),
		Metadata:    &libvirtxml.DomainMetadata{XML: md},
		Memory:      &libvirtxml.DomainMemory{Value: uint(s.Machine.MemoryMiB), Unit: "MiB"},
		VCPU:        &libvirtxml.DomainVCPU{Value: uint(s.Machine.VCPU)},
		OS: &libvirtxml.DomainOS{
			Type:        &libvirtxml.DomainOSType{Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}},
		},
		Features: &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{
				{
					Device: "disk",
					Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
					Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: in.DiskPath}},
					Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
				},
				{
					Device:   "cdrom",
					Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
					Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: in.SeedPath}},
					Target:   &libvirtxml.DomainDiskTarget{Dev: "sda", Bus: "sata"},
					ReadOnly: &libvirtxml.DomainDiskReadOnly{},
				},
			},
			Interfaces: []libvirtxml.DomainInterface{{
				MAC:    &libvirtxml.DomainInterfaceMAC{Address: s.MAC},
				Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: in.Network}},
				Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			}},
			Serials: []libvirtxml.DomainSerial{serial},
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
			}},
		},
	}
	return d, nil
}

// domainSettings flattens what kubesalt compares for drift: size and NIC.
func domainSettings(d *libvirtxml.Domain) map[string]any {
	s := map[string]any{"vcpu": 0, "memory_mib": 0, "nic": "none"}
	if d.VCPU != nil {
		s["vcpu"] = int(d.VCPU.Value)
	}
	if d.Memory != nil {
		s["memory_mib"] = toMiB(d.Memory.Value, d.Memory.Unit)
	}
	if d.Devices != nil && len(d.Devices.Interfaces) > 0 {
		s["nic"] = nicString(d.Devices.Interfaces[0])
	}
	return s
}

func nicString(i libvirtxml.DomainInterface) string {
	mac, net, model := "", "", ""
	if i.MAC != nil {
		mac = strings.ToLower(i.MAC.Address)
	}
	if i.Source != nil && i.Source.Network != nil {
		net = "network=" + i.Source.Network.Network
	} else if i.Source != nil && i.Source.Bridge != nil {
		net = "bridge=" + i.Source.Bridge.Bridge
	}
	if i.Model != nil {
		model = i.Model.Type
	}
	return fmt.Sprintf("%s %s %s", mac, net, model)
}

// domainMACs lists a domain's NIC MAC addresses.
func domainMACs(d *libvirtxml.Domain) []string {
	var out []string
	if d.Devices == nil {
		return nil
	}
	for _, i := range d.Devices.Interfaces {
		if i.MAC != nil {
			out = append(out, strings.ToLower(i.MAC.Address))
		}
	}
	return out
}

func toMiB(v uint, unit string) int {
	switch strings.ToLower(unit) {
	case "b", "bytes":
		return int(v >> 20)
	case "", "k", "kib":
		return int(v >> 10)
	case "kb":
		return int(uint64(v) * 1000 >> 20)
	case "m", "mib":
		return int(v)
	case "mb":
		return int(uint64(v) * 1000 * 1000 >> 20)
	case "g", "gib":
		return int(v << 10)
	case "gb":
		return int(uint64(v) * 1000 * 1000 * 1000 >> 20)
	}
	return int(v >> 10)
}
