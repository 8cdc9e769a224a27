package lab

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/libvirtd"
	"github.com/kubesalt/kubesalt/internal/nodeimage"
	"github.com/kubesalt/kubesalt/internal/probe"
	"github.com/kubesalt/kubesalt/internal/saltkey"
	"github.com/kubesalt/kubesalt/internal/topology"
)

// The lab's hypervisors hv-0, hv-1, ...: each a namespace of its own with
// a host's bridge (a veth on the lab's switch, the hypervisor's address on
// it), a private libvirtd and a salt-minion of that id. The pillar names
// them (kubernetes:libvirt:hypervisors) with the shared bridge (forward:
// bridge), so the VMs and the namespace nodes share 192.168.170.0/24;
// each minion runs kubernetes.vms for the VMs placed on it.
const (
	vmPool      = "kubesalt-lab"
	vmBaseImage = "kubesalt-node.qcow2"
	vmNetwork   = "kubesalt-lab"
	// vmBinaries is where the VMs' formula takes the lab's binaries from:
	// the master's file server (a VM's disk has no copy of them).
	vmBinaries     = "kubesalt-binaries"
	roleHypervisor = "hypervisor"
)

func hypervisorName(i int) string { return fmt.Sprintf("hv-%d", i) }

// hypervisorIP is hypervisor i's address, far from the nodes' and the VIP.
func hypervisorIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 168, 170, byte(240 + i)}) }

func (l *Lab) hypervisor(i int) libvirtd.Daemon {
	return libvirtd.Daemon{Dir: filepath.Join(l.Dir, "hypervisors", hypervisorName(i))}
}

// hypervisorOf is the index of the hypervisor named hv (hv-<i>).
func hypervisorOf(hv string) int {
	var i int
	fmt.Sscanf(hv, "hv-%d", &i)
	return i
}

// hypervisorNS is hypervisor i's namespace; vmBridge is the host bridge
// in every hypervisor namespace; vmUplink the veth from it to the switch.
func (l *Lab) hypervisorNS(i int) string { return fmt.Sprintf("%s-hv%d", l.st.ID, i) }
func (l *Lab) vmBridge() string          { return l.st.ID + "-vm" }
func (l *Lab) vmUplink(i int) string     { return fmt.Sprintf("%s-up%d", l.st.ID, i) }

// fileServerDir is a file_roots entry of the lab's master: the binaries
// the VMs install (salt://kubesalt-binaries/).
func (l *Lab) fileServerDir() string { return filepath.Join(l.Dir, "fileserver") }

// libvirtPillar is kubernetes:libvirt for the lab's hypervisors: a small
// VM per node under software emulation (TCG).
func (l *Lab) libvirtPillar() map[string]any {
	machine := map[string]any{"vcpu": 1, "memory_mib": 1024, "disk_gib": 5}
	hvs := map[string]any{}
	for i := 0; i < l.st.Hypervisors; i++ {
		hvs[hypervisorName(i)] = map[string]any{"uri": l.hypervisor(i).URI()}
	}
	return map[string]any{
		"network":     map[string]any{"name": vmNetwork, "bridge": l.vmBridge(), "forward": "bridge"},
		"pool":        vmPool,
		"base_image":  vmBaseImage,
		"domain_type": "qemu",
		"salt_master": MasterIP.String(),
		"roles":       map[string]any{RoleWorker: machine, RoleMaster: machine},
		"hypervisors": hvs,
	}
}

// vmPillar is what a VM's pillar adds to the lab's: its binaries from the
// master's file server. hypervisorPillar is a hypervisor minion's: the
// master's key directory, which it shares, for the VMs' keys.
func vmPillar() map[string]any {
	return map[string]any{"kubernetes": map[string]any{"binaries": map[string]any{"local_dir": "salt://" + vmBinaries}}}
}

func (l *Lab) hypervisorPillar() map[string]any {
	return map[string]any{"master_pki_dir": l.masterPKI()}
}

