package main

import (
	"encoding/json"
	"fmt"
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
// beside the same sync by the binary run directly, salt-call running
// nothing (test.true) for Salt's own start-up, and the module called in a
// Salt that is already loaded (as in a running minion). binary-share-% is
// the binary's part of the salt-call (the rest is Salt's start-up, not
// kubesalt's Python); binary-share-in-loaded-salt-% its part of a call in a
// running Salt.
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

	// The module inside an already loaded Salt (a running minion's
	// case): one process calls it k times; the difference between k=11
	// and k=1 is ten calls without Salt's start-up.
	python := filepath.Join(filepath.Dir(saltCallBin), "python")
	script := `import sys, salt.config, salt.client
opts = salt.config.minion_config(sys.argv[2])
caller = salt.client.Caller(mopts=opts)
for _ in range(int(sys.argv[1])):
    r = caller.cmd("kubesalt_net.routes_sync", nodes=sys.argv[3], self_name="self", netns=sys.argv[4])
    assert r["changes"] == {} and r["data"]["desired"] == 1000, r["comment"]
`
	loaded := func(k int) *exec.Cmd {
		return exec.Command(python, "-c", script, fmt.Sprint(k), filepath.Join(conf, "minion"), listFile, ns)
	}

	var tDirect, tSalt, tBare, tLoaded time.Duration
	for i := 0; i < b.N; i++ {
		d, _ := timed(b, direct())
		tDirect += d
		d, _ = timed(b, sync())
		tSalt += d
		d, _ = timed(b, viaSalt("test.true"))
		tBare += d
		d1, _ := timed(b, loaded(1))
		d11, _ := timed(b, loaded(11))
		tLoaded += (d11 - d1) / 10
	}
	k := time.Duration(b.N)
	tDirect, tSalt, tBare, tLoaded = tDirect/k, tSalt/k, tBare/k, tLoaded/k
	b.ReportMetric(ms(tDirect), "binary-ms")
	b.ReportMetric(ms(tSalt), "salt-call-ms")
	b.ReportMetric(ms(tBare), "salt-call-test.true-ms")
	b.ReportMetric(100*float64(tDirect)/float64(tSalt), "binary-share-%")
	b.ReportMetric(float64(tSalt)/float64(tDirect), "salt-call/binary")
	b.ReportMetric(ms(tLoaded), "module-in-loaded-salt-ms")
	b.ReportMetric(100*float64(tDirect)/float64(tLoaded), "binary-share-in-loaded-salt-%")
	// What the extension's Python adds to the binary (noise can make it
	// slightly negative).
	b.ReportMetric(ms(tLoaded-tDirect), "extension-ms")
}
