package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kubesalt/kubesalt/internal/saltkey"
)

// PrivateDirs are bind-mounted per node inside each minion's own mount
// namespace: the formula writes the real paths of a node, and the lab's
// nodes, sharing one filesystem, do not see each other's files.
var PrivateDirs = []string{
	"/etc/kubernetes", "/var/lib/kubernetes", "/var/lib/kubelet", "/var/lib/kube-proxy",
	"/etc/etcd", "/var/lib/etcd", "/etc/cni", "/opt/cni", "/etc/containerd",
	"/var/lib/kubesalt", "/etc/iproute2/rt_protos.d", "/usr/local/bin", "/var/log/kubernetes",
	"/run/kubesalt", "/etc/sysctl.d",
	// containerd's and the kubelet's state, the pods' logs, IP leases and
	// network namespaces.
	"/var/lib/containerd", "/run/containerd", "/var/log/pods", "/var/log/containers",
	"/var/lib/cni", "/run/netns",
}

func (l *Lab) masterDir() string             { return filepath.Join(l.Dir, "master") }
func (l *Lab) masterPKI() string             { return filepath.Join(l.masterDir(), "etc/salt/pki/master") }
func (l *Lab) nodeDir(node string) string    { return filepath.Join(l.Dir, "nodes", node) }
func (l *Lab) minionConf(node string) string { return filepath.Join(l.nodeDir(node), "salt") }

func writeYAML(path string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// startDaemon starts argv in namespace ns, in a session of its own, with
// its output in log, and records its pid under name.
func (l *Lab) startDaemon(name, ns, log string, argv ...string) error {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	l.st.Pids[name] = cmd.Process.Pid
	go cmd.Wait() // reap it if it dies while this process lives
	return l.st.Save()
}

// startMinion starts node's salt-minion in its namespace, in a mount
// namespace of its own with the node's private directories, and in a UTS
// namespace of its own whose hostname is the node's name, as a machine
// has: every daemon the formula starts there inherits both (the API
// servers' identity leases and the leader leases name their node). The
// node's /etc/hosts adds its name, so resolving it stays local.
func (l *Lab) startMinion(n Node) error {
	root := filepath.Join(l.nodeDir(n.Name), "root")
	hosts, err := l.writeHosts(n)
	if err != nil {
		return err
	}
	binds := []string{fmt.Sprintf("hostname %q", n.Name), fmt.Sprintf("mount --bind %q /etc/hosts", hosts)}
	for _, d := range PrivateDirs {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			l.st.HostDirs = append(l.st.HostDirs, d)
		}
		src := filepath.Join(root, d)
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		binds = append(binds, fmt.Sprintf("mount --bind %q %q", src, d))
	}
	script := strings.Join(append(cgroupMounts(), binds...), " && ") + fmt.Sprintf(" && exec %q -c %q", filepath.Join(l.SaltBin, "salt-minion"), l.minionConf(n.Name))
	return l.startDaemon("minion/"+n.Name, l.NodeNS(n.Name), filepath.Join(l.nodeDir(n.Name), "minion.log"),
		"unshare", "--mount", "--uts", "--propagation", "private", "--", "sh", "-c", script)
}

// writeHosts writes node n's /etc/hosts: the host's, and n's name on its
// address.
func (l *Lab) writeHosts(n Node) (string, error) {
	base, err := os.ReadFile("/etc/hosts")
	if err != nil && !os.IsNotExist(err) {
		return "", err
	}
	if len(base) > 0 && base[len(base)-1] != '\n' {
		base = append(base, '\n')
	}
	path := filepath.Join(l.nodeDir(n.Name), "hosts")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(base, fmt.Sprintf("%s\t%s\n", n.IP, n.Name)...), 0o644)
}

// cgroupMounts mounts the host's cgroup hierarchies again: `ip netns exec`
// mounts a fresh /sys for the namespace, without /sys/fs/cgroup's mounts,
// and the kubelet and runc need them. Mounting a v1 hierarchy with the same
// options attaches the same hierarchy, so every node sees the host's tree.
func cgroupMounts() []string {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line) // source target fstype options
		if len(f) < 4 || !strings.HasPrefix(f[1], "/sys/fs/cgroup") {
			continue
		}
		switch f[2] {
		case "tmpfs", "cgroup", "cgroup2":
			out = append(out, fmt.Sprintf("mkdir -p %q && mount -t %s -o %s %s %q", f[1], f[2], f[3], f[0], f[1]))
		}
	}
	return out
}

