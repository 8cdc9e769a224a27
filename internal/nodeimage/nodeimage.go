// Package nodeimage builds the disk image kubesalt's VMs boot, made as a
// cloud image is: Debian 12 with its own boot loader and cloud-init, and
// Salt's minion (from the package index, in a venv) installed as the
// salt-minion package that cloud-init's salt_minion module installs and
// restarts. The domain kubesalt-virt defines boots it as it is.
package nodeimage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kubesalt/kubesalt/internal/debian"
)

// Packages are the image's Debian packages: a systemd system with a
// kernel, cloud-init (ifupdown is the network renderer it finds;
// cloud-guest-utils grows the root partition to the VM's disk), Python's
// venv for Salt, and what a node's network needs (iproute2, iptables).
var Packages = []string{
	"systemd-sysv", "udev", "kmod", "linux-image-amd64", "initramfs-tools",
	"cloud-init", "cloud-guest-utils", "ifupdown", "netbase", "iproute2", "iptables", "iputils-ping", "procps",
	// debootstrap does not resolve the virtual package python3-cryptography needs.
	"python3-cffi-backend", "python3-venv",
}

// HostTools are the programs Build runs on this machine (Debian packages
// debootstrap, dosfstools, mtools, syslinux, syslinux-common, fdisk,
// e2fsprogs, qemu-utils, dpkg).
var HostTools = []string{"debootstrap", "chroot", "dpkg-deb", "dpkg", "mkfs.vfat", "mcopy", "syslinux", "sfdisk", "mkfs.ext4", "qemu-img"}

// mbr is syslinux's master boot record: it boots the active partition.
const mbr = "/usr/lib/syslinux/mbr/mbr.bin"

// Sizes of the partitions: a FAT one with syslinux, the kernel and the
// initrd, then the root, last so that growpart can grow it.
const (
	bootMiB = 160
	rootMiB = 3072
	// Layout is the version of what Build does to a tree: a change to it
	// changes every image's key.
	layout = "2"
)

// Inputs are what an image is made of besides Packages.
type Inputs struct {
	SaltVersion string // Salt from the package index, e.g. 3008.4
	Saltext     string // saltext/: the kubesalt Salt extension, installed beside Salt
	Pip         string // a pip of Python 3.11 (Debian 12's) that builds the wheels
}

func (in Inputs) validate() error {
	if in.SaltVersion == "" {
		return fmt.Errorf("nodeimage: SaltVersion is empty: give the Salt release to install (e.g. 3008.4)")
	}
	if _, err := os.Stat(filepath.Join(in.Saltext, "pyproject.toml")); err != nil {
		return fmt.Errorf("nodeimage: Saltext %q has no pyproject.toml: give the checkout's saltext/ directory", in.Saltext)
	}
	if _, err := exec.LookPath(in.Pip); err != nil {
		return fmt.Errorf("nodeimage: Pip %q: %v (make venv makes .venv/bin/pip)", in.Pip, err)
	}
	return nil
}

// Key names an image's inputs: the packages, the Salt release, the
// extension's sources and the layout.
func (in Inputs) Key() (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, layout, in.SaltVersion, strings.Join(sorted(Packages), ","))
	err := filepath.WalkDir(filepath.Join(in.Saltext, "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// What Python and a wheel's build write beside the sources.
			if d.Name() == "__pycache__" || strings.HasSuffix(d.Name(), ".egg-info") {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(in.Saltext, p)
		fmt.Fprintf(h, "%s %x\n", rel, sha256.Sum256(b))
		return nil
	})
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(in.Saltext, "pyproject.toml"))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "pyproject %x\n", sha256.Sum256(b))
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// Build returns the qcow2 image for in under cacheDir, making it when no
// image of the same inputs is there (the Debian tree it starts from is kept
// too, by debian.Tree). It needs root (debootstrap, chroot, mkfs -d).
func Build(cacheDir string, in Inputs, log io.Writer) (path string, built bool, err error) {
	if err := in.validate(); err != nil {
		return "", false, err
	}
	for _, t := range HostTools {
		if _, err := exec.LookPath(t); err != nil {
			return "", false, fmt.Errorf("nodeimage: %s is missing: apt-get install debootstrap dosfstools mtools syslinux syslinux-common fdisk e2fsprogs qemu-utils (make e2e-vm installs them)", t)
		}
	}
	key, err := in.Key()
	if err != nil {
		return "", false, err
	}
	path = filepath.Join(cacheDir, "node-"+key+".qcow2")
	if _, err := os.Stat(path); err == nil {
		return path, false, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", false, err
	}
	tree := filepath.Join(cacheDir, "tree")
	fmt.Fprintf(log, "nodeimage: the Debian tree (%s)\n", tree)
	if _, err := debian.Tree(tree, Packages); err != nil {
		return "", false, err
	}
	work, err := os.MkdirTemp(cacheDir, "build-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(work)
	b := builder{in: in, work: work, root: filepath.Join(work, "root"), log: log}
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"copy the tree", func() error { return b.run("cp", "-a", tree, b.root) }},
		{"install Salt " + in.SaltVersion + " and saltext-kubesalt into /opt/saltstack/salt", b.installSalt},
		{"install the salt-minion package", b.installMinionPackage},
		{"configure the image", b.configure},
		{"make the disk", func() error { return b.disk(path) }},
	} {
		fmt.Fprintf(log, "nodeimage: %s\n", step.what)
		if err := step.do(); err != nil {
			return "", false, fmt.Errorf("nodeimage: %s: %w", step.what, err)
		}
	}
	pruneOthers(cacheDir, path)
	return path, true, nil
}

