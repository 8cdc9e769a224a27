package main

import (
	"io"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/lab"
)

func TestParseArgs(t *testing.T) {
	t.Setenv("KUBESALT_LAB_K8S_VERSION", "")
	ginkgo := lab.ConformanceOptions{Nodes: 4}
	for _, c := range []struct {
		argv []string
		want args
	}{
		// The Makefile's order: flags first.
		{[]string{"--dir", ".lab", "--salt-bin", ".venv/bin", "up", "--nodes", "4", "--k8s", "--mode", "controller"},
			args{command: "up", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 4, vms: 1, role: lab.RoleWorker, options: lab.Options{K8S: true, Mode: lab.ModeController, K8SVersion: lab.DefaultK8SVersion}, conformance: ginkgo}},
		{[]string{"up", "--k8s", "--k8s-version", "v1.35.4"},
			args{command: "up", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 6, vms: 1, role: lab.RoleWorker, options: lab.Options{K8S: true, Mode: lab.ModePlanned, K8SVersion: "v1.35.4"}, conformance: ginkgo}},
		{[]string{"remove-node", "--node", "worker-3"},
			args{command: "remove-node", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 6, vms: 1, node: "worker-3", role: lab.RoleWorker, options: lab.Options{Mode: lab.ModePlanned, K8SVersion: lab.DefaultK8SVersion}, conformance: ginkgo}},
		{[]string{"down"}, args{command: "down", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 6, vms: 1, role: lab.RoleWorker, options: lab.Options{Mode: lab.ModePlanned, K8SVersion: lab.DefaultK8SVersion}, conformance: ginkgo}},
		{[]string{"conformance", "--focus", "DNS", "--serial", "--ginkgo-nodes", "2"}, args{command: "conformance", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 6, vms: 1, role: lab.RoleWorker, options: lab.Options{Mode: lab.ModePlanned, K8SVersion: lab.DefaultK8SVersion}, conformance: lab.ConformanceOptions{Focus: "DNS", Serial: true, Nodes: 2}}},
		{[]string{"add-vm", "--vms", "2"}, args{command: "add-vm", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 6, vms: 2, role: lab.RoleWorker, options: lab.Options{Mode: lab.ModePlanned, K8SVersion: lab.DefaultK8SVersion}, conformance: ginkgo}},
		{[]string{"add-node", "--role", "master"}, args{command: "add-node", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 6, vms: 1, role: lab.RoleMaster, options: lab.Options{Mode: lab.ModePlanned, K8SVersion: lab.DefaultK8SVersion}, conformance: ginkgo}},
	} {
		got, err := parseArgs(c.argv, io.Discard)
		if err != nil || got != c.want {
			t.Errorf("%q:\n got %+v %v\nwant %+v", c.argv, got, err, c.want)
		}
	}
}

// The Makefile passes --k8s-version; a bare kubesalt-lab takes the
// environment's, else the default.
func TestParseArgsK8SVersionFromEnvironment(t *testing.T) {
	t.Setenv("KUBESALT_LAB_K8S_VERSION", "v1.35.4")
	got, err := parseArgs([]string{"up", "--k8s"}, io.Discard)
	if err != nil || got.options.K8SVersion != "v1.35.4" {
		t.Errorf("got %+v %v, want K8SVersion v1.35.4", got.options, err)
	}
}

func TestParseArgsRefusesBadInput(t *testing.T) {
	for argv, want := range map[string]string{
		"":                            "give one command",
		"up down":                     "give one command",
		"start":                       "give one command",
		"up --nodes 0":                "--nodes 0",
		"up --mode controller":        "needs Kubernetes",
		"up --k8s --mode elsewise":    `mode "elsewise"`,
		"up --frobnicate":             "unknown flag",
		"add-node --role etcd":        `--role "etcd"`,
		"add-vm --vms 0":              "--vms 0",
		"up --k8s --k8s-version 1.36": `k8s version "1.36"`,
	} {
		_, err := parseArgs(strings.Fields(argv), io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", argv, err, want)
		}
	}
}
