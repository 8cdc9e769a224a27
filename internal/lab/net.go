package lab

import (
	"fmt"
	"net/netip"
	"strings"
)

// addNamespace creates a namespace and records it first, so that Down
// finds it even when a later step fails.
func (l *Lab) addNamespace(ns string) error {
	l.st.Namespaces = append(l.st.Namespaces, ns)
	if err := l.st.Save(); err != nil {
		return err
	}
	if _, err := run("ip", "netns", "add", ns); err != nil {
		return err
	}
	// No IPv6 duplicate address detection: it delays the first packets.
	_, err := l.in(ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
	return err
}

// buildSwitch makes the node network: a bridge in a namespace of its own,
// so that nothing in the lab is reachable from the root namespace.
func (l *Lab) buildSwitch() error {
	if err := l.addNamespace(l.switchNS()); err != nil {
		return err
	}
	if _, err := l.in(l.switchNS(), "ip", "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	_, err := l.in(l.switchNS(), "ip", "link", "set", "br0", "up")
	return err
}

// plugIn creates namespace ns with eth0 on the switch, holding ip.
func (l *Lab) plugIn(ns string, ip netip.Addr) error {
	if err := l.addNamespace(ns); err != nil {
		return err
	}
	port := fmt.Sprintf("p%d", ip.As4()[3]) // unique: one address per node
	steps := [][]string{
		{"ip", "link", "add", port, "netns", l.switchNS(), "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "netns", "exec", l.switchNS(), "ip", "link", "set", port, "master", "br0", "up"},
		{"ip", "netns", "exec", ns, "ip", "addr", "add", netip.PrefixFrom(ip, NodeNet.Bits()).String(), "dev", "eth0"},
		{"ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up"},
		{"ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"},
		{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
	}
	for _, s := range steps {
		if _, err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// deleteNamespace kills every process in ns and deletes it.
func (l *Lab) deleteNamespace(ns string) error {
	killNamespace(ns)
	out, err := run("ip", "netns", "del", ns)
	if err != nil && !strings.Contains(out, "No such file") {
		return err
	}
	return nil
}
