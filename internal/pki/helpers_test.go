package pki

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// definition builds a cluster of masters and workers on 192.168.170.0/24;
// extra is YAML added under kubernetes: (api, pki sections).
func definition(t testing.TB, masters, workers int, extra string) *cluster.Definition {
	t.Helper()
	return load(t, definitionYAML(masters, workers, extra))
}

func definitionYAML(masters, workers int, extra string) string {
	var b strings.Builder
	b.WriteString("kubernetes:\n  cluster_name: testcluster\n  network:\n    node_cidr: 192.168.0.0/16\n    cluster_cidr: 10.200.0.0/16\n    service_cidr: 10.32.0.0/24\n")
	b.WriteString(extra)
	b.WriteString("  nodes:\n")
	for i := 0; i < masters; i++ {
		fmt.Fprintf(&b, "    master-%d: {role: master, ip: 192.168.170.%d}\n", i, 10+i)
	}
	for i := 0; i < workers; i++ {
		fmt.Fprintf(&b, "    worker-%d: {role: worker, ip: 192.168.%d.%d}\n", i, 171+i/250, 1+i%250)
	}
	return b.String()
}

func load(t testing.TB, src string) *cluster.Definition {
	t.Helper()
	d, err := cluster.Load([]byte(src))
	if err != nil {
		t.Fatalf("definition: %v\n%s", err, src)
	}
	return d
}

func issue(t testing.TB, d *cluster.Definition, o Options) *Result {
	t.Helper()
	res, err := Issue(d, o)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return res
}

func readCert(t testing.TB, dir, name string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, certPath(name)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCertPEM(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// snapshot is every file under dir with its content and mode.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			out[rel+"/"] = info.Mode().Perm().String()
			return nil
		}
		data, err := os.ReadFile(p)
		out[rel] = info.Mode().Perm().String() + " " + string(data)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// changedFiles lists files that differ between two snapshots.
func changedFiles(a, b map[string]string) []string {
	var out []string
	for k, v := range b {
		if a[k] != v {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k+" (removed)")
		}
	}
	return out
}

func wantMap(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d entries, want %d:\n got  %v\n want %v", what, len(got), len(want), got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s[%q] = %q, want %q (all: %v)", what, k, got[k], v, got)
		}
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
