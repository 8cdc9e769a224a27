package pki

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/testenv"
)

// TestEtcdClusterOnIssuedCertificates starts a real 3-member etcd cluster
// (Debian's etcd-server) with mutual TLS on the issued certificates, each
// member in its own network namespace with its master's IP, fed from its
// master's bundle. etcdctl with the API server's etcd client certificate
// finds every member healthy and sees writes replicate; a client
// certificate from another CA is refused.
func TestEtcdClusterOnIssuedCertificates(t *testing.T) {
	testenv.Root(t, "run etcd in network namespaces")
	testenv.Tools(t, "apt-get install etcd-server etcd-client iproute2", "etcd", "etcdctl", "ip")
	d := definition(t, 3, 1, "")
	dir := t.TempDir()
	issue(t, d, Options{Dir: dir})
	masters := d.Masters()

	// One namespace per member, joined by a bridge in a hub namespace.
	prefix := fmt.Sprintf("kspki%d", os.Getpid()%100000)
	hub := prefix + "-hub"
	ipRun(t, "netns", "add", hub)
	t.Cleanup(func() { ipQuiet("netns", "del", hub) })
	ipRun(t, "-n", hub, "link", "add", "br0", "type", "bridge")
	ipRun(t, "-n", hub, "link", "set", "br0", "up")
	var initial, endpoints, logs []string
	for i, m := range masters {
		ns := fmt.Sprintf("%s-m%d", prefix, i)
		ipRun(t, "netns", "add", ns)
		t.Cleanup(func() { ipQuiet("netns", "del", ns) })
		veth := fmt.Sprintf("veth%d", i)
		ipRun(t, "-n", hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		ipRun(t, "-n", hub, "link", "set", veth, "master", "br0", "up")
		ipRun(t, "-n", ns, "addr", "add", m.IPs[0].String()+"/24", "dev", "eth0")
		ipRun(t, "-n", ns, "link", "set", "eth0", "up")
		ipRun(t, "-n", ns, "link", "set", "lo", "up")
		initial = append(initial, fmt.Sprintf("%s=https://%s:2380", m.Name, m.IPs[0]))
		endpoints = append(endpoints, fmt.Sprintf("https://%s:2379", m.IPs[0]))
	}

	for i, m := range masters {
		// Each member gets exactly its master's bundle.
		b, err := MakeBundle(d, dir, m.Name)
		if err != nil {
			t.Fatal(err)
		}
		home := t.TempDir()
		for name, f := range b.Files {
			if err := os.WriteFile(filepath.Join(home, name), []byte(f.Contents), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		ip := m.IPs[0].String()
		p := func(name string) string { return filepath.Join(home, name) }
		log, err := os.Create(p("etcd.log"))
		logs = append(logs, log.Name())
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", fmt.Sprintf("%s-m%d", prefix, i), "etcd",
			"--name", m.Name, "--data-dir", p("data"), "--logger", "zap",
			"--listen-client-urls", "https://"+ip+":2379", "--advertise-client-urls", "https://"+ip+":2379",
			"--listen-peer-urls", "https://"+ip+":2380", "--initial-advertise-peer-urls", "https://"+ip+":2380",
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", prefix,
			"--cert-file", p("etcd-server.pem"), "--key-file", p("etcd-server-key.pem"),
			"--trusted-ca-file", p("ca.pem"), "--client-cert-auth",
			"--peer-cert-file", p("etcd-peer.pem"), "--peer-key-file", p("etcd-peer-key.pem"),
			"--peer-trusted-ca-file", p("ca.pem"), "--peer-client-cert-auth")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// `ip netns exec` execs etcd in place: the process is etcd itself.
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			log.Close()
			if t.Failed() {
				out, _ := os.ReadFile(log.Name())
				t.Logf("%s log (tail):\n%s", m.Name, tail(string(out), 3000))
			}
		})
	}

	ns0 := prefix + "-m0"
	etcdctl := func(ctx context.Context, certDir string, args ...string) ([]byte, error) {
		full := append([]string{"netns", "exec", ns0, "etcdctl",
			"--endpoints", strings.Join(endpoints, ","),
			"--cacert", filepath.Join(dir, caCertFile),
			"--cert", filepath.Join(certDir, certPath(nameAPIEtcdClient)),
			"--key", filepath.Join(certDir, keyPath(nameAPIEtcdClient)),
			"--dial-timeout", "2s", "--command-timeout", "3s"}, args...)
		return exec.CommandContext(ctx, "ip", full...).CombinedOutput()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var health []struct {
		Endpoint string `json:"endpoint"`
		Health   bool   `json:"health"`
		Error    string `json:"error"`
	}
	var out []byte
	for {
		var err error
		out, err = etcdctl(ctx, dir, "endpoint", "health", "-w", "json")
		health = nil
		if err == nil && json.Unmarshal(out, &health) == nil && len(health) == 3 && health[0].Health && health[1].Health && health[2].Health {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("etcd cluster not healthy within 60s: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("endpoint health: %s", out)

	out, err := etcdctl(ctx, dir, "member", "list", "-w", "json")
	var members struct{ Members []struct{ Name string } }
	if err != nil || json.Unmarshal(out, &members) != nil || len(members.Members) != 3 {
		t.Errorf("member list: %v\n%s", err, out)
	}
	// A write through one member is read back through another.
	put := exec.CommandContext(ctx, "ip", "netns", "exec", ns0, "etcdctl", "--endpoints", endpoints[0],
		"--cacert", filepath.Join(dir, caCertFile), "--cert", filepath.Join(dir, certPath(nameAPIEtcdClient)),
		"--key", filepath.Join(dir, keyPath(nameAPIEtcdClient)), "put", "/kubesalt/test", "replicated")
	if out, err := put.CombinedOutput(); err != nil {
		t.Fatalf("put: %v\n%s", err, out)
	}
	get := exec.CommandContext(ctx, "ip", "netns", "exec", ns0, "etcdctl", "--endpoints", endpoints[2],
		"--cacert", filepath.Join(dir, caCertFile), "--cert", filepath.Join(dir, certPath(nameAPIEtcdClient)),
		"--key", filepath.Join(dir, keyPath(nameAPIEtcdClient)), "get", "/kubesalt/test", "--print-value-only", "--consistency", "l")
	if out, err := get.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "replicated" {
		t.Errorf("get from master-2: %v %q", err, out)
	}

	// A client certificate from another CA is refused by every member.
	other := t.TempDir()
	issue(t, d, Options{Dir: other})
	out, err = etcdctl(ctx, other, "endpoint", "health", "-w", "json")
	if err == nil {
		t.Fatalf("a foreign client certificate was accepted:\n%s", out)
	}
	for _, ep := range endpoints {
		if !strings.Contains(string(out), `"endpoint":"`+ep+`","health":false`) {
			t.Errorf("%s not refused:\n%s", ep, out)
		}
	}
	// Refused for the certificate: every member logs the rejected
	// handshake, and the right certificate still gets a healthy cluster.
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		if !strings.Contains(string(data), "rejected connection") || !strings.Contains(string(data), "certificate signed by unknown authority") {
			t.Errorf("%s does not log the rejected foreign certificate:\n%s", l, tail(string(data), 2000))
		}
	}
	if out, err := etcdctl(ctx, dir, "endpoint", "health"); err != nil {
		t.Errorf("cluster unhealthy after the refusal: %v\n%s", err, out)
	}
	t.Logf("foreign client certificate: %s", tail(string(out), 600))
}

func ipRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func ipQuiet(args ...string) { _ = exec.Command("ip", args...).Run() }

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
