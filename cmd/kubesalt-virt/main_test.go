package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (map[string]any, int) {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir()) // the hypervisor lock file goes there
	var out, errb bytes.Buffer
	code := run(&streams{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb}, args)
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: stdout is not one JSON object: %q (stderr %q)", args, out.String(), errb.String())
	}
	return res, code
}

func TestNetworkEnsureOnTestDriver(t *testing.T) {
	def, err := os.ReadFile("../../internal/virt/testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, code := runCLI(t, string(def), "network", "ensure", "--definition", "-", "--test")
	if code != 0 || res["result"] != nil || !strings.Contains(res["comment"].(string), "would be defined") {
		t.Errorf("test mode: %d %v", code, res)
	}
	res, code = runCLI(t, string(def), "network", "ensure", "--definition", "-")
	if code != 0 || res["result"] != true || res["changes"].(map[string]any)["network"] == nil {
		t.Errorf("ensure: %d %v", code, res)
	}
	res, code = runCLI(t, "", "list", "--connect", "test:///default")
	if code != 0 || res["data"].(map[string]any)["domains"] == nil {
		t.Errorf("list: %d %v", code, res)
	}
}

func TestExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("kubernetes:\n  nodes: {a: {role: worker, ip: 10.0.0.1}}\n  network: {node_cidr: 10.0.0.0/24, cluster_cidr: 10.200.0.0/16, service_cidr: 10.32.0.0/24}\n  libvirt: {base_image: x, network: {forward: magic}}\n"), 0o600)
	res, code := runCLI(t, "", "node", "ensure", "--definition", bad)
	if code != 2 || res["result"] != false || !strings.Contains(res["comment"].(string), "kubernetes:libvirt:network:forward") {
		t.Errorf("bad input: %d %v", code, res)
	}
	res, code = runCLI(t, "", "node", "ensure", "--definition", "../../internal/virt/testdata/cluster.yaml", "--connect", "qemu+unix:///system?socket=/nonexistent")
	if code != 1 || !strings.Contains(res["comment"].(string), "cannot connect to libvirt at qemu+unix:///system?socket=/nonexistent") {
		t.Errorf("unreachable: %d %v", code, res)
	}
	res, code = runCLI(t, "", "node", "remove", "--definition", "../../internal/virt/testdata/cluster.yaml")
	if code != 2 || !strings.Contains(res["comment"].(string), "--node") {
		t.Errorf("remove without --node: %d %v", code, res)
	}
}

// Only kubesalt-virt may link libvirt: the minions' `kubesalt` binary is
// static and cgo-free.
func TestKubesaltDoesNotLinkLibvirt(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/kubesalt/kubesalt/cmd/kubesalt").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "libvirt.org/") || dep == "github.com/kubesalt/kubesalt/internal/virt" {
			t.Errorf("cmd/kubesalt depends on %s; keep libvirt in cmd/kubesalt-virt", dep)
		}
	}
}

// A group's --help lists its commands on stdout (exit 0); the group alone
// prints its usage on stderr (exit 2).
func TestGroupHelp(t *testing.T) {
	for g, want := range map[string][]string{
		"network": {"ensure", "define, autostart and start the node network"},
		"node":    {"ensure", "remove", "destroy a node's VM"},
	} {
		var out, errb bytes.Buffer
		if code := run(&streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}, []string{g, "--help"}); code != 0 || errb.Len() > 0 {
			t.Errorf("%s --help: exit %d, stderr %q", g, code, errb.String())
		}
		for _, w := range append(want, "usage: kubesalt-virt "+g+" <command>") {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s --help lacks %q: %s", g, w, out.String())
			}
		}
		if strings.Contains(out.String(), "list the domains") {
			t.Errorf("%s --help lists another group's command: %s", g, out.String())
		}
		out.Reset()
		errb.Reset()
		if code := run(&streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}, []string{g}); code != 2 || out.Len() > 0 || !strings.Contains(errb.String(), "usage: kubesalt-virt "+g+" <command>") {
			t.Errorf("%s alone: exit %d, stdout %q, stderr %q", g, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run(&streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}, []string{"node", "nosuch"}); code != 2 || !strings.Contains(errb.String(), `unknown command "node nosuch"`) {
		t.Errorf("node nosuch: exit %d, stderr %q", code, errb.String())
	}
}
