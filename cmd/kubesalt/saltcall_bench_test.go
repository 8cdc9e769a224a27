package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/nstest"
)

// saltCall finds salt-call in the venv `make venv` builds (or
// $KUBESALT_SALT_CALL).
func saltCall(b *testing.B) string {
	if p := os.Getenv("KUBESALT_SALT_CALL"); p != "" {
		return p
	}
	p, _ := filepath.Abs("../../.venv/bin/salt-call")
	if _, err := os.Stat(p); err != nil {
		b.Skipf("salt-call not found at %s: run `make venv` (make bench does) or set KUBESALT_SALT_CALL", p)
	}
	return p
}

// BenchmarkSaltCallOverhead measures what Salt adds to one call: a no-op
// sync of 1,000 routes by `salt-call --local kubesalt_net.routes_sync`
// beside the same sync by the binary run directly, and salt-call running
// nothing (test.true) for Salt's own start-up. binary-share-% is the
// binary's part of the salt-call; the rest is Salt, not kubesalt's Python.
func BenchmarkSaltCallOverhead(b *testing.B) {
	nstest.RequireRoot(b)
	saltCallBin := saltCall(b)
	binDir := b.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "kubesalt"), ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	const n = 1000
	_, ns := benchLab(b)
	nodes, _ := benchNodes(n)
	dir := b.TempDir()
	list, _ := json.Marshal(map[string]any{"nodes": nodes})
	listFile := filepath.Join(dir, "nodes.json")
	if err := os.WriteFile(listFile, list, 0o600); err != nil {
		b.Fatal(err)
	}
	conf := filepath.Join(dir, "salt")
	os.MkdirAll(conf, 0o700)
	minion := "id: bench\nfile_client: local\nroot_dir: " + filepath.Join(dir, "root") + "\nkubesalt.bin_dir: " + binDir + "\n"
	if err := os.WriteFile(filepath.Join(conf, "minion"), []byte(minion), 0o600); err != nil {
		b.Fatal(err)
	}
	direct := func() *exec.Cmd {
		return exec.Command(filepath.Join(binDir, "kubesalt"), "routes", "sync", "--netns", ns, "--self", "self", "--nodes", listFile)
	}
	viaSalt := func(fun string, args ...string) *exec.Cmd {
		return exec.Command(saltCallBin, append([]string{"--local", "-c", conf, "--out", "json", "--log-level", "quiet", fun}, args...)...)
	}
	sync := func() *exec.Cmd {
		return viaSalt("kubesalt_net.routes_sync", "nodes="+listFile, "self_name=self", "netns="+ns)
	}
	// Fill the table, then check both paths see a no-op.
	timed(b, direct())
	out, err := sync().Output()
	if err != nil || !strings.Contains(string(out), `"changes": {}`) || !strings.Contains(string(out), `"desired": 1000`) {
		b.Fatalf("salt-call routes_sync is not a no-op of 1000 routes: %v\n%.1500s", err, out)
	}

	var tDirect, tSalt, tBare time.Duration
	for i := 0; i < b.N; i++ {
		d, _ := timed(b, direct())
		tDirect += d
		d, _ = timed(b, sync())
		tSalt += d
		d, _ = timed(b, viaSalt("test.true"))
		tBare += d
	}
	k := time.Duration(b.N)
	tDirect, tSalt, tBare = tDirect/k, tSalt/k, tBare/k
	b.ReportMetric(ms(tDirect), "binary-ms")
	b.ReportMetric(ms(tSalt), "salt-call-ms")
	b.ReportMetric(ms(tBare), "salt-call-test.true-ms")
	b.ReportMetric(100*float64(tDirect)/float64(tSalt), "binary-share-%")
	b.ReportMetric(float64(tSalt)/float64(tDirect), "salt-call/binary")
	// What the extension adds on top of Salt's own start-up and the binary.
	b.ReportMetric(ms(tSalt-tBare-tDirect), "extension-ms")
}
