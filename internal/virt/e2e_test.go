package virt

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/nodeimage"
)

// nodeImage builds (or finds in its cache) the node image: Debian 12 with
// syslinux, cloud-init and the salt-minion package of Salt from the
// package index. make e2e-vm names the cache, the venv's pip and Salt.
func nodeImage(t *testing.T) string {
	t.Helper()
	cache, pip := os.Getenv("KUBESALT_NODEIMAGE_CACHE"), os.Getenv("KUBESALT_PIP")
	if cache == "" || pip == "" {
		t.Skip("KUBESALT_NODEIMAGE_CACHE and KUBESALT_PIP are unset: run `make e2e-vm`")
	}
	saltext, _ := filepath.Abs("../../saltext")
	start := time.Now()
	path, built, err := nodeimage.Build(cache, nodeimage.Inputs{SaltVersion: os.Getenv("KUBESALT_SALT_VERSION"), Saltext: saltext, Pip: pip}, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node image %s (built: %v) in %s", path, built, time.Since(start).Round(time.Second))
	return path
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// saltMaster is a real salt-master in the sandbox's network namespace,
// listening on the node network's gateway, with the key directory
// kubesalt-virt pre-accepts the nodes' keys into.
type saltMaster struct {
	conf, pki string
	ns, bin   string
}

func startSaltMaster(t *testing.T, s *sandbox, addr string) *saltMaster {
	t.Helper()
	bin := os.Getenv("KUBESALT_SALT_BIN")
	if bin == "" {
		t.Skip("KUBESALT_SALT_BIN is unset: run `make e2e-vm` (the venv's Salt)")
	}
	bin, _ = filepath.Abs(bin)
	root := filepath.Join(s.Dir, "salt")
	m := &saltMaster{conf: filepath.Join(root, "conf"), pki: filepath.Join(root, "etc/salt/pki/master"), ns: s.NS, bin: bin}
	writeFiles(t, map[string]string{filepath.Join(m.conf, "master"): fmt.Sprintf("root_dir: %s\ninterface: %s\nuser: root\n", root, addr)})
	if err := os.MkdirAll(filepath.Join(m.pki, "minions"), 0o700); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(root, "master.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	// The sandbox's cleanup stops every process in its namespace, this one too.
	cmd := exec.Command("ip", "netns", "exec", s.NS, filepath.Join(bin, "salt-master"), "-c", m.conf, "-l", "info")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	return m
}

// salt runs a salt command against the master, waiting up to timeout
// seconds for the returns, and decodes its JSON.
func (m *saltMaster) salt(timeout int, args ...string) (map[string]json.RawMessage, error) {
	argv := append([]string{"netns", "exec", m.ns, filepath.Join(m.bin, "salt"), "-c", m.conf, "--out", "json", "--static", "--timeout", fmt.Sprint(timeout)}, args...)
	out, err := exec.Command("ip", argv...).Output()
	res := map[string]json.RawMessage{}
	if i := strings.Index(string(out), "{"); i >= 0 {
		if jerr := json.Unmarshal(out[i:], &res); jerr != nil {
			return nil, fmt.Errorf("%v: %s", jerr, out)
		}
	}
	return res, err
}

// TestE2EVMJoinsSaltMaster boots the node image in a domain exactly as
// kubesalt-virt defines it (no edit of its XML) under qemu TCG: the image's
// own boot loader starts it, cloud-init applies the seed (static IP,
// hostname, minion config and key), the salt-minion package starts, and
// the minion answers a real salt-master that holds its key accepted
// already, with the seed's grains. Then `node remove` takes the domain,
// its volumes and the key away. Opt-in (make e2e-vm): it builds an image
// from the package archives and boots it under software emulation.
func TestE2EVMJoinsSaltMaster(t *testing.T) {
	if os.Getenv("KUBESALT_E2E_VM") == "" {
		t.Skip("opt-in: run `make e2e-vm` (KUBESALT_E2E_VM=1)")
	}
	needRealLibvirt(t)
	need(t, "ping")
	image := nodeImage(t)

	s := startLibvirtd(t)
	h, err := Connect(s.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	addPool(t, h, s, "")
	run(t, "cp", "--sparse=always", image, filepath.Join(s.Pool, "base.qcow2"))
	pool, _ := h.conn.LookupStoragePoolByName("kstest")
	pool.Refresh(0)
	pool.Free()

	d := realDefinition(t, s, "")
	d.Libvirt.Roles["worker"] = cluster.Machine{VCPU: 1, MemoryMiB: 1024, DiskGiB: 5}
	if _, err := h.EnsureNetwork(d, Options{}); err != nil {
		t.Fatal(err)
	}
	defer removeNetwork(t, h, "ksreal")
	m := startSaltMaster(t, s, d.Libvirt.SaltMaster)

	start := time.Now()
	rep, err := h.EnsureNodes(d, nil, m.pki, Options{})
	if err != nil || rep.Failure != nil {
		t.Fatalf("%v %v\n%s", err, rep.Failure, s.logs())
	}
	removed := false
	defer func() {
		if !removed {
			h.RemoveNodes(d, []string{"worker-0"}, m.pki, false)
		}
	}()
	t.Logf("domain running %s after node ensure", time.Since(start).Round(time.Second))
	if _, err := os.Stat(filepath.Join(m.pki, "minions", "worker-0")); err != nil {
		t.Fatalf("the master does not hold worker-0's key accepted: %v", err)
	}

	console := s.daemon.SerialLog("worker-0")
	consoleTail := func() string { b, _ := os.ReadFile(console); return string(tail(b, 4000)) }
	wait := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s\nconsole:\n%s\nmaster:\n%s", what, limit, consoleTail(), fileTail(filepath.Join(s.Dir, "salt/master.out")))
			}
			time.Sleep(2 * time.Second)
		}
		t.Logf("%s %s after node ensure", what, time.Since(start).Round(time.Second))
	}
	wait("static IP 192.168.171.20 answers", 20*time.Minute, func() bool {
		return exec.Command("ip", "netns", "exec", s.NS, "ping", "-c", "1", "-W", "1", "192.168.171.20").Run() == nil
	})
	wait("minion worker-0 answers test.ping", 20*time.Minute, func() bool {
		res, _ := m.salt(10, "worker-0", "test.ping")
		return string(res["worker-0"]) == "true"
	})
	// An emulated CPU starts Python slowly: a minute for each answer.
	res, err := m.salt(60, "worker-0", "grains.item", "role", "cluster", "host", "saltversion")
	if err != nil {
		t.Fatal(err)
	}
	var grains struct {
		Role, Cluster, Host, Saltversion string
	}
	json.Unmarshal(res["worker-0"], &grains)
	if grains.Role != "worker" || grains.Cluster != "ksreal" || grains.Host != "worker-0" || grains.Saltversion != os.Getenv("KUBESALT_SALT_VERSION") {
		t.Errorf("worker-0's grains (the seed's role and cluster, its hostname, the image's Salt): %s", res["worker-0"])
	}
	// The extension was installed beside Salt: its modules are the minion's.
	res, _ = m.salt(60, "worker-0", "cmd.run", venvPip+" show saltext-kubesalt")
	if !strings.Contains(string(res["worker-0"]), "Name: saltext-kubesalt") {
		t.Errorf("saltext-kubesalt in the image's venv: %s", res["worker-0"])
	}

	if _, err := h.RemoveNodes(d, []string{"worker-0"}, m.pki, false); err != nil {
		t.Fatal(err)
	}
	removed = true
	if _, err := os.Stat(filepath.Join(m.pki, "minions", "worker-0")); !os.IsNotExist(err) {
		t.Errorf("worker-0's key is still accepted after node remove: %v", err)
	}
	left, _ := os.ReadDir(s.Pool)
	for _, e := range left {
		if strings.HasPrefix(e.Name(), "worker-0") {
			t.Errorf("node remove left volume %s", e.Name())
		}
	}
	if doms, _ := h.List(); len(doms) != 0 {
		t.Errorf("node remove left domains %v", doms)
	}
}

const venvPip = "/opt/saltstack/salt/bin/pip"

func fileTail(path string) string {
	b, _ := os.ReadFile(path)
	return string(tail(b, 3000))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
