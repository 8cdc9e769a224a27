package virt

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"gopkg.in/yaml.v3"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltkey"
)

// SeedLabel is the volume label cloud-init's NoCloud datasource looks for.
const SeedLabel = "cidata"

// Seed is a NoCloud seed: the three files cloud-init reads from the
// `cidata` volume.
type Seed struct {
	MetaData      []byte
	UserData      []byte
	NetworkConfig []byte
}

// SeedFor builds node s's seed: its identity, its static network and the
// Salt minion with the pre-generated key.
func SeedFor(s NodeSpec, l *cluster.Libvirt, key saltkey.Pair) (Seed, error) {
	// A new key makes a new instance: a reused disk whose cloud-init ran
	// before applies the new seed (and installs the new key) again.
	fp := sha256.Sum256([]byte(key.PublicPEM))
	meta, err := yaml.Marshal(map[string]string{
		"instance-id":    fmt.Sprintf("%s-%s-%x", s.Cluster, s.Name, fp[:4]),
		"local-hostname": s.Name,
	})
	if err != nil {
		return Seed{}, err
	}
	net, err := yaml.Marshal(networkConfig(s, l))
	if err != nil {
		return Seed{}, err
	}
	ud, err := yaml.Marshal(userData(s, l, key))
	if err != nil {
		return Seed{}, err
	}
	return Seed{
		MetaData:      meta,
		UserData:      append([]byte("#cloud-config\n"), ud...),
		NetworkConfig: net,
	}, nil
}

// The network-config, version 2: one NIC, matched by the node's MAC and
// named eth0, with its static addresses, default routes and resolvers.
type netConfig struct {
	Version   int                    `yaml:"version"`
	Ethernets map[string]netEthernet `yaml:"ethernets"`
}

type netEthernet struct {
	Match       map[string]string `yaml:"match"`
	SetName     string            `yaml:"set-name"`
	DHCP4       bool              `yaml:"dhcp4"`
	DHCP6       bool              `yaml:"dhcp6"`
	Addresses   []string          `yaml:"addresses"`
	Routes      []netRoute        `yaml:"routes,omitempty"`
	Nameservers *netNameservers   `yaml:"nameservers,omitempty"`
}

type netRoute struct {
	To  string `yaml:"to"`
	Via string `yaml:"via"`
}

type netNameservers struct {
	Addresses []string `yaml:"addresses"`
	Search    []string `yaml:"search,omitempty"`
}

// NIC is the name the node's interface gets inside the guest.
const NIC = "eth0"

func networkConfig(s NodeSpec, l *cluster.Libvirt) netConfig {
	e := netEthernet{Match: map[string]string{"macaddress": s.MAC}, SetName: NIC}
	for _, a := range s.Addrs {
		e.Addresses = append(e.Addresses, a.String())
		if gw, ok := gatewayFor(l, a.Addr().Is4()); ok && l.Network.Forward != cluster.ForwardNone {
			to := "0.0.0.0/0"
			if !a.Addr().Is4() {
				to = "::/0"
			}
			e.Routes = append(e.Routes, netRoute{To: to, Via: gw.String()})
		}
	}
	if len(l.Network.DNS) > 0 {
		ns := &netNameservers{}
		for _, d := range l.Network.DNS {
			ns.Addresses = append(ns.Addresses, d.String())
		}
		e.Nameservers = ns
	}
	return netConfig{Version: 2, Ethernets: map[string]netEthernet{NIC: e}}
}

func gatewayFor(l *cluster.Libvirt, is4 bool) (netip.Addr, bool) {
	for _, g := range l.Network.Gateway {
		if g.Is4() == is4 {
			return g, true
		}
	}
	return netip.Addr{}, false
}

// The user-data (#cloud-config).
type cloudConfig struct {
	Hostname          string            `yaml:"hostname"`
	PreserveHostname  bool              `yaml:"preserve_hostname"`
	ManageEtcHosts    bool              `yaml:"manage_etc_hosts"`
	SSHAuthorizedKeys []string          `yaml:"ssh_authorized_keys,omitempty"`
	SaltMinion        saltMinionConfig  `yaml:"salt_minion"`
	WriteFiles        []cloudConfigFile `yaml:"write_files,omitempty"`
	RunCmd            [][]string        `yaml:"runcmd,omitempty"`
}

