// Command kubesalt-lab runs kubesalt's lab: a Salt-managed cluster of
// network-namespace nodes on this machine (`make lab`).
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubesalt/kubesalt/internal/conformance"
	"github.com/kubesalt/kubesalt/internal/lab"
)

// args is the command line, parsed.
type args struct {
	command            string
	dir, repo, saltBin string
	nodes, vms         int
	node, role         string
	options            lab.Options
	conformance        lab.ConformanceOptions
}

var commands = map[string]bool{"up": true, "add-node": true, "remove-node": true, "add-vm": true, "remove-vm": true, "show": true, "failover": true, "bench-dns": true, "conformance": true, "down": true}

// parseArgs reads the subcommand and its flags, which may come before or
// after it (the Makefile puts them first). A bad command line is an error
// that says what to use.
func parseArgs(argv []string, stderr io.Writer) (args, error) {
	var a args
	fs := pflag.NewFlagSet("kubesalt-lab", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&a.dir, "dir", ".lab", "where the lab keeps its state, configs and logs")
	fs.StringVar(&a.repo, "repo", ".", "the kubesalt checkout (salt/ is served, bin/ holds the binaries)")
	fs.StringVar(&a.saltBin, "salt-bin", ".venv/bin", "directory of the Salt commands")
	fs.IntVar(&a.nodes, "nodes", 6, "up: nodes in the lab: the first 3 are masters, the rest workers")
	fs.IntVar(&a.vms, "vms", 1, "add-vm: workers added as VMs, the i-th on hypervisor hv-<i> (started as needed)")
	fs.StringVar(&a.node, "node", "", "remove-node: the node to remove: a worker (drained first), or a master of 3 or more (default: the last worker added); remove-vm: the VM to remove (default: the last one added)")
	fs.StringVar(&a.role, "role", lab.RoleWorker, "add-node: a "+lab.RoleWorker+" or a "+lab.RoleMaster+" (the first free of master-0..9)")
	fs.BoolVar(&a.options.K8S, "k8s", false, "up: run Kubernetes (bin/k8s/<version> from `make k8s-binaries`, containerd, the smoke test)")
	fs.StringVar(&a.options.K8SVersion, "k8s-version", envOr("KUBESALT_LAB_K8S_VERSION", lab.DefaultK8SVersion), "up: the Kubernetes release (bin/k8s/<version>, the formula's versions:kubernetes; env KUBESALT_LAB_K8S_VERSION)")
	fs.StringVar(&a.options.Mode, "mode", lab.ModePlanned, "up: pod CIDRs planned by kubesalt, or allocated by the controller manager ("+lab.ModeController+"; needs --k8s)")
	fs.StringVar(&a.conformance.Focus, "focus", "", "conformance: only the [Conformance] specs whose text matches this regular expression")
	fs.BoolVar(&a.conformance.Serial, "serial", false, "conformance: also the [Serial] and [Disruptive] specs")
	fs.IntVar(&a.conformance.Nodes, "ginkgo-nodes", 4, "conformance: ginkgo processes running specs side by side")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kubesalt-lab up|add-node|remove-node|add-vm|remove-vm|show|failover|bench-dns|conformance|down [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(argv); err != nil {
		return a, err
	}
	if fs.NArg() != 1 || !commands[fs.Arg(0)] {
		fs.Usage()
		return a, fmt.Errorf("give one command: up, add-node, remove-node, add-vm, remove-vm, show, failover, bench-dns, conformance or down (got %q)", fs.Args())
	}
	a.command = fs.Arg(0)
	if a.role != lab.RoleWorker && a.role != lab.RoleMaster {
		return a, fmt.Errorf("--role %q: give %s or %s", a.role, lab.RoleWorker, lab.RoleMaster)
	}
	if a.vms < 1 || a.vms > 10 {
		return a, fmt.Errorf("--vms %d: give 1 to 10 (one hypervisor each)", a.vms)
	}
	if a.nodes < 1 {
		return a, fmt.Errorf("--nodes %d: give at least 1 (the first 3 are masters)", a.nodes)
	}
	return a, a.options.Validate()
}

// envOr is the environment variable's value, or def when it is unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	a, err := parseArgs(os.Args[1:], os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	l, err := lab.Open(a.dir, a.repo, a.saltBin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	switch a.command {
	case "up":
		if err = l.Up(lab.DefaultNodes(a.nodes), a.options); err == nil {
			if err = l.Converge(); err == nil {
				if _, err = l.Show(); err == nil {
					_, err = l.Supervised()
				}
			}
		}
	case "add-node":
		var n lab.Node
		add := l.AddNode
		if a.role == lab.RoleMaster {
			add = l.AddMaster
		}
		if n, _, err = add(); err == nil {
			_, err = l.Show()
			fmt.Printf("added %s\n", n.Name)
		}
	case "remove-node":
		name := a.node
		if name == "" {
			name = l.LastWorker()
		}
		_, err = l.RemoveNode(name)
	case "add-vm":
		var vms []lab.Node
		if vms, _, err = l.AddVMs(a.vms); err == nil {
			for _, n := range vms {
				fmt.Printf("added %s (a VM on %s)\n", n.Name, n.Hypervisor)
			}
		}
	case "remove-vm":
		name := a.node
		if name == "" {
			name = l.LastVM()
		}
		err = l.RemoveVM(name)
	case "show":
		_, err = l.Show()
	case "failover":
		// A Kubernetes lab: every Kubernetes process of the controller
		// manager's leader frozen for 45 s.
		_, err = l.FreezeMaster(45 * time.Second)
	case "bench-dns":
		_, err = l.BenchDNS(5*time.Second, 8)
	case "conformance":
		var res conformance.Result
		res, err = l.Conformance(a.conformance)
		fmt.Print(res.Summary())
		if err == nil && len(res.Failed) > 0 {
			err = fmt.Errorf("%d [Conformance] specs failed; the report: %s/conformance", len(res.Failed), a.dir)
		}
	case "down":
		err = l.Down()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
