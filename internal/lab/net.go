package lab

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/kubesalt/kubesalt/internal/topology"
)

// record notes namespace ns in the state before it is made, so that Down
// finds it even when a later step fails.
func (l *Lab) record(ns string) error {
	l.st.Namespaces = append(l.st.Namespaces, ns)
	return l.st.Save()
}

// buildSwitch makes the node network: a bridge in a namespace of its own,
// so that nothing in the lab is reachable from the root namespace.
func (l *Lab) buildSwitch() error {
	if err := l.record(l.switchNS()); err != nil {
		return err
	}
	return topology.Switch(l.switchNS())
}

// plugIn creates namespace ns with eth0 on the switch, holding ip.
func (l *Lab) plugIn(ns string, ip netip.Addr) error {
	if err := l.record(ns); err != nil {
		return err
	}
	port := fmt.Sprintf("p%d", ip.As4()[3]) // unique: one address per node
	// A node removed a moment ago may still have its port on the switch:
	// the kernel tears a deleted namespace's links down in the background.
	if out, err := topology.Run("ip", "-n", l.switchNS(), "link", "del", port); err != nil && !strings.Contains(out, "Cannot find device") {
		return fmt.Errorf("the switch port %s of a node removed before: %v: %s", port, err, out)
	}
	return topology.Node(l.switchNS(), port, ns, netip.PrefixFrom(ip, NodeNet.Bits()))
}

// deleteNamespace kills every process in ns and deletes it.
func (l *Lab) deleteNamespace(ns string) error {
	killNamespace(ns)
	return topology.Delete(ns)
}
