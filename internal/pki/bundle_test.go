package pki

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestBundles(t *testing.T) {
	dir := t.TempDir()
	d := definition(t, 3, 2, "")
	issue(t, d, Options{Dir: dir})

	// Every private key in the directory, by where it is.
	keys := map[string]string{}
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "-key.pem") {
			rel, _ := filepath.Rel(dir, p)
			keys[rel] = string(readFileT(t, dir, rel))
		}
		return nil
	})
	caKey := keys[caKeyFile]

	workerFiles := []string{"ca.pem", "kube-proxy.kubeconfig", "kubelet-key.pem", "kubelet.kubeconfig", "kubelet.pem"}
	for _, node := range []string{"worker-0", "worker-1", "master-0", "master-2"} {
		b, err := MakeBundle(d, dir, node)
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(b.Files))
		for name, f := range b.Files {
			names = append(names, name)
			// No bundle holds the CA key, in any file.
			if strings.Contains(f.Contents, caKey) {
				t.Errorf("%s: %s holds the CA key", node, name)
			}
			wantMode := "0644"
			if strings.HasSuffix(name, "-key.pem") || strings.HasSuffix(name, ".kubeconfig") || name == encryptionFile {
				wantMode = "0600"
			}
			if f.Mode != wantMode {
				t.Errorf("%s: %s mode %s, want %s", node, name, f.Mode, wantMode)
			}
		}
		sort.Strings(names)
		own := nodeName(node, whatKubelet)
		if b.Files["kubelet-key.pem"].Contents != keys[keyPath(own)] || b.Files["kubelet.pem"].Contents != string(readFileT(t, dir, certPath(own))) {
			t.Errorf("%s: kubelet material is not its own", node)
		}
		if b.Role == "worker" {
			if !slices.Equal(names, workerFiles) {
				t.Errorf("%s files %v, want %v", node, names, workerFiles)
			}
			// A worker's bundle holds no key other than its own kubelet's
			// (kube-proxy's identity is shared by every node).
			for rel, key := range keys {
				if rel == keyPath(own) || rel == keyPath(nameProxy) {
					continue
				}
				for name, f := range b.Files {
					if strings.Contains(f.Contents, key) || strings.Contains(f.Contents, b64Of(key)) {
						t.Errorf("%s: %s holds the key %s", node, name, rel)
					}
				}
			}
			continue
		}
		for _, want := range []string{"kube-apiserver-key.pem", "kube-apiserver-etcd-client-key.pem", "etcd-server-key.pem", "etcd-peer.pem",
			"service-account-key.pem", "encryption-config.yaml", "admin.kubeconfig", "kube-scheduler.kubeconfig"} {
			if _, ok := b.Files[want]; !ok {
				t.Errorf("%s lacks %s", node, want)
			}
		}
		if b.Files["etcd-peer-key.pem"].Contents != keys[keyPath(nodeName(node, whatEtcdPeer))] {
			t.Errorf("%s: etcd peer key is not its own", node)
		}
		// A master has no other node's key either.
		for rel, key := range keys {
			if strings.HasPrefix(rel, "nodes/") && !strings.HasPrefix(rel, "nodes/"+node+"/") {
				for name, f := range b.Files {
					if strings.Contains(f.Contents, key) || strings.Contains(f.Contents, b64Of(key)) {
						t.Errorf("%s: %s holds %s", node, name, rel)
					}
				}
			}
		}
	}

	if _, err := MakeBundle(d, dir, "worker-9"); err == nil || !strings.Contains(err.Error(), `--node "worker-9": no such node`) {
		t.Errorf("unknown node: %v", err)
	}
	os.Remove(filepath.Join(dir, "nodes/worker-1/kubelet-key.pem"))
	_, err := MakeBundle(d, dir, "worker-1")
	var se *StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "nodes/worker-1/kubelet-key.pem is missing; run `kubesalt pki issue` first") {
		t.Errorf("missing key: %v", err)
	}
}

// b64Of is s as a kubeconfig embeds it.
func b64Of(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	d := definition(t, 1, 1, apiVIP)
	issue(t, d, Options{Dir: dir})
	now := time.Now()
	rep, err := Check(dir, 720*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Certificates) != 13 || rep.Certificates[0].Name != "ca" || rep.Failing() != 0 {
		t.Fatalf("report: %+v", rep)
	}
	byName := map[string]CertificateStatus{}
	for _, c := range rep.Certificates {
		byName[c.Name] = c
	}
	w := byName["worker-0/kubelet"]
	if w.Subject != "CN=system:node:worker-0,O=system:nodes" || !slices.Equal(w.SANs, []string{"worker-0", "192.168.171.1"}) || w.DaysLeft != 364 {
		t.Errorf("worker-0: %+v", w)
	}
	if api := byName["kube-apiserver"]; !slices.Contains(api.SANs, "10.32.0.1") || !slices.Contains(api.SANs, "k8s-api.example.org") {
		t.Errorf("kube-apiserver: %+v", api)
	}

	resign(t, dir, "admin", now.Add(5*24*time.Hour))
	resign(t, dir, "kube-proxy", now.Add(-48*time.Hour+time.Minute))
	other := t.TempDir()
	issue(t, d, Options{Dir: other})
	copyFile(t, filepath.Join(other, "kube-scheduler.pem"), filepath.Join(dir, "kube-scheduler.pem"))
	os.WriteFile(filepath.Join(dir, "nodes/worker-0/kubelet.pem"), []byte("junk"), 0o644)

	rep, err = Check(dir, 720*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	byName = map[string]CertificateStatus{}
	for _, c := range rep.Certificates {
		byName[c.Name] = c
	}
	if c := byName["admin"]; c.Problem != "expires within 720h" || c.DaysLeft != 4 {
		t.Errorf("admin: %+v", c)
	}
	if c := byName["kube-proxy"]; c.Problem != "expired" || c.DaysLeft != -2 {
		t.Errorf("kube-proxy: %+v", c)
	}
	if c := byName["kube-scheduler"]; c.Problem != "not issued by this directory's CA" {
		t.Errorf("kube-scheduler: %+v", c)
	}
	if rep.Failing() != 4 || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "nodes/worker-0/kubelet.pem: not a PEM certificate") {
		t.Errorf("failing %d, problems %v", rep.Failing(), rep.Problems)
	}
	if rep, _ := Check(dir, time.Hour, now); rep.Failing() != 3 {
		t.Errorf("1h window: failing %d", rep.Failing())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, readFileT(t, filepath.Dir(from), filepath.Base(from)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKubeconfigRendering: the fast path gives exactly what yaml.v3 gives
// for the whole struct, and it reads back.
func TestKubeconfigRendering(t *testing.T) {
	dir := t.TempDir()
	issue(t, definition(t, 1, 0, ""), Options{Dir: dir})
	for _, name := range []string{"admin", "master-0/kubelet"} {
		ca, cert, key := readFileT(t, dir, caCertFile), readFileT(t, dir, certPath(name)), readFileT(t, dir, keyPath(name))
		fast := renderKubeconfig("c", "https://[fd00::1]:6443", "system:node:x", ca, cert, key)
		if full := encodeKubeconfig("c", "https://[fd00::1]:6443", "system:node:x", ca, cert, key); string(fast) != string(full) {
			t.Errorf("fast rendering differs:\n%s\n---\n%s", fast, full)
		}
		kc, ok := parseKubeconfig(fast)
		if !ok || string(kc.Users[0].User.ClientKeyData) != string(key) || kc.Clusters[0].Cluster.Server != "https://[fd00::1]:6443" {
			t.Errorf("does not read back: %v", kc)
		}
	}
}
