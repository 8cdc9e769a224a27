package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/libvirtd"
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
	if err := topology.Steps(
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
	// kubesalt-virt's lock per hypervisor URI goes to TMPDIR: the lab's,
	// removed with it, not the host's /tmp.
	tmp := filepath.Join(l.nodeDir(name), "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	if err := l.startDaemon("minion/"+name, ns, filepath.Join(l.nodeDir(name), "minion.log"),
		"env", "TMPDIR="+tmp, filepath.Join(l.SaltBin, "salt-minion"), "-c", l.minionConf(name)); err != nil {
		return err
	}
	return l.waitMinions([]string{name}, 2*time.Minute)
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
