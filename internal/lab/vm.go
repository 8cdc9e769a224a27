package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/nodeimage"
	"github.com/kubesalt/kubesalt/internal/probe"
	"github.com/kubesalt/kubesalt/internal/saltkey"
)

// VMTiming is how long each step of a VM's join took from the start of
// orch.kubernetes.vms (kubesalt-virt node ensure on the hypervisors).
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
			// A job takes minutes on an emulated CPU once a few are queued:
			// pings asked on a timer piled up until none was answered in
			// time. kubesalt.wait_up (add_node's own wait) publishes
			// nothing before the minion connects, then one ping at a time.
			err := l.waitUp(n.Name, 15*time.Minute)
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

// waitUp waits, through the runner kubesalt.wait_up, for minion to answer.
func (l *Lab) waitUp(minion string, limit time.Duration) error {
	out, err := l.SaltRun("kubesalt.wait_up", minion, fmt.Sprintf("timeout=%d", int(limit.Seconds())))
	var ret struct {
		Result  bool
		Comment string
	}
	if jerr := json.Unmarshal([]byte(out), &ret); jerr != nil || !ret.Result {
		return fmt.Errorf("%s's minion: %v %s %s", minion, err, ret.Comment, out)
	}
	return nil
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
	// Minutes: a job queued on an emulated CPU waits for the others, and
	// one given up on and asked again piles another on it.
	res, out, err := l.Salt(5*time.Minute, node, "cmd.run_all", script, "python_shell=True")
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
			c, err := probe.ListenUDP(p.IP, vmProbePort)
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
			probe.InNetns(p.NS, func() error { return probe.SendUDP(vmIP, vmProbePort) })
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
