// Package libvirtd runs a private libvirtd (with virtlogd) inside a network
// namespace and a mount namespace of its own: its configuration, state,
// socket, bridges and firewall rules stay in a directory and a namespace
// that the caller made, never the host's. Debian's libvirt-daemon without
// systemd: root runs the guests, no cgroups or security drivers (a
// container has neither), virtlogd keeps the serial logs.
package libvirtd

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

//go:embed sandbox.sh
var script []byte

// Daemon is one private libvirtd's directory.
type Daemon struct{ Dir string }

// Prepare writes the daemon's configuration and start script under dir.
func Prepare(dir string) (Daemon, error) {
	d := Daemon{Dir: dir}
	for _, sub := range []string{"sock", "images", "etc", "var/lib/libvirt", "var/log/libvirt/qemu", "var/cache/libvirt"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return d, err
		}
	}
	files := map[string]string{
		"etc/libvirtd.conf": fmt.Sprintf(`unix_sock_dir = "%s"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "2:file:/var/log/libvirt/libvirtd.log"
`, filepath.Join(dir, "sock")),
		"etc/virtlogd.conf": "log_outputs = \"2:file:/var/log/libvirt/virtlogd.log\"\n",
		"etc/qemu.conf": `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "logd"
`,
		"sandbox.sh": string(script),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return d, err
		}
	}
	return d, nil
}

// URI is the daemon's connection URI (its socket in Dir).
func (d Daemon) URI() string {
	return "qemu+unix:///system?socket=" + filepath.Join(d.Dir, "sock", "libvirt-sock")
}

// Pool is a directory for a storage pool of the daemon's volumes.
func (d Daemon) Pool() string { return filepath.Join(d.Dir, "images") }

// SerialLog is where a domain's serial console is logged.
func (d Daemon) SerialLog(domain string) string {
	return filepath.Join(d.Dir, "var/log/libvirt/qemu", domain+"-serial.log")
}

// Argv runs the daemons in a private mount namespace, to be run inside
// the network namespace they serve (ip netns exec); it stays in the
// foreground: it becomes libvirtd.
func (d Daemon) Argv() []string {
	return []string{"unshare", "-m", "--propagation", "private", "sh", filepath.Join(d.Dir, "sandbox.sh"), d.Dir}
}

// Logs is the tail of the daemons' output and logs, for error messages.
func (d Daemon) Logs() string {
	var b strings.Builder
	for _, f := range []string{"sandbox.out", "var/log/libvirt/libvirtd.log", "var/log/libvirt/virtlogd.log"} {
		c, _ := os.ReadFile(filepath.Join(d.Dir, f))
		if len(c) > 4000 {
			c = c[len(c)-4000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", f, c)
	}
	return b.String()
}
