package main

import (
	"io"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/lab"
)

func TestParseArgs(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want args
	}{
		// The Makefile's order: flags first.
		{[]string{"--dir", ".lab", "--salt-bin", ".venv/bin", "up", "--nodes", "4", "--k8s", "--mode", "controller"},
			args{command: "up", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 4, role: lab.RoleWorker, options: lab.Options{K8S: true, Mode: lab.ModeController}}},
		{[]string{"remove-node", "--node", "worker-3"},
			args{command: "remove-node", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 6, node: "worker-3", role: lab.RoleWorker, options: lab.Options{Mode: lab.ModePlanned}}},
		{[]string{"down"}, args{command: "down", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 6, role: lab.RoleWorker, options: lab.Options{Mode: lab.ModePlanned}}},
		{[]string{"add-node", "--role", "master"}, args{command: "add-node", dir: ".lab", repo: ".", saltBin: ".venv/bin", nodes: 6, role: lab.RoleMaster, options: lab.Options{Mode: lab.ModePlanned}}},
	} {
		got, err := parseArgs(c.argv, io.Discard)
		if err != nil || got != c.want {
			t.Errorf("%q:\n got %+v %v\nwant %+v", c.argv, got, err, c.want)
		}
	}
}

func TestParseArgsRefusesBadInput(t *testing.T) {
	for argv, want := range map[string]string{
		"":                         "give one command",
		"up down":                  "give one command",
		"start":                    "give one command",
		"up --nodes 0":             "--nodes 0",
		"up --mode controller":     "needs Kubernetes",
		"up --k8s --mode elsewise": `mode "elsewise"`,
		"up --frobnicate":          "unknown flag",
		"add-node --role etcd":     `--role "etcd"`,
	} {
		_, err := parseArgs(strings.Fields(argv), io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", argv, err, want)
		}
	}
}