// pruneOthers removes every image in cacheDir but keep: each is a
// gigabyte, and one of other inputs (an older Salt or saltext) is only
// wanted again by an older checkout, which rebuilds it in minutes.
func pruneOthers(cacheDir, keep string) {
	images, _ := filepath.Glob(filepath.Join(cacheDir, "node-*.qcow2"))
	for _, image := range images {
		if image != keep {
			os.Remove(image)
		}
	}
}

type builder struct {
	in         Inputs
	work, root string
	log        io.Writer
}

// run runs a command; its output is shown only when it fails.
func (b builder) run(name string, args ...string) error {
	return b.runEnv(nil, name, args...)
}

func (b builder) runEnv(env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		if len(out) > 3000 {
			out = out[len(out)-3000:]
		}
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// chrootEnv is a plain environment for commands inside the tree: none of
// this machine's pip settings (its wheel directory, its certificates).
var chrootEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}

// venv is where the image's Salt lives, as Salt's own packages put it.
const venv = "/opt/saltstack/salt"

// installSalt builds the wheels of Salt and the extension here (Python
// 3.11 and glibc 2.36 as the guest's), then installs them into a venv of
// the guest's own Python, offline.
func (b builder) installSalt() error {
	// A wheel's build writes beside its sources (build/, egg-info): build
	// from a copy, so that the checkout stays as it is.
	src := filepath.Join(b.work, "saltext")
	if err := b.run("cp", "-a", b.in.Saltext, src); err != nil {
		return err
	}
	wheels := filepath.Join(b.root, "tmp/wheels")
	if err := b.run(b.in.Pip, "wheel", "-q", "-w", wheels, "salt=="+b.in.SaltVersion, src); err != nil {
		return err
	}
	defer os.RemoveAll(wheels)
	if err := b.runEnv(chrootEnv, "chroot", b.root, "python3", "-m", "venv", venv); err != nil {
		return err
	}
	return b.runEnv(chrootEnv, "chroot", b.root, venv+"/bin/pip", "install", "-q", "--no-index", "--find-links", "/tmp/wheels",
		"--disable-pip-version-check", "salt=="+b.in.SaltVersion, "saltext-kubesalt")
}

// minionUnit starts the minion once it is configured: cloud-init writes
// /etc/salt/minion and then restarts the service, so that a first boot
// never starts a minion with a key of its own for a master called salt.
const minionUnit = `[Unit]
Description=The Salt Minion
Documentation=man:salt-minion(1)
After=network-online.target
Wants=network-online.target
ConditionPathExists=/etc/salt/minion

[Service]
ExecStart=` + venv + `/bin/salt-minion
KillMode=process
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
`