// saltMinionConfig is cloud-init's cc_salt_minion: it installs the
// salt-minion package, writes the minion config and grains, and installs
// the key pair as /etc/salt/pki/minion/minion.{pem,pub}.
type saltMinionConfig struct {
	Conf       map[string]any `yaml:"conf"`
	Grains     map[string]any `yaml:"grains"`
	PublicKey  string         `yaml:"public_key"`
	PrivateKey string         `yaml:"private_key"`
}

type cloudConfigFile struct {
	Path        string `yaml:"path"`
	Content     string `yaml:"content"`
	Permissions string `yaml:"permissions"`
	Owner       string `yaml:"owner"`
}

func userData(s NodeSpec, l *cluster.Libvirt, key saltkey.Pair) cloudConfig {
	cc := cloudConfig{
		Hostname:          s.Name,
		ManageEtcHosts:    true,
		SSHAuthorizedKeys: l.SSHAuthorizedKeys,
		SaltMinion: saltMinionConfig{
			Conf:       map[string]any{"master": l.SaltMaster, "id": s.Name},
			Grains:     map[string]any{"role": s.Role, "cluster": s.Cluster, "roles": []string{"kubernetes-" + s.Role}},
			PublicKey:  key.PublicPEM,
			PrivateKey: key.PrivatePEM,
		},
	}
	if l.BaseOS == cluster.OSCentOS7 {
		// CentOS 7's cloud-init renders sysconfig files of its own, but
		// the blog's images only came up reliably with this file.
		cc.WriteFiles = append(cc.WriteFiles, cloudConfigFile{
			Path:        "/etc/sysconfig/network-scripts/ifcfg-" + NIC,
			Content:     ifcfg(s, l),
			Permissions: "0644",
			Owner:       "root:root",
		})
		cc.RunCmd = append(cc.RunCmd, []string{"systemctl", "restart", "network"})
	}
	return cc
}

// ifcfg is the RHEL/CentOS 7 interface file for the node's static IPv4
// address (and IPv6, if any).
func ifcfg(s NodeSpec, l *cluster.Libvirt) string {
	lines := []string{
		"DEVICE=" + NIC, "HWADDR=" + s.MAC, "TYPE=Ethernet", "ONBOOT=yes",
		"BOOTPROTO=none", "NM_CONTROLLED=no", "DEFROUTE=yes",
	}
	for _, a := range s.Addrs {
		if a.Addr().Is4() {
			lines = append(lines, "IPADDR="+a.Addr().String(), fmt.Sprintf("PREFIX=%d", a.Bits()))
			if gw, ok := gatewayFor(l, true); ok && l.Network.Forward != cluster.ForwardNone {
				lines = append(lines, "GATEWAY="+gw.String())
			}
		} else {
			lines = append(lines, "IPV6INIT=yes", "IPV6ADDR="+a.String())
			if gw, ok := gatewayFor(l, false); ok && l.Network.Forward != cluster.ForwardNone {
				lines = append(lines, "IPV6_DEFAULTGW="+gw.String())
			}
		}
	}
	for i, d := range l.Network.DNS {
		lines = append(lines, fmt.Sprintf("DNS%d=%s", i+1, d))
	}
	return strings.Join(lines, "\n") + "\n"
}

// ISO writes the seed as an ISO 9660 image with Rock Ridge names and the
// `cidata` label, and returns its bytes. The files are 0600 inside the
// image: user-data holds the minion's private key.
func (s Seed) ISO() ([]byte, error) {
	work, err := os.MkdirTemp("", "kubesalt-seed-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := os.Mkdir(src, 0o700); err != nil {
		return nil, err
	}
	for name, data := range map[string][]byte{"meta-data": s.MetaData, "user-data": s.UserData, "network-config": s.NetworkConfig} {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(work, "seed.iso")
	f, err := os.OpenFile(out, os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fs, err := iso9660.Create(file.New(f, false), 0, 0, 2048, src)
	if err != nil {
		return nil, fmt.Errorf("creating the seed ISO: %w", err)
	}
	if err := fs.Finalize(iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: SeedLabel}); err != nil {
		return nil, fmt.Errorf("writing the seed ISO: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}