// configureMinion writes node's minion config and key pair, and accepts
// the key on the master, so that the minion joins already accepted.
func (l *Lab) configureMinion(n Node, extra map[string]any) error {
	root, err := l.saltRoot(n.Name, l.minionConf(n.Name))
	if err != nil {
		return err
	}
	conf := map[string]any{
		"root_dir": root,
		"id":       n.Name,
		"master":   MasterIP.String(),
		"grains":   map[string]any{"kubernetes": map[string]any{"role": n.Role, "lab": l.st.ID}},
		// Quick retries: the lab's master may still be starting.
		"acceptance_wait_time": 2,
		"random_reauth_delay":  0,
	}
	for k, v := range extra {
		conf[k] = v
	}
	if err := writeYAML(filepath.Join(l.minionConf(n.Name), "minion"), conf); err != nil {
		return err
	}
	key, err := saltkey.New(saltkey.Bits)
	if err != nil {
		return err
	}
	pki := filepath.Join(l.minionConf(n.Name), "etc/salt/pki/minion")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pki, "minion.pem"), []byte(key.PrivatePEM), 0o400); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pki, "minion.pub"), []byte(key.PublicPEM), 0o644); err != nil {
		return err
	}
	return saltkey.Accept(l.masterPKI(), n.Name, key.PublicPEM)
}

// Salt runs the salt CLI in the master's namespace (it talks to the
// master on its interface address) and decodes its JSON.
func (l *Lab) Salt(timeout time.Duration, args ...string) (map[string]json.RawMessage, string, error) {
	argv := append([]string{filepath.Join(l.SaltBin, "salt"), "-c", l.masterDir(), "--out", "json", "--static", "--timeout", strconv.Itoa(int(timeout.Seconds()))}, args...)
	out, err := l.in(l.masterNS(), argv...)
	res := map[string]json.RawMessage{}
	if i := strings.Index(out, "{"); i >= 0 {
		if jerr := json.Unmarshal([]byte(out[i:]), &res); jerr != nil && err == nil {
			err = fmt.Errorf("salt %s: output is not JSON: %v\n%s", strings.Join(args, " "), jerr, out)
		}
	}
	return res, out, err
}

// SaltRun runs salt-run in the master's namespace and returns its
// standard output (its JSON); standard error, where Salt logs, goes to the
// master's directory.
func (l *Lab) SaltRun(args ...string) (string, error) {
	argv := append([]string{"netns", "exec", l.masterNS(), filepath.Join(l.SaltBin, "salt-run"), "-c", l.masterDir(), "--out", "json"}, args...)
	cmd := exec.Command("ip", argv...)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if f, err := os.OpenFile(filepath.Join(l.masterDir(), "salt-run.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		defer f.Close()
		cmd.Stderr = f
	}
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("salt-run %s: %v (its log: %s)", strings.Join(args, " "), err, filepath.Join(l.masterDir(), "salt-run.log"))
	}
	return stdout.String(), err
}

// waitMinions waits until every named minion answers test.ping: every
// half second, as the benchmark takes this wait as the floor of a
// bootstrap (all minions started and answering; startMinions first waits
// for their start events, which costs nothing).
func (l *Lab) waitMinions(names []string, limit time.Duration) error {
	err := poll(limit, 500*time.Millisecond, func() (string, error) {
		res, _, _ := l.Salt(3*time.Second, "-L", strings.Join(names, ","), "test.ping")
		var missing []string
		for _, n := range names {
			if string(res[n]) != "true" {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return "no answer from minions " + strings.Join(missing, ", "), nil
		}
		return "", nil
	})
	if err != nil {
		return fmt.Errorf("%w; see %s/nodes/<node>/minion.log", err, l.Dir)
	}
	return nil
}

// waitStartEvents waits until every named minion has sent the master its
// start event (salt/minion/<id>/start), asking nothing of Salt meanwhile.
func (l *Lab) waitStartEvents(rec *eventRecorder, names []string, limit time.Duration) error {
	err := poll(limit, 250*time.Millisecond, func() (string, error) {
		var missing []string
		for _, n := range names {
			if !rec.seen("salt/minion/" + n + "/start") {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return "no start event from minions " + strings.Join(missing, ", "), nil
		}
		return "", nil
	})
	if err != nil {
		return fmt.Errorf("%w; see %s/nodes/<node>/minion.log", err, l.Dir)
	}
	return nil
}

// killNamespace ends every process in namespace ns: TERM, then KILL.
func killNamespace(ns string) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, sig)
			}
		}
		poll(5*time.Second, 100*time.Millisecond, func() (string, error) {
			return strings.TrimSpace(mustOut("ip", "netns", "pids", ns)), nil
		})
	}
}

func mustOut(name string, args ...string) string {
	out, _ := exec.Command(name, args...).Output()
	return string(out)
}

// saltRoot is the root_dir a daemon's config names: a short symlink to
// dir. Salt puts its unix sockets under root_dir, a socket's path may not
// pass 108 bytes, and the lab's directory can be deep.
func (l *Lab) saltRoot(name, dir string) (string, error) {
	link := filepath.Join(l.linkDir(), name)
	if err := os.MkdirAll(l.linkDir(), 0o700); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	os.Remove(link)
	return link, os.Symlink(dir, link)
}

func (l *Lab) linkDir() string { return filepath.Join("/run/ksl", l.st.ID) }

// keepInheritedFDs marks every descriptor this process inherited beyond
// 0-2 close-on-exec, so the lab's daemons do not keep them: a lock that
// `flock FILE make lab` holds on an inherited descriptor would otherwise
// stay held by the lab's daemons after make exits, and `flock FILE make
// lab-down` would wait for itself. Go opens its own descriptors
// close-on-exec already.
func keepInheritedFDs() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