// installMinionPackage installs a salt-minion package of the venv's Salt:
// its systemd unit and commands. cloud-init's salt_minion module runs
// `apt-get install salt-minion` first, which then finds it installed.
func (b builder) installMinionPackage() error {
	pkg := filepath.Join(b.work, "salt-minion")
	files := map[string]string{
		"DEBIAN/control": fmt.Sprintf(`Package: salt-minion
Version: %s
Architecture: amd64
Maintainer: kubesalt
Depends: python3-venv
Description: Salt %s minion, installed from the package index into %s
`, b.in.SaltVersion, b.in.SaltVersion, venv),
		"lib/systemd/system/salt-minion.service": minionUnit,
	}
	for p, c := range files {
		if err := writeFile(filepath.Join(pkg, p), c); err != nil {
			return err
		}
	}
	for _, cmd := range []string{"salt-minion", "salt-call"} {
		if err := os.MkdirAll(filepath.Join(pkg, "usr/bin"), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(venv+"/bin/"+cmd, filepath.Join(pkg, "usr/bin", cmd)); err != nil {
			return err
		}
	}
	deb := filepath.Join(b.work, "salt-minion.deb")
	if err := b.run("dpkg-deb", "--root-owner-group", "--build", pkg, deb); err != nil {
		return err
	}
	if err := b.run("cp", deb, filepath.Join(b.root, "tmp/salt-minion.deb")); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(b.root, "tmp/salt-minion.deb"))
	if err := b.runEnv(chrootEnv, "chroot", b.root, "dpkg", "-i", "/tmp/salt-minion.deb"); err != nil {
		return err
	}
	wants := filepath.Join(b.root, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	return os.Symlink("/lib/systemd/system/salt-minion.service", filepath.Join(wants, "salt-minion.service"))
}

// configure makes the tree a cloud image: its root by label, cloud-init
// reading only the NoCloud seed, no apt sources (a lab's guests have no way
// out, and cloud-init's `apt-get update` must succeed), and no identity of
// its own (hostname and machine-id come at first boot).
func (b builder) configure() error {
	files := map[string]string{
		"etc/fstab":                             "LABEL=root / ext4 defaults,errors=remount-ro 0 1\n",
		"etc/cloud/cloud.cfg.d/90-kubesalt.cfg": "datasource_list: [NoCloud, None]\n",
		"etc/apt/sources.list":                  "",
		"etc/machine-id":                        "",
	}
	for p, c := range files {
		if err := writeFile(filepath.Join(b.root, p), c); err != nil {
			return err
		}
	}
	for _, p := range []string{"etc/hostname", "var/lib/dbus/machine-id", ".kubesalt-tree"} {
		if err := os.Remove(filepath.Join(b.root, p)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

func writeFile(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

// syslinuxCfg boots the kernel at once, with the console on the serial
// port (libvirt logs it).
const syslinuxCfg = `DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  KERNEL vmlinuz
  INITRD initrd.img
  APPEND root=LABEL=root ro console=tty0 console=ttyS0,115200
`

// disk writes the MBR disk: syslinux's boot record, a FAT partition
// (active) with syslinux, the kernel and the initrd, and the ext4 root made
// from the tree. No loop device or mount: every part is made as a file and
// written at its offset.
func (b builder) disk(path string) error {
	kernels, _ := filepath.Glob(filepath.Join(b.root, "boot/vmlinuz-*"))
	initrds, _ := filepath.Glob(filepath.Join(b.root, "boot/initrd.img-*"))
	if len(kernels) != 1 || len(initrds) != 1 {
		return fmt.Errorf("want one kernel and one initrd in /boot, have %v and %v", kernels, initrds)
	}
	boot := filepath.Join(b.work, "boot.img")
	cfg := filepath.Join(b.work, "syslinux.cfg")
	if err := writeFile(cfg, syslinuxCfg); err != nil {
		return err
	}
	root := filepath.Join(b.work, "root.img")
	raw := filepath.Join(b.work, "disk.raw")
	const mib = 1 << 20
	for _, c := range [][]string{
		{"mkfs.vfat", "-n", "BOOT", "-C", boot, fmt.Sprint(bootMiB * 1024)},
		{"mcopy", "-i", boot, kernels[0], "::vmlinuz"},
		{"mcopy", "-i", boot, initrds[0], "::initrd.img"},
		{"mcopy", "-i", boot, cfg, "::syslinux.cfg"},
		{"syslinux", "--install", boot},
		{"mkfs.ext4", "-q", "-L", "root", "-d", b.root, root, fmt.Sprintf("%dM", rootMiB)},
		{"truncate", "-s", fmt.Sprint((1 + bootMiB + rootMiB) * mib), raw},
	} {
		if err := b.run(c[0], c[1:]...); err != nil {
			return err
		}
	}
	table := fmt.Sprintf("label: dos\nstart=1MiB, size=%dMiB, type=c, bootable\nstart=%dMiB, type=83\n", bootMiB, 1+bootMiB)
	cmd := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", raw)
	cmd.Stdin = strings.NewReader(table)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sfdisk %s: %v\n%s", raw, err, out)
	}
	for _, c := range [][]string{
		{"dd", "if=" + mbr, "of=" + raw, "bs=440", "count=1", "conv=notrunc", "status=none"},
		{"dd", "if=" + boot, "of=" + raw, "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"},
		{"dd", "if=" + root, "of=" + raw, "bs=1M", fmt.Sprintf("seek=%d", 1+bootMiB), "conv=notrunc,sparse", "status=none"},
		{"qemu-img", "convert", "-O", "qcow2", raw, path + ".tmp"},
		{"mv", path + ".tmp", path},
	} {
		if err := b.run(c[0], c[1:]...); err != nil {
			os.Remove(path + ".tmp")
			return err
		}
	}
	return nil
}
