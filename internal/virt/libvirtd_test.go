package virt

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltkey"
)

// realDefinition is a one-node cluster for a real libvirtd: a tiny disk
// (nothing has to boot), software emulation (TCG).
func realDefinition(t *testing.T, s *sandbox, extra string) *cluster.Definition {
	t.Helper()
	d, err := cluster.Load([]byte(`
kubernetes:
  cluster_name: ksreal
  network: {node_cidr: 192.168.171.0/24, cluster_cidr: 10.200.0.0/16, service_cidr: 10.32.0.0/24}
  nodes:
    worker-0: {role: worker, ip: 192.168.171.20}
` + extra + `
  libvirt:
    uri: "` + s.URI + `"
    network: {name: ksreal, bridge: br-ksreal, forward: nat}
    pool: kstest
    base_image: base.qcow2
    domain_type: qemu
    roles:
      worker: {vcpu: 1, memory_mib: 256, disk_gib: 1}
      master: {vcpu: 1, memory_mib: 256, disk_gib: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// addPool defines the directory pool a user would have, with a small
// qcow2 "cloud image" in it.
func addPool(t *testing.T, h *Hypervisor, s *sandbox, baseSize string) {
	t.Helper()
	pool, err := h.conn.StoragePoolDefineXML(`<pool type="dir"><name>kstest</name><target><path>`+s.Pool+`</path></target></pool>`, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Free()
	if err := pool.Create(0); err != nil {
		t.Fatal(err)
	}
	if baseSize != "" {
		run(t, "qemu-img", "create", "-q", "-f", "qcow2", filepath.Join(s.Pool, "base.qcow2"), baseSize)
		if err := pool.Refresh(0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRealLibvirtdQemuTCG(t *testing.T) {
	needRealLibvirt(t)
	s := startLibvirtd(t)
	h, err := Connect(s.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	addPool(t, h, s, "16M")
	d := realDefinition(t, s, "")
	pki := t.TempDir()

	nrep, err := h.EnsureNetwork(d, Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, s.logs())
	}
	if !nrep.Active || len(nrep.Done) != 3 {
		t.Fatalf("network %+v", nrep)
	}
	// The bridge is up in the test's namespace with the gateway address.
	if out := s.inNS(t, "ip", "-br", "addr", "show", "br-ksreal"); !strings.Contains(out, "192.168.171.1/24") {
		t.Errorf("bridge: %s", out)
	}

	rep, err := h.EnsureNodes(d, nil, pki, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failure != nil {
		t.Fatalf("%v\n%s", rep.Failure, s.logs())
	}
	if st := rep.Nodes["worker-0"]; st.State != "running" {
		t.Fatalf("worker-0 is %s", st.State)
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings: %v", rep.Warnings)
	}
	// qemu really runs the guest, under TCG, with our MAC on the bridge.
	dom, err := h.conn.LookupDomainByName("worker-0")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if st, _, _ := dom.GetState(); st != libvirt.DOMAIN_RUNNING {
		t.Errorf("worker-0 left the running state: %s", StateName(st))
	}
	live, _ := dom.GetXMLDesc(0)
	dom.Free()
	if !strings.Contains(live, "type='qemu'") || !strings.Contains(live, MACFor("ksreal", "worker-0")) {
		t.Errorf("live domain:\n%s", live)
	}
	if out := s.inNS(t, "ip", "-br", "link", "show", "master", "br-ksreal"); !strings.Contains(out, "vnet") {
		t.Errorf("no guest tap on the bridge: %s", out)
	}
	// The disk is a qcow2 overlay on the base image, grown to 1 GiB; the
	// seed was uploaded and is a cidata ISO.
	info := run(t, "qemu-img", "info", "-U", filepath.Join(s.Pool, "worker-0.qcow2"))
	if !strings.Contains(info, "backing file: "+filepath.Join(s.Pool, "base.qcow2")) || !strings.Contains(info, "virtual size: 1 GiB") {
		t.Errorf("disk:\n%s", info)
	}
	if iso := run(t, "isoinfo", "-d", "-i", filepath.Join(s.Pool, "worker-0-seed.iso")); !strings.Contains(iso, "Volume id: cidata") {
		t.Errorf("seed:\n%s", iso)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "var/log/libvirt/qemu/worker-0-serial.log")); err != nil {
		t.Errorf("serial console not logged: %v", err)
	}
	if _, err := os.Stat(saltkey.AcceptedPath(pki, "worker-0")); err != nil {
		t.Error(err)
	}

	// Second run: nothing.
	if n, err := h.EnsureNetwork(d, Options{}); err != nil || len(n.Done)+len(n.Drift) != 0 {
		t.Errorf("second network run %+v %v", n, err)
	}
	if rep, err := h.EnsureNodes(d, nil, pki, Options{}); err != nil || len(rep.Changes) != 0 {
		t.Errorf("second run %+v %v", rep, err)
	}

	// Network drift: reported, redefined with --update (the running
	// network keeps its live setup until restarted), then in line.
	d.Libvirt.Network.Forward = cluster.ForwardRoute
	if n, err := h.EnsureNetwork(d, Options{}); err != nil || n.Drift["forward"] != (Drift{Have: "nat", Want: "route"}) || n.Updated {
		t.Errorf("network drift %+v %v", n, err)
	}
	if n, err := h.EnsureNetwork(d, Options{Update: true}); err != nil || !n.Updated {
		t.Errorf("network update %+v %v", n, err)
	}
	if n, err := h.EnsureNetwork(d, Options{}); err != nil || len(n.Drift)+len(n.Done) != 0 {
		t.Errorf("after network update %+v %v", n, err)
	}

	// Removal leaves only the base image.
	rep, err = h.RemoveNodes(d, []string{"worker-0"}, pki, false)
	if err != nil || rep.Failure != nil {
		t.Fatal(err, rep.Failure)
	}
	left, _ := os.ReadDir(s.Pool)
	if len(left) != 1 || left[0].Name() != "base.qcow2" {
		t.Errorf("pool after removal: %v", left)
	}
	if n, _ := h.conn.NumOfDomains(); n != 0 {
		t.Errorf("%d domains running after removal", n)
	}
	if out, _ := exec.Command("ip", "netns", "pids", s.NS).Output(); strings.Contains(string(out), "\n") && strings.Count(string(out), "\n") > 3 {
		t.Logf("processes in the namespace after removal: %s", out)
	}
	removeNetwork(t, h, "ksreal")
}

func removeNetwork(t *testing.T, h *Hypervisor, name string) {
	t.Helper()
	n, err := h.conn.LookupNetworkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Free()
	if err := n.Destroy(); err != nil {
		t.Error(err)
	}
	if err := n.Undefine(); err != nil {
		t.Error(err)
	}
}