// VMTiming is how long each step of a VM's join took from `node ensure`.
type VMTiming struct {
	Running, Pinged, Minion, Routed, Pods time.Duration
}

// AddVMs adds count workers as VMs, the i-th on hypervisor hv-<i> (pinned
// in the pillar; the hypervisors are started as needed): the node image,
// the nodes in the pillar, then orch.kubernetes.vms, which has every
// hypervisor's minion make its VMs; each VM's created event runs
// orch.kubernetes.add_node. It waits for the routes everywhere and checks
// pod-to-pod traffic, without NAT, between a pod on each VM and one on a
// namespace worker.
func (l *Lab) AddVMs(count int) ([]Node, []VMTiming, error) {
	var vms []Node
	for i := 0; i < count; i++ {
		n := l.nextWorker()
		n.VM, n.Hypervisor = true, hypervisorName(i)
		l.st.Nodes = append(l.st.Nodes, n) // so that nextWorker skips it
		vms = append(vms, n)
	}
	l.st.Nodes = l.st.Nodes[:len(l.st.Nodes)-count] // added for good by the pillar step
	times := make([]VMTiming, count)
	var start time.Time
	var image string
	acts := []action{
		{"the node image (bin/node-image: Debian 12, syslinux, cloud-init, the venv's Salt and saltext-kubesalt)", func() error {
			var err error
			image, err = l.nodeImage()
			return err
		}},
		{fmt.Sprintf("hypervisors hv-0..hv-%d: a namespace each, a host bridge on the switch, libvirtd, a minion", count-1), func() error {
			for i := l.st.Hypervisors; i < count; i++ {
				if err := l.startHypervisor(i, image); err != nil {
					return fmt.Errorf("%s: %w", hypervisorName(i), err)
				}
			}
			return nil
		}},
		{fmt.Sprintf("%s in the pillar as VMs, each pinned to its hypervisor", strings.Join(nodeNamesOf(vms), ", ")), func() error {
			l.st.Nodes = append(l.st.Nodes, vms...)
			if err := l.st.Save(); err != nil {
				return err
			}
			return l.writePillar()
		}},
		{"orch.kubernetes.vms: every hypervisor's minion makes the VMs placed on it (domain, disk, seed, accepted key)", func() error {
			start = time.Now()
			if err := l.orchestrate("orch.kubernetes.vms", nil); err != nil {
				return err
			}
			for i := range times {
				times[i].Running = time.Since(start)
			}
			return nil
		}},
	}
	for i, n := range vms {
		acts = append(acts, action{n.Name + " answers on its static IP (cloud-init)", func() error {
			err := poll(15*time.Minute, time.Second, func() (string, error) {
				if _, err := l.in(l.masterNS(), "ping", "-c", "1", "-W", "1", n.IP.String()); err != nil {
					return "no answer from " + n.IP.String(), nil
				}
				return "", nil
			})
			times[i].Pinged = time.Since(start)
			return l.withConsole(n, err)
		}})
	}
	for i, n := range vms {
		acts = append(acts, action{n.Name + "'s minion answers (its key accepted in advance)", func() error {
			err := l.waitMinions([]string{n.Name}, 15*time.Minute)
			times[i].Minion = time.Since(start)
			return l.withConsole(n, err)
		}})
	}
	acts = append(acts, action{"routes: every node routes every other node's pod CIDR, the VMs too", func() error {
		err := l.waitConverged(15 * time.Minute)
		for i := range times {
			times[i].Routed = time.Since(start)
		}
		return err
	}})
	for i, n := range vms {
		acts = append(acts, action{"pods: a pod on " + n.Name + "'s cni0 and one on a namespace worker reach each other, each seeing the other's address", func() error {
			if err := l.checkVMPods(n); err != nil {
				return err
			}
			times[i].Pods = time.Since(start)
			return nil
		}})
	}
	err := l.runActions(acts)
	if err == nil {
		for i, n := range vms {
			t := times[i]
			l.say("    %s on %s, from orch.kubernetes.vms's start: domain running %.1fs, static IP answering %.1fs, minion connected %.1fs, routed on every node %.1fs, pod-to-pod %.1fs",
				n.Name, n.Hypervisor, t.Running.Seconds(), t.Pinged.Seconds(), t.Minion.Seconds(), t.Routed.Seconds(), t.Pods.Seconds())
		}
	}
	return vms, times, err
}

