package virt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/kubesalt/kubesalt/internal/saltkey"
)

// openTestDriver connects to libvirt's in-memory test driver (no daemon)
// and adds the base image a user would have uploaded. The driver's state
// lives as long as the connection.
func openTestDriver(t testing.TB, baseGiB int) *Hypervisor {
	t.Helper()
	h, err := Connect("test:///default")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	pool, err := h.conn.LookupStoragePoolByName("default-pool")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Free()
	v, err := pool.StorageVolCreateXML(fmt.Sprintf(`<volume><name>base.qcow2</name><capacity unit="GiB">%d</capacity><target><format type="qcow2"/></target></volume>`, baseGiB), 0)
	if err != nil {
		t.Fatal(err)
	}
	v.Free()
	return h
}

func volumes(t testing.TB, h *Hypervisor) []string {
	t.Helper()
	pool, err := h.conn.LookupStoragePoolByName("default-pool")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Free()
	names := volumeNames(pool)
	sort.Strings(names)
	return names
}

func domainNames(t testing.TB, h *Hypervisor) []string {
	t.Helper()
	doms, err := h.domains()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range doms {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestWholeClusterOnTestDriver(t *testing.T) {
	h := openTestDriver(t, 2)
	d := loadDef(t, "testdata/cluster.yaml")
	pki := t.TempDir()
	opts := Options{}

	// Test mode first: everything reported, nothing made.
	nrep, err := h.EnsureNetwork(d, Options{Test: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(nrep.Done, ",") != "defined,autostart,started" {
		t.Errorf("test-mode network report %v", nrep.Done)
	}
	if ok, _, _ := h.networkState("kstest"); ok {
		t.Fatal("test mode defined the network")
	}
	if r := nrep.Result(Options{Test: true}); r.Result != nil {
		t.Errorf("test mode with pending changes: result %v, want null", *r.Result)
	}

	nrep, err = h.EnsureNetwork(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(nrep.Done) != 3 || !nrep.Active {
		t.Fatalf("network report %+v", nrep)
	}
	net, err := h.conn.LookupNetworkByName("kstest")
	if err != nil {
		t.Fatal(err)
	}
	x, _ := net.GetXMLDesc(0)
	auto, _ := net.GetAutostart()
	net.Free()
	var n libvirtxml.Network
	if err := n.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	if n.Bridge.Name != "br-kstest" || n.Forward.Mode != "nat" || len(n.IPs) != 1 || n.IPs[0].Address != "192.168.170.1" || n.IPs[0].DHCP != nil || !auto {
		t.Errorf("network as defined:\n%s", x)
	}

	// Test mode for the nodes: every node would be created, none is.
	rep, err := h.EnsureNodes(d, nil, pki, Options{Test: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Changes) != 6 || strings.Join(rep.Changes["worker-2"].Created, ",") != "disk,seed,domain,minion_key" {
		t.Errorf("test-mode changes %+v", rep.Changes["worker-2"])
	}
	if got := domainNames(t, h); strings.Join(got, ",") != "test" {
		t.Fatalf("test mode created domains: %v", got)
	}
	if got := volumes(t, h); len(got) != 1 {
		t.Fatalf("test mode created volumes: %v", got)
	}

	// The whole cluster.
	rep, err = h.EnsureNodes(d, nil, pki, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failure != nil {
		t.Fatal(rep.Failure)
	}
	if len(rep.Changes) != 6 {
		t.Fatalf("changes for %d nodes, want 6: %v", len(rep.Changes), rep.Changes)
	}
	if got := strings.Join(rep.Changes["master-0"].Created, ","); got != "disk,seed,domain,minion_key" {
		t.Errorf("master-0 created %s", got)
	}
	if st := rep.Nodes["worker-1"]; st.State != "running" || st.IP != "192.168.170.21" || st.MAC != MACFor("kstest", "worker-1") {
		t.Errorf("worker-1 state %+v", st)
	}
	wantVols := "base.qcow2,master-0-seed.iso,master-0.qcow2,master-1-seed.iso,master-1.qcow2,master-2-seed.iso,master-2.qcow2,worker-0-seed.iso,worker-0.qcow2,worker-1-seed.iso,worker-1.qcow2,worker-2-seed.iso,worker-2.qcow2"
	if got := strings.Join(volumes(t, h), ","); got != wantVols {
		t.Errorf("volumes %s", got)
	}
	doms, err := h.domains()
	if err != nil {
		t.Fatal(err)
	}
	w0 := doms["worker-0"]
	if w0 == nil || !w0.ours("kstest") || w0.State != libvirt.DOMAIN_RUNNING || w0.Meta.Role != "worker" {
		t.Fatalf("worker-0 domain %+v", w0)
	}
	set := domainSettings(&w0.Def)
	if set["vcpu"] != 4 || set["memory_mib"] != 4096 || set["nic"] != MACFor("kstest", "worker-0")+" network=kstest virtio" {
		t.Errorf("worker-0 settings %v", set)
	}
	disks := w0.Def.Devices.Disks
	if len(disks) != 2 || disks[0].Source.File.File != "/default-pool/worker-0.qcow2" || disks[1].Device != "cdrom" || disks[1].Source.File.File != "/default-pool/worker-0-seed.iso" {
		t.Errorf("worker-0 disks %+v", disks)
	}
	// The master accepted the key whose public half the domain records.
	key, err := os.ReadFile(saltkey.AcceptedPath(pki, "worker-0"))
	if err != nil || string(key) != w0.Meta.MinionPublicKey || !strings.HasPrefix(string(key), "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("accepted key %q (%v), domain metadata %q", key, err, w0.Meta.MinionPublicKey)
	}
	list, err := h.List()
	if err != nil || len(list) != 6 || list[0].Name != "master-0" || list[0].MemoryMiB != 2048 || list[0].State != "running" {
		t.Errorf("list = %+v (%v)", list, err)
	}

	// Second run: nothing to do.
	nrep, err = h.EnsureNetwork(d, opts)
	if err != nil || len(nrep.Done) != 0 || len(nrep.Drift) != 0 {
		t.Errorf("second network run: %+v %v", nrep, err)
	}
	rep, err = h.EnsureNodes(d, nil, pki, opts)
	if err != nil || rep.Failure != nil || len(rep.Changes) != 0 {
		t.Fatalf("second run changed %v (%v %v)", rep.Changes, err, rep.Failure)
	}

	// Network drift is reported, and redefined only with --update.
	d.Libvirt.Network.Forward = cluster.ForwardRoute
	nrep, err = h.EnsureNetwork(d, opts)
	if err != nil || nrep.Drift["forward"] != (Drift{Have: "nat", Want: "route"}) || nrep.Updated {
		t.Fatalf("network drift: %+v %v", nrep, err)
	}
	if r := nrep.Result(opts); r.Result == nil || *r.Result || !strings.Contains(r.Comment, "--update") {
		t.Errorf("network drift result %+v", r)
	}
	if nrep, err = h.EnsureNetwork(d, Options{Update: true}); err != nil || !nrep.Updated {
		t.Fatalf("network update: %+v %v", nrep, err)
	}
	// (The test driver shows a running network's live definition only;
	// the real libvirtd test checks the redefinition took.)
	d.Libvirt.Network.Forward = cluster.ForwardNAT
	if r := rep.Result(opts, "created"); *r.Result != true || len(r.Changes) != 0 {
		t.Errorf("second run result %+v", r)
	}

	// A lost accepted key is restored from the domain's record.
	os.Remove(saltkey.AcceptedPath(pki, "master-1"))
	rep, _ = h.EnsureNodes(d, nil, pki, opts)
	if got := rep.Changes["master-1"]; got == nil || strings.Join(got.Fixed, ",") != "minion_key" {
		t.Errorf("restoring the key: %+v", got)
	}
	if b, _ := os.ReadFile(saltkey.AcceptedPath(pki, "master-1")); string(b) != doms["master-1"].Meta.MinionPublicKey {
		t.Error("restored key differs from the seed's")
	}

	// A stopped domain without autostart is started and marked again.
	dom, err := h.conn.LookupDomainByName("worker-1")
	if err != nil {
		t.Fatal(err)
	}
	dom.Destroy()
	dom.SetAutostart(false)
	dom.Free()
	rep, _ = h.EnsureNodes(d, []string{"worker-1"}, pki, Options{Test: true})
	if got := rep.Changes["worker-1"]; got == nil || strings.Join(got.Fixed, ",") != "autostart,started" {
		t.Errorf("test mode on a stopped domain: %+v", got)
	}
	if doms, _ := h.domains(); doms["worker-1"].State == libvirt.DOMAIN_RUNNING {
		t.Error("test mode started worker-1")
	}
	rep, _ = h.EnsureNodes(d, []string{"worker-1"}, pki, opts)
	if got := rep.Changes["worker-1"]; got == nil || strings.Join(got.Fixed, ",") != "autostart,started" || rep.Nodes["worker-1"].State != "running" {
		t.Errorf("restarting a stopped domain: %+v %+v", got, rep.Nodes)
	}

	// Drift: the workers' size changes in the definition.
	d.Libvirt.Roles["worker"] = cluster.Machine{VCPU: 2, MemoryMiB: 3072, DiskGiB: 40}
	rep, err = h.EnsureNodes(d, nil, pki, opts)
	if err != nil || rep.Failure != nil {
		t.Fatal(err, rep.Failure)
	}
	dr := rep.Changes["worker-0"].Drift
	if !rep.Drifted || len(rep.Changes) != 3 || dr["memory_mib"] != (Drift{Have: 4096, Want: 3072}) || dr["vcpu"] != (Drift{Have: 4, Want: 2}) {
		t.Errorf("drift report %+v %+v", rep.Changes, dr)
	}
	r := rep.Result(opts, "created")
	if r.Result == nil || *r.Result || !strings.Contains(r.Comment, "worker-0 (memory_mib, vcpu)") || !strings.Contains(r.Comment, "--update") {
		t.Errorf("drift result %v %q", r.Result, r.Comment)
	}
	if doms, _ := h.domains(); domainSettings(&doms["worker-0"].Def)["memory_mib"] != 4096 {
		t.Error("drift was changed without --update")
	}
	rep, err = h.EnsureNodes(d, []string{"worker-0"}, pki, Options{Update: true})
	if err != nil || rep.Failure != nil || !rep.Changes["worker-0"].Updated {
		t.Fatalf("update: %+v %v", rep.Changes, err)
	}
	if doms, _ := h.domains(); domainSettings(&doms["worker-0"].Def)["memory_mib"] != 3072 || doms["worker-0"].Def.UUID != w0.Def.UUID {
		t.Error("--update did not redefine worker-0 in place")
	}
	if rep, _ := h.EnsureNodes(d, []string{"worker-0"}, pki, opts); len(rep.Changes) != 0 {
		t.Errorf("after update: %+v", rep.Changes)
	}

	// Removal leaves nothing behind: no domain, no volume, no key.
	all := []string{"master-0", "master-1", "master-2", "worker-0", "worker-1", "worker-2"}
	rep, err = h.RemoveNodes(d, all, pki, true)
	if err != nil || len(rep.Changes) != 6 || strings.Join(rep.Changes["worker-2"].Removed, ",") != "domain,disk,seed,minion_key" {
		t.Fatalf("test-mode removal %+v %v", rep.Changes, err)
	}
	if len(domainNames(t, h)) != 7 {
		t.Fatal("test-mode removal removed domains")
	}
	rep, err = h.RemoveNodes(d, all, pki, false)
	if err != nil || rep.Failure != nil || len(rep.Changes) != 6 {
		t.Fatalf("removal %+v %v %v", rep.Changes, err, rep.Failure)
	}
	if got := domainNames(t, h); strings.Join(got, ",") != "test" {
		t.Errorf("domains left: %v", got)
	}
	if got := volumes(t, h); strings.Join(got, ",") != "base.qcow2" {
		t.Errorf("volumes left: %v", got)
	}
	if left, _ := os.ReadDir(filepath.Join(pki, "minions")); len(left) != 0 {
		t.Errorf("keys left: %v", left)
	}
	if rep, _ := h.RemoveNodes(d, all, pki, false); len(rep.Changes) != 0 {
		t.Errorf("second removal: %+v", rep.Changes)
	}
}

func wantBadInput(t *testing.T, err error, want ...string) {
	t.Helper()
	var ue *saltio.UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v is not bad input", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
}

// Bad input is found before anything is created.
func TestBadInputChangesNothing(t *testing.T) {
	h := openTestDriver(t, 2)
	d := loadDef(t, "testdata/cluster.yaml")
	if _, err := h.EnsureNetwork(d, Options{}); err != nil {
		t.Fatal(err)
	}
	// A foreign domain named like a node, and one holding a node's MAC.
	for _, x := range []string{
		`<domain type="test"><name>worker-2</name><memory>1024</memory><os><type>hvm</type></os></domain>`,
		`<domain type="test"><name>legacy</name><memory>1024</memory><os><type>hvm</type></os><devices><interface type="network"><mac address="` + MACFor("kstest", "master-1") + `"/><source network="kstest"/></interface></devices></domain>`,
	} {
		dom, err := h.conn.DomainDefineXML(x)
		if err != nil {
			t.Fatal(err)
		}
		dom.Free()
	}
	_, err := h.EnsureNodes(d, nil, "", Options{})
	wantBadInput(t, err,
		"kubernetes:nodes:worker-2: a domain of that name already exists on test:///default and was not made for this cluster",
		"kubernetes:nodes:master-1: its MAC "+MACFor("kstest", "master-1")+" is already used by domain legacy")
	if got := volumes(t, h); len(got) != 1 {
		t.Errorf("bad input created volumes %v", got)
	}
	_, err = h.RemoveNodes(d, []string{"worker-2"}, "", false)
	wantBadInput(t, err, "refusing to remove it")

	d.Libvirt.BaseImage = "nope.qcow2"
	_, err = h.EnsureNodes(d, []string{"worker-0"}, "", Options{})
	wantBadInput(t, err, "kubernetes:libvirt:base_image: no volume \"nope.qcow2\" in pool default-pool", "the pool has: base.qcow2")
	d.Libvirt.Pool = "nopool"
	_, err = h.EnsureNodes(d, []string{"worker-0"}, "", Options{})
	wantBadInput(t, err, "kubernetes:libvirt:pool: storage pool \"nopool\" does not exist", "default-pool")
	d = loadDef(t, "testdata/cluster.yaml")
	d.Libvirt.Roles["master"] = cluster.Machine{VCPU: 1, MemoryMiB: 512, DiskGiB: 1}
	_, err = h.EnsureNodes(d, []string{"master-0"}, "", Options{})
	wantBadInput(t, err, "kubernetes:libvirt:roles:master:disk_gib: 1 GiB is smaller than the base image (2.0 GiB); give at least 2")
	_, err = h.EnsureNodes(d, []string{"worker-9"}, "", Options{})
	wantBadInput(t, err, "--node worker-9: no such node")
	_, err = h.EnsureNodes(d, []string{"worker-0"}, "/nonexistent/pki", Options{})
	wantBadInput(t, err, "--master-pki-dir /nonexistent/pki: not a directory")
	d.Libvirt.Network.Name = "other"
	_, err = h.EnsureNodes(d, []string{"worker-0"}, "", Options{})
	wantBadInput(t, err, "network \"other\" does not exist or is not running", "network ensure")
	d.Libvirt.Network.Bridge = "br-kstest"
	_, err = h.EnsureNetwork(d, Options{})
	wantBadInput(t, err, "kubernetes:libvirt:network:bridge: br-kstest is already the bridge of libvirt network kstest")
	if got := volumes(t, h); len(got) != 1 {
		t.Errorf("bad input created volumes %v", got)
	}

	if _, err := Connect("qemu+unix:///system?socket=/nonexistent/sock"); err == nil || !strings.Contains(err.Error(), "cannot connect to libvirt at qemu+unix:///system?socket=/nonexistent/sock") {
		t.Errorf("unreachable: %v", err)
	}
}

// A failure while a node is made rolls back what was made for it; the
// nodes done before stay and are listed.
func TestFailureRollsBack(t *testing.T) {
	h := openTestDriver(t, 2)
	d := loadDef(t, "testdata/cluster.yaml")
	if _, err := h.EnsureNetwork(d, Options{}); err != nil {
		t.Fatal(err)
	}
	pki := t.TempDir()
	if _, err := h.EnsureNodes(d, []string{"master-0"}, pki, Options{}); err != nil {
		t.Fatal(err)
	}
	// The master's key directory becomes unwritable: accepting master-1's
	// key, the last step, fails.
	os.RemoveAll(filepath.Join(pki, "minions"))
	os.WriteFile(filepath.Join(pki, "minions"), nil, 0o600)
	rep, err := h.EnsureNodes(d, []string{"master-0", "master-1", "master-2"}, pki, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FailedNode != "master-0" {
		// master-0 exists; restoring its key fails first, and it had
		// nothing new to roll back.
		t.Fatalf("failed node %q: %v", rep.FailedNode, rep.Failure)
	}
	os.Remove(filepath.Join(pki, "minions"))
	os.MkdirAll(filepath.Join(pki, "minions", "master-1"), 0o700) // a directory where the key file goes
	rep, err = h.EnsureNodes(d, []string{"master-0", "master-1", "master-2"}, pki, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FailedNode != "master-1" || rep.Failure == nil {
		t.Fatalf("failed node %q: %v", rep.FailedNode, rep.Failure)
	}
	if got := strings.Join(rep.RolledBack, ","); got != "domain master-1,seed master-1-seed.iso,disk master-1.qcow2" {
		t.Errorf("rolled back %q", got)
	}
	if rep.Changes["master-0"] == nil || rep.Changes["master-2"] != nil {
		t.Errorf("changes %+v", rep.Changes)
	}
	r := rep.Result(Options{}, "created")
	if *r.Result || !strings.Contains(r.Comment, "node master-1 failed") || !strings.Contains(r.Comment, "rolled back: domain master-1") {
		t.Errorf("result %+v", r)
	}
	if got := strings.Join(domainNames(t, h), ","); got != "master-0,test" {
		t.Errorf("domains after rollback: %s", got)
	}
	if got := strings.Join(volumes(t, h), ","); got != "base.qcow2,master-0-seed.iso,master-0.qcow2" {
		t.Errorf("volumes after rollback: %s", got)
	}
}
