// Package topology builds a network of namespaces with iproute2, as the
// lab's nodes and the tests' labs both need it: a switch namespace holding
// the node network's bridge, node namespaces plugged into it by veth pairs,
// a pod bridge in a node, and pod namespaces on that bridge. Nothing in it
// is reachable from the root namespace. internal/lab and internal/nstest
// build with it; callers name every namespace and link and remove them.
package topology

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// Bridge is the node network's bridge, inside the switch namespace.
const Bridge = "br0"

// Run runs a command and returns its output; a failure carries the output.
func Run(name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// In runs a command inside namespace ns.
func In(ns string, args ...string) (string, error) {
	return Run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// AddNamespace creates namespace ns. Its links skip IPv6 duplicate address
// detection: a tentative link-local address delays the first packets.
func AddNamespace(ns string) error {
	if _, err := Run("ip", "netns", "add", ns); err != nil {
		return err
	}
	_, err := In(ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
	return err
}

// Delete deletes namespace ns with its links; one already gone is no error.
// Processes still in it keep it alive: the caller ends them first.
func Delete(ns string) error {
	out, err := Run("ip", "netns", "del", ns)
	if err != nil && !strings.Contains(out, "No such file") {
		return err
	}
	return nil
}

// Switch creates namespace ns holding the node network's bridge, up.
func Switch(ns string) error {
	if err := AddNamespace(ns); err != nil {
		return err
	}
	return Steps([][]string{
		{"ip", "-n", ns, "link", "add", Bridge, "type", "bridge"},
		{"ip", "-n", ns, "link", "set", Bridge, "up"},
	}...)
}

// Node creates namespace ns plugged into switch sw: a veth pair, port on
// sw's bridge, eth0 in ns holding addr (the node network's length), with
// IPv4 forwarding on, as a node routes its pods.
func Node(sw, port, ns string, addr netip.Prefix) error {
	if !addr.IsValid() {
		return fmt.Errorf("node %s: no address (want one with the node network's length, e.g. 192.168.170.10/24)", ns)
	}
	if err := AddNamespace(ns); err != nil {
		return err
	}
	if err := attach(sw, Bridge, port, ns, addr); err != nil {
		return err
	}
	_, err := In(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return err
}

// PodBridge adds bridge name to node namespace ns, holding gw (the pod
// CIDR's first address, with its length), up: what a CNI bridge plugin
// makes.
func PodBridge(ns, name string, gw netip.Prefix) error {
	if !gw.IsValid() {
		return fmt.Errorf("pod bridge %s in %s: no gateway address (want the pod CIDR's first, e.g. 10.200.1.1/24)", name, ns)
	}
	return Steps([][]string{
		{"ip", "-n", ns, "link", "add", name, "type", "bridge"},
		{"ip", "-n", ns, "addr", "add", gw.String(), "dev", name},
		{"ip", "-n", ns, "link", "set", name, "up"},
	}...)
}

// Pod creates namespace pod on bridge in node namespace nodeNS: a veth
// pair, port on the bridge, eth0 in pod holding addr, with its default
// route via gw (the bridge's address).
func Pod(nodeNS, bridge, port, pod string, addr netip.Prefix, gw netip.Addr) error {
	if !addr.IsValid() || !gw.IsValid() || !addr.Contains(gw) {
		return fmt.Errorf("pod %s: address %s and gateway %s: want both in the pod CIDR", pod, addr, gw)
	}
	if err := AddNamespace(pod); err != nil {
		return err
	}
	if err := attach(nodeNS, bridge, port, pod, addr); err != nil {
		return err
	}
	_, err := Run("ip", "-n", pod, "route", "add", "default", "via", gw.String())
	return err
}

// attach links namespace inner to bridge in namespace outer: a veth pair,
// port on the bridge, eth0 in inner holding addr, every link up.
func attach(outer, bridge, port, inner string, addr netip.Prefix) error {
	return Steps([][]string{
		{"ip", "link", "add", port, "netns", outer, "type", "veth", "peer", "name", "eth0", "netns", inner},
		{"ip", "-n", outer, "link", "set", port, "master", bridge, "up"},
		{"ip", "-n", inner, "addr", "add", addr.String(), "dev", "eth0"},
		{"ip", "-n", inner, "link", "set", "eth0", "up"},
		{"ip", "-n", inner, "link", "set", "lo", "up"},
	}...)
}

// Steps runs commands in order and stops at the first failure (which
// carries the command and its output).
func Steps(cmds ...[]string) error {
	for _, c := range cmds {
		if _, err := Run(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}