func nodeNamesOf(nodes []Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

// RemoveVM takes VM node name out: kubesalt_virt.node_remove on its
// hypervisor's minion (domain, disk, seed and key), then the pillar,
// whose change event removes every other node's route to it.
func (l *Lab) RemoveVM(name string) error {
	n, ok := l.st.Node(name)
	if !ok || !n.VM {
		return fmt.Errorf("%s is not a VM of the lab (its VMs: %s)", name, strings.Join(l.vmNames(), ", "))
	}
	return l.runActions([]action{
		{"kubesalt_virt.node_remove " + name + " on " + n.Hypervisor + ": its domain, volumes and key", func() error {
			return l.virtCall(n.Hypervisor, "kubesalt_virt.node_remove", name, "master_pki_dir="+l.masterPKI())
		}},
		{"nothing of " + name + " is left on " + n.Hypervisor + " or the master", func() error { return l.checkVMGone(n) }},
		{fmt.Sprintf("remove %s: pillar, kubesalt/pillar/changed event", name), func() error { return l.dropFromPillar(name) }},
		{"routes: every node's route to " + name + " gone, the others kept", func() error { return l.waitConverged(5 * time.Minute) }},
	})
}

// LastVM is the VM with the highest address (the last added), or "".
func (l *Lab) LastVM() string {
	last := Node{}
	for _, n := range l.st.Nodes {
		if n.VM && (!last.IP.IsValid() || last.IP.Less(n.IP)) {
			last = n
		}
	}
	return last.Name
}

func (l *Lab) vmNames() []string {
	var out []string
	for _, n := range l.st.Nodes {
		if n.VM {
			out = append(out, n.Name)
		}
	}
	return out
}

// nodeImage builds (or finds) the node image with the Salt of the lab's
// own venv.
func (l *Lab) nodeImage() (string, error) {
	out, err := run(filepath.Join(l.SaltBin, "python"), "-c", "import salt.version; print(salt.version.__version__)")
	if err != nil {
		return "", fmt.Errorf("the venv's Salt release: %v: %s", err, out)
	}
	path, built, err := nodeimage.Build(filepath.Join(l.Repo, "bin/node-image"), nodeimage.Inputs{
		SaltVersion: strings.TrimSpace(out),
		Saltext:     filepath.Join(l.Repo, "saltext"),
		Pip:         filepath.Join(l.SaltBin, "pip"),
	}, l.Out)
	if err == nil && !built {
		l.say("    %s (made before, same inputs)", path)
	}
	return path, err
}

// startHypervisor makes hypervisor i: its namespace with the host bridge
// on the switch holding its address, libvirtd with a pool holding the
// node image, and its minion (accepted in advance). The first also serves
// the binaries to the VMs.
func (l *Lab) startHypervisor(i int, image string) error {
	ns, name := l.hypervisorNS(i), hypervisorName(i)
	if err := l.record(ns); err != nil {
		return err
	}
	if err := topology.AddNamespace(ns); err != nil {
		return err
	}
	sw, host := l.vmUplink(i), l.vmUplink(i)+"h"
	if err := steps(
		[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
		[]string{"ip", "-n", ns, "link", "add", l.vmBridge(), "type", "bridge"},
		[]string{"ip", "-n", ns, "addr", "add", netip.PrefixFrom(hypervisorIP(i), NodeNet.Bits()).String(), "dev", l.vmBridge()},
		[]string{"ip", "-n", ns, "link", "set", l.vmBridge(), "up"},
		[]string{"ip", "-n", l.switchNS(), "link", "add", sw, "type", "veth", "peer", "name", host, "netns", ns},
		[]string{"ip", "-n", l.switchNS(), "link", "set", sw, "master", topology.Bridge, "up"},
		[]string{"ip", "-n", ns, "link", "set", host, "master", l.vmBridge(), "up"},
	); err != nil {
		return err
	}
	d, err := libvirtd.Prepare(l.hypervisor(i).Dir)
	if err != nil {
		return err
	}
	if err := l.startDaemon("libvirtd/"+name, ns, filepath.Join(d.Dir, "sandbox.out"), d.Argv()...); err != nil {
		return err
	}
	virsh := func(args ...string) (string, error) { return run("virsh", append([]string{"-c", d.URI()}, args...)...) }
	if err := poll(60*time.Second, 250*time.Millisecond, func() (string, error) {
		if _, err := virsh("version"); err != nil {
			return "libvirtd does not answer on " + d.URI(), nil
		}
		return "", nil
	}); err != nil {
		return fmt.Errorf("%w\n%s", err, d.Logs())
	}
	if out, err := run("cp", "--sparse=always", image, filepath.Join(d.Pool(), vmBaseImage)); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	for _, c := range [][]string{
		{"pool-define-as", vmPool, "dir", "--target", d.Pool()},
		{"pool-start", vmPool},
	} {
		if out, err := virsh(c...); err != nil {
			return fmt.Errorf("virsh %s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	if i == 0 {
		if err := os.MkdirAll(l.fileServerDir(), 0o755); err != nil {
			return err
		}
		os.Remove(filepath.Join(l.fileServerDir(), vmBinaries))
		if err := os.Symlink(l.binariesDir(), filepath.Join(l.fileServerDir(), vmBinaries)); err != nil {
			return err
		}
	}
	l.st.Hypervisors = i + 1
	if err := l.st.Save(); err != nil {
		return err
	}
	if err := l.writePillar(); err != nil {
		return err
	}
	hv := Node{Name: name, Role: roleHypervisor, IP: hypervisorIP(i)}
	if err := l.configureMinion(hv, l.minionExtra()); err != nil {
		return err
	}
	if err := l.startDaemon("minion/"+name, ns, filepath.Join(l.nodeDir(name), "minion.log"),
		filepath.Join(l.SaltBin, "salt-minion"), "-c", l.minionConf(name)); err != nil {
		return err
	}
	return l.waitMinions([]string{name}, 2*time.Minute)
}

func steps(cmds ...[]string) error {
	for _, c := range cmds {
		if out, err := run(c[0], c[1:]...); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	return nil
}

// virtCall runs a kubesalt_virt function on a hypervisor's minion, after
// a pillar refresh, and fails with its comment when it did not succeed.
func (l *Lab) virtCall(minion, fun string, args ...string) error {
	if _, out, err := l.Salt(time.Minute, minion, "saltutil.refresh_pillar", "wait=True"); err != nil {
		return fmt.Errorf("saltutil.refresh_pillar on %s: %v: %s", minion, err, out)
	}
	res, out, err := l.Salt(10*time.Minute, append([]string{minion, fun}, args...)...)
	var ret struct {
		Result  *bool          `json:"result"`
		Comment string         `json:"comment"`
		Changes map[string]any `json:"changes"`
	}
	if jerr := json.Unmarshal(res[minion], &ret); jerr != nil || ret.Result == nil {
		return fmt.Errorf("%s on %s: %v: %s", fun, minion, err, out)
	}
	if !*ret.Result {
		return fmt.Errorf("%s on %s failed: %s", fun, minion, ret.Comment)
	}
	if len(ret.Changes) > 0 {
		b, _ := json.Marshal(ret.Changes)
		l.say("    %s: %s", fun, b)
	}
	return nil
}

// withConsole adds the tail of a VM's serial console to err.
func (l *Lab) withConsole(n Node, err error) error {
	if err == nil {
		return nil
	}
	node := n.Name
	b, _ := os.ReadFile(l.hypervisor(hypervisorOf(n.Hypervisor)).SerialLog(node))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return fmt.Errorf("%w\n%s's serial console:\n%s", err, node, b)
}

// inVM runs a shell command on VM node through Salt and returns its
// output; a failing command is an error with its output.
func (l *Lab) inVM(node, script string) (string, error) {
	res, out, err := l.Salt(time.Minute, node, "cmd.run_all", script, "python_shell=True")
	var ret struct {
		Retcode        int
		Stdout, Stderr string
	}
	if jerr := json.Unmarshal(res[node], &ret); jerr != nil {
		return "", fmt.Errorf("on %s: %s: %v: %s", node, script, err, out)
	}
	if ret.Retcode != 0 {
		return ret.Stdout, fmt.Errorf("on %s: %s: exit %d: %s %s", node, script, ret.Retcode, ret.Stdout, ret.Stderr)
	}
	return strings.TrimSpace(ret.Stdout), nil
}

// vmPod makes the pod of VM node n: a namespace on its cni0, addressed
// from its pod CIDR as AddPod addresses a namespace node's.
func (l *Lab) vmPod(n Node, cidr netip.Prefix) (netip.Addr, error) {
	gw := cidr.Addr().Next()
	ip := gw.Next()
	script := fmt.Sprintf(`set -e
ip link show cni0 >/dev/null 2>&1 || { ip link add cni0 type bridge; ip addr add %[1]s/%[3]d dev cni0; ip link set cni0 up; }
ip netns list | grep -qw pod && exit 0
ip netns add pod
ip link add vpod type veth peer name eth0 netns pod
ip link set vpod master cni0 up
ip -n pod addr add %[2]s/%[3]d dev eth0
ip -n pod link set eth0 up
ip -n pod link set lo up
ip -n pod route add default via %[1]s`, gw, ip, cidr.Bits())
	_, err := l.inVM(n.Name, script)
	return ip, err
}

// checkVMPods checks traffic both ways between a pod on VM n and one on a
// namespace worker: ping, and the source address each receiver sees.
func (l *Lab) checkVMPods(n Node) error {
	plan, err := l.podCIDRs()
	if err != nil {
		return err
	}
	var peer Node
	for _, w := range l.workers() {
		if !w.VM {
			peer = w
			break
		}
	}
	if !peer.IP.IsValid() || len(plan[peer.Name]) == 0 || len(plan[n.Name]) == 0 {
		return fmt.Errorf("want a namespace worker and the VM with pod CIDRs (plan: %v)", plan)
	}
	nsPod, err := l.AddPod(peer.Name, plan[peer.Name][0])
	if err != nil {
		return err
	}
	vmIP, err := l.vmPod(n, plan[n.Name][0])
	if err != nil {
		return err
	}
	if _, err := l.inVM(n.Name, fmt.Sprintf("ip netns exec pod ping -c 1 -W 2 %s", nsPod.IP)); err != nil {
		return fmt.Errorf("pod %s on %s -> pod %s on %s: %w", vmIP, n.Name, nsPod.IP, peer.Name, err)
	}
	if _, err := l.in(nsPod.NS, "ping", "-c", "1", "-W", "2", vmIP.String()); err != nil {
		return fmt.Errorf("pod %s on %s -> pod %s on %s: %w", nsPod.IP, peer.Name, vmIP, n.Name, err)
	}
	// VM pod -> namespace pod: the namespace pod's receiver sees the source.
	src, err := l.sourceFromVM(n.Name, nsPod)
	if err != nil {
		return err
	}
	if src != vmIP {
		return fmt.Errorf("pod %s on %s saw the VM's pod as %s, want %s (NAT on the way)", nsPod.IP, peer.Name, src, vmIP)
	}
	l.say("    pod %s on %s -> pod %s on %s: ok, receiver saw %s", vmIP, n.Name, nsPod.IP, peer.Name, src)
	// Namespace pod -> VM pod: a receiver in the VM's pod prints the source.
	got, err := l.sourceInVM(n.Name, vmIP, nsPod)
	if err != nil {
		return err
	}
	if got != nsPod.IP.String() {
		return fmt.Errorf("pod %s on %s saw the namespace pod as %s, want %s (NAT on the way)", vmIP, n.Name, got, nsPod.IP)
	}
	l.say("    pod %s on %s -> pod %s on %s: ok, receiver saw %s", nsPod.IP, peer.Name, vmIP, n.Name, got)
	return nil
}

const vmProbePort = 9099

func listenUDP(ip netip.Addr, port int) (*net.UDPConn, error) {
	return net.ListenUDP("udp", &net.UDPAddr{IP: ip.AsSlice(), Port: port})
}

func sendUDP(ip netip.Addr, port int) error {
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: ip.AsSlice(), Port: port})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte("kubesalt"))
	return err
}

// sourceFromVM sends a datagram from the VM's pod to pod p and returns the
// source address p's receiver saw.
func (l *Lab) sourceFromVM(node string, p Pod) (netip.Addr, error) {
	type seen struct {
		addr netip.Addr
		err  error
	}
	got := make(chan seen, 1)
	ready := make(chan error, 1)
	go func() {
		err := probe.InNetns(p.NS, func() error {
			c, err := listenUDP(p.IP, vmProbePort)
			ready <- err
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, src, err := c.ReadFromUDPAddrPort(make([]byte, 64))
			got <- seen{src.Addr().Unmap(), err}
			return nil
		})
		if err != nil {
			got <- seen{err: err}
		}
	}()
	if err := <-ready; err != nil {
		return netip.Addr{}, err
	}
	if _, err := l.inVM(node, fmt.Sprintf(`ip netns exec pod python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'kubesalt', ('%s', %d))"`, p.IP, vmProbePort)); err != nil {
		return netip.Addr{}, err
	}
	s := <-got
	if s.err != nil {
		return netip.Addr{}, fmt.Errorf("no datagram from %s's pod reached %s: %w", node, p.IP, s.err)
	}
	return s.addr, nil
}

// sourceInVM runs a receiver in the VM's pod and sends it datagrams from
// pod p until it prints the source address it saw.
func (l *Lab) sourceInVM(node string, vmIP netip.Addr, p Pod) (string, error) {
	type seen struct {
		out string
		err error
	}
	got := make(chan seen, 1)
	go func() {
		out, err := l.inVM(node, fmt.Sprintf(`ip netns exec pod timeout 30 python3 -c "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('%s', %d)); print(s.recvfrom(64)[1][0])"`, vmIP, vmProbePort))
		got <- seen{out, err}
	}()
	for {
		select {
		case s := <-got:
			return s.out, s.err
		case <-time.After(time.Second):
			probe.InNetns(p.NS, func() error { return sendUDP(vmIP, vmProbePort) })
		}
	}
}

// checkVMGone checks VM n's hypervisor and the master hold nothing of it.
func (l *Lab) checkVMGone(n Node) error {
	node := n.Name
	d := l.hypervisor(hypervisorOf(n.Hypervisor))
	var left []string
	if out, _ := run("virsh", "-c", d.URI(), "list", "--all", "--name"); strings.Contains(out, node) {
		left = append(left, "its domain")
	}
	entries, _ := os.ReadDir(d.Pool())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), node) {
			left = append(left, "volume "+e.Name())
		}
	}
	if _, err := os.Stat(saltkey.AcceptedPath(l.masterPKI(), node)); err == nil {
		left = append(left, "its accepted key")
	}
	if len(left) > 0 {
		return fmt.Errorf("%s: left behind: %s", node, strings.Join(left, ", "))
	}
	return nil
}
