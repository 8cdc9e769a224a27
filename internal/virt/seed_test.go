package virt

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltkey"
)

func loadDef(t testing.TB, path string) *cluster.Definition {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cluster.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package: %s); `make test` installs it", tool, debPackage[tool])
		}
	}
}

var debPackage = map[string]string{
	"isoinfo": "genisoimage", "xorriso": "xorriso", "cloud-init": "cloud-init", "openssl": "openssl",
	"virsh": "libvirt-clients", "libvirtd": "libvirt-daemon", "virtlogd": "libvirt-daemon",
	"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils", "dnsmasq": "dnsmasq-base",
	"iptables": "iptables", "ip": "iproute2",
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// seedFor builds worker-1's seed from the test cluster.
func testSeed(t *testing.T) (Seed, saltkey.Pair, NodeSpec) {
	t.Helper()
	d := loadDef(t, "testdata/cluster.yaml")
	specs, err := Specs(d, []string{"worker-1"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := saltkey.New(saltkey.Bits)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := SeedFor(specs[0], d.Libvirt, key)
	if err != nil {
		t.Fatal(err)
	}
	return seed, key, specs[0]
}

// The ISO is checked with tools that are not ours: isoinfo and xorriso.
func TestSeedISOReadableByIsoinfoAndXorriso(t *testing.T) {
	need(t, "isoinfo", "xorriso")
	seed, _, _ := testSeed(t)
	iso, err := seed.ISO()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.iso")
	if err := os.WriteFile(path, iso, 0o600); err != nil {
		t.Fatal(err)
	}
	info := run(t, "isoinfo", "-d", "-i", path)
	if !strings.Contains(info, "Volume id: cidata") {
		t.Errorf("isoinfo does not see label cidata:\n%s", info)
	}
	if !strings.Contains(info, "Rock Ridge signatures") {
		t.Errorf("isoinfo finds no Rock Ridge:\n%s", info)
	}
	files := run(t, "isoinfo", "-R", "-f", "-i", path)
	for _, f := range []string{"/meta-data", "/user-data", "/network-config"} {
		if !strings.Contains(files, f+"\n") {
			t.Errorf("isoinfo -R lists no %s (Rock Ridge name):\n%s", f, files)
		}
	}
	for name, want := range map[string][]byte{"/user-data": seed.UserData, "/network-config": seed.NetworkConfig, "/meta-data": seed.MetaData} {
		if got := run(t, "isoinfo", "-R", "-i", path, "-x", name); got != string(want) {
			t.Errorf("%s read back by isoinfo differs:\n%s\nwant:\n%s", name, got, want)
		}
	}
	// xorriso reads the label from the primary volume descriptor and
	// extracts a file through Rock Ridge.
	out := run(t, "xorriso", "-indev", path, "-pvd_info")
	if !strings.Contains(out, "Volume Id    : cidata") {
		t.Errorf("xorriso -pvd_info: no cidata label:\n%s", out)
	}
	dst := filepath.Join(t.TempDir(), "meta-data")
	run(t, "xorriso", "-osirrox", "on", "-indev", path, "-extract", "/meta-data", dst)
	if got, _ := os.ReadFile(dst); string(got) != string(seed.MetaData) {
		t.Errorf("xorriso extracted meta-data %q, want %q", got, seed.MetaData)
	}
}

// Debian's cloud-init accepts the user-data (schema) and renders the
// network-config (net-convert parses version 2 and writes ifupdown files).
func TestSeedAcceptedByCloudInit(t *testing.T) {
	need(t, "cloud-init")
	seed, key, spec := testSeed(t)
	dir := t.TempDir()
	ud := filepath.Join(dir, "user-data")
	if err := os.WriteFile(ud, seed.UserData, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := run(t, "cloud-init", "schema", "-c", ud); !strings.Contains(out, "Valid cloud-config") {
		t.Errorf("cloud-init schema: %s", out)
	}
	// The schema check is strict: a wrong type in salt_minion fails it.
	bad := strings.Replace(string(seed.UserData), "  conf:\n", "  conf: wrong\n  x:\n", 1)
	if err := os.WriteFile(ud, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cloud-init", "schema", "-c", ud).CombinedOutput(); err == nil {
		t.Errorf("cloud-init schema accepted a broken salt_minion:\n%s", out)
	}

	var cc struct {
		Hostname   string   `yaml:"hostname"`
		Keys       []string `yaml:"ssh_authorized_keys"`
		SaltMinion struct {
			Conf       map[string]string `yaml:"conf"`
			Grains     map[string]any    `yaml:"grains"`
			PublicKey  string            `yaml:"public_key"`
			PrivateKey string            `yaml:"private_key"`
		} `yaml:"salt_minion"`
	}
	if err := yaml.Unmarshal(seed.UserData, &cc); err != nil {
		t.Fatal(err)
	}
	sm := cc.SaltMinion
	if cc.Hostname != "worker-1" || len(cc.Keys) != 1 || sm.Conf["master"] != "192.168.170.1" || sm.Conf["id"] != "worker-1" ||
		sm.Grains["role"] != "worker" || sm.Grains["cluster"] != "kstest" || sm.PublicKey != key.PublicPEM || sm.PrivateKey != key.PrivatePEM {
		t.Errorf("user-data = %+v", cc)
	}

	nc := filepath.Join(dir, "network-config")
	if err := os.WriteFile(nc, seed.NetworkConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	run(t, "cloud-init", "devel", "net-convert", "-p", nc, "-k", "yaml", "-D", "debian", "-O", "eni", "-d", out)
	eni, err := os.ReadFile(filepath.Join(out, "etc/network/interfaces.d/50-cloud-init"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"iface eth0 inet static", "address 192.168.170.21/24", "dns-nameservers 192.168.170.1", "default gw 192.168.170.1"} {
		if !strings.Contains(string(eni), want) {
			t.Errorf("rendered interfaces lack %q:\n%s", want, eni)
		}
	}
	rules, _ := os.ReadFile(filepath.Join(out, "etc/udev/rules.d/70-persistent-net.rules"))
	if !strings.Contains(string(rules), spec.MAC) || !strings.Contains(string(rules), `NAME="eth0"`) {
		t.Errorf("the NIC is not named eth0 by its MAC %s:\n%s", spec.MAC, rules)
	}
	var meta map[string]string
	if err := yaml.Unmarshal(seed.MetaData, &meta); err != nil || !strings.HasPrefix(meta["instance-id"], "kstest-worker-1-") || len(meta["instance-id"]) != len("kstest-worker-1-")+8 || meta["local-hostname"] != "worker-1" {
		t.Errorf("meta-data = %v (%v)", meta, err)
	}
}

// The CentOS 7 seed also carries the ifcfg file, which cloud-init's own
// sysconfig renderer agrees with.
func TestSeedCentOS7Ifcfg(t *testing.T) {
	d := loadDef(t, "testdata/cluster.yaml")
	d.Libvirt.BaseOS = cluster.OSCentOS7
	specs, _ := Specs(d, []string{"master-0"})
	seed, err := SeedFor(specs[0], d.Libvirt, saltkey.Pair{PublicPEM: "pub", PrivatePEM: "priv"})
	if err != nil {
		t.Fatal(err)
	}
	var cc cloudConfig
	if err := yaml.Unmarshal(seed.UserData, &cc); err != nil {
		t.Fatal(err)
	}
	if len(cc.WriteFiles) != 1 || cc.WriteFiles[0].Path != "/etc/sysconfig/network-scripts/ifcfg-eth0" {
		t.Fatalf("write_files = %+v", cc.WriteFiles)
	}
	c := cc.WriteFiles[0].Content
	for _, want := range []string{"DEVICE=eth0", "HWADDR=" + specs[0].MAC, "IPADDR=192.168.170.10", "PREFIX=24", "GATEWAY=192.168.170.1", "DNS1=192.168.170.1", "BOOTPROTO=none"} {
		if !strings.Contains(c, want+"\n") {
			t.Errorf("ifcfg lacks %s:\n%s", want, c)
		}
	}
	if _, err := exec.LookPath("cloud-init"); err == nil {
		ud := filepath.Join(t.TempDir(), "user-data")
		os.WriteFile(ud, seed.UserData, 0o600)
		run(t, "cloud-init", "schema", "-c", ud)
	}
}

// The key pair is in Salt's formats and its halves belong together;
// openssl, which is not ours, reads both.
func TestMinionKeyFormats(t *testing.T) {
	k, err := saltkey.New(saltkey.Bits)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := pem.Decode([]byte(k.PrivatePEM))
	if pb == nil || pb.Type != "RSA PRIVATE KEY" {
		t.Fatalf("private key PEM type: %v", pb)
	}
	priv, err := x509.ParsePKCS1PrivateKey(pb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ub, _ := pem.Decode([]byte(k.PublicPEM))
	if ub == nil || ub.Type != "PUBLIC KEY" {
		t.Fatalf("public key PEM type: %v", ub)
	}
	pub, err := x509.ParsePKIXPublicKey(ub.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.PublicKey.Equal(pub.(*rsa.PublicKey)) || priv.N.BitLen() != 2048 {
		t.Error("public key does not belong to the private key, or not 2048 bits")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		return
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "minion.pem"), []byte(k.PrivatePEM), 0o600)
	os.WriteFile(filepath.Join(dir, "minion.pub"), []byte(k.PublicPEM), 0o644)
	run(t, "openssl", "rsa", "-in", filepath.Join(dir, "minion.pem"), "-check", "-noout")
	a, err := exec.Command("openssl", "rsa", "-in", filepath.Join(dir, "minion.pem"), "-pubout").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(a)) != strings.TrimSpace(k.PublicPEM) {
		t.Errorf("openssl derives public key\n%s\nwant\n%s", a, k.PublicPEM)
	}
}

func TestMACStableAndLocal(t *testing.T) {
	a, b := MACFor("kstest", "worker-0"), MACFor("kstest", "worker-0")
	if a != b || !strings.HasPrefix(a, "52:54:00:") || len(a) != 17 {
		t.Errorf("MAC %q / %q", a, b)
	}
	if MACFor("kstest", "worker-1") == a || MACFor("other", "worker-0") == a {
		t.Error("different nodes or clusters share a MAC")
	}
}
