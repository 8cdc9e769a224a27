package virt

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/debian"
)

// aptMirror returns the Debian archive this machine's apt uses (so the
// guest comes from the same packages, without naming a host here).
func aptMirror(t *testing.T) string {
	t.Helper()
	m, err := debian.Mirror()
	if err != nil {
		t.Skip(err)
	}
	return m
}

// buildGuest debootstraps a small Debian 12 with a kernel and cloud-init
// and returns an ext4 image of it (no partition table, booted with the
// kernel and initrd it returns too).
func buildGuest(t *testing.T, work string) (image, kernel, initrd string) {
	t.Helper()
	// KUBESALT_E2E_ROOTFS reuses a tree debootstrapped before (as below),
	// to iterate without downloading again; it is left in place.
	root := os.Getenv("KUBESALT_E2E_ROOTFS")
	if root == "" {
		root = filepath.Join(work, "root")
		defer os.RemoveAll(root)
		start := time.Now()
		// python3-cffi-backend is named because debootstrap does not
		// resolve the virtual package python3-cryptography needs.
		out, err := exec.Command("debootstrap", "--variant=minbase",
			"--include=systemd-sysv,udev,linux-image-amd64,cloud-init,python3-cffi-backend,ifupdown,iproute2,netbase",
			"bookworm", root, aptMirror(t)).CombinedOutput()
		if err != nil {
			t.Fatalf("debootstrap: %v\n%s", err, tail(out, 3000))
		}
		t.Logf("debootstrap took %s", time.Since(start).Round(time.Second))
	}
	writeFiles(t, map[string]string{
		// Not the seed's name: the hostname on the console must come from it.
		filepath.Join(root, "etc/hostname"): "debootstrapped\n",
		filepath.Join(root, "etc/fstab"):    "/dev/vda / ext4 defaults 0 1\n",
		// Only NoCloud: no waiting for cloud metadata services.
		filepath.Join(root, "etc/cloud/cloud.cfg.d/90-kubesalt-e2e.cfg"): "datasource_list: [NoCloud, None]\n",
	})
	kernels, _ := filepath.Glob(filepath.Join(root, "boot/vmlinuz-*"))
	initrds, _ := filepath.Glob(filepath.Join(root, "boot/initrd.img-*"))
	if len(kernels) != 1 || len(initrds) != 1 {
		t.Fatalf("kernel %v initrd %v", kernels, initrds)
	}
	kernel, initrd = filepath.Join(work, "vmlinuz"), filepath.Join(work, "initrd.img")
	run(t, "cp", kernels[0], kernel)
	run(t, "cp", initrds[0], initrd)
	image = filepath.Join(work, "root.img")
	run(t, "mkfs.ext4", "-q", "-L", "root", "-d", root, image, "2G")
	return image, kernel, initrd
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TestE2EBootDebianGuest boots a Debian guest from a kubesalt seed under
// qemu TCG and checks that cloud-init applied it: the static IP answers
// ping (from inside the test's network namespace) and the seed's hostname
// is on the serial console. Opt-in (make e2e-vm): it downloads packages
// and boots an OS under software emulation, which takes minutes.
func TestE2EBootDebianGuest(t *testing.T) {
	if os.Getenv("KUBESALT_E2E_VM") == "" {
		t.Skip("opt-in: run `make e2e-vm` (KUBESALT_E2E_VM=1)")
	}
	needRealLibvirt(t)
	need(t, "debootstrap", "mkfs.ext4", "ping")
	work := t.TempDir()
	image, kernel, initrd := buildGuest(t, work)

	s := startLibvirtd(t)
	h, err := Connect(s.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	addPool(t, h, s, "")
	run(t, "qemu-img", "convert", "-O", "qcow2", image, filepath.Join(s.Pool, "base.qcow2"))
	os.Remove(image)
	pool, _ := h.conn.LookupStoragePoolByName("kstest")
	pool.Refresh(0)
	pool.Free()

	d := realDefinition(t, s, "")
	d.Libvirt.Roles["worker"] = cluster.Machine{VCPU: 1, MemoryMiB: 1024, DiskGiB: 3}
	if _, err := h.EnsureNetwork(d, Options{}); err != nil {
		t.Fatal(err)
	}
	pki := t.TempDir()
	rep, err := h.EnsureNodes(d, nil, pki, Options{})
	if err != nil || rep.Failure != nil {
		t.Fatalf("%v %v\n%s", err, rep.Failure, s.logs())
	}
	defer func() {
		if _, err := h.RemoveNodes(d, []string{"worker-0"}, pki, false); err != nil {
			t.Error(err)
		}
		removeNetwork(t, h, "ksreal")
	}()

	// The image has no boot loader: boot its kernel directly. Everything
	// else (disk, seed cdrom, NIC, serial console) is kubesalt's domain.
	dom, err := h.conn.LookupDomainByName("worker-0")
	if err != nil {
		t.Fatal(err)
	}
	defer dom.Free()
	if err := dom.Destroy(); err != nil {
		t.Fatal(err)
	}
	x, _ := dom.GetXMLDesc(0)
	var def libvirtxml.Domain
	if err := def.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	def.OS.Kernel, def.OS.Initrd, def.OS.Cmdline = kernel, initrd, "root=/dev/vda rw console=ttyS0,115200"
	def.OS.BootDevices = nil
	x, _ = def.Marshal()
	d2, err := h.conn.DomainDefineXML(x)
	if err != nil {
		t.Fatal(err)
	}
	d2.Free()
	if err := dom.Create(); err != nil {
		t.Fatalf("%v\n%s", err, s.logs())
	}

	console := filepath.Join(s.Dir, "var/log/libvirt/qemu/worker-0-serial.log")
	deadline := time.Now().Add(20 * time.Minute)
	for {
		b, _ := os.ReadFile(console)
		if strings.Contains(string(b), "worker-0 login:") {
			t.Logf("serial console shows the seed's hostname after boot:\n%s", tail(b, 1500))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no `worker-0 login:` on the serial console within 20 minutes:\n%s", tail(b, 4000))
		}
		time.Sleep(5 * time.Second)
	}
	var out []byte
	for i := 0; i < 30; i++ {
		out, err = exec.Command("ip", "netns", "exec", s.NS, "ping", "-c", "1", "-W", "2", "192.168.171.20").CombinedOutput()
		if err == nil {
			t.Logf("the guest answers on its static IP:\n%s", out)
			return
		}
		time.Sleep(2 * time.Second)
	}
	b, _ := os.ReadFile(console)
	t.Fatalf("192.168.171.20 does not answer ping: %s\nconsole:\n%s", out, tail(b, 4000))
}
