// Command kubesalt-lab runs kubesalt's lab: a Salt-managed cluster of
// network-namespace nodes on this machine (`make lab`).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/kubesalt/kubesalt/internal/lab"
)

func main() {
	fs := pflag.NewFlagSet("kubesalt-lab", pflag.ContinueOnError)
	dir := fs.String("dir", ".lab", "where the lab keeps its state, configs and logs")
	repo := fs.String("repo", ".", "the kubesalt checkout (salt/ is served, bin/ holds the binaries)")
	saltBin := fs.String("salt-bin", ".venv/bin", "directory of the Salt commands")
	nodes := fs.Int("nodes", 6, "nodes in the lab: the first 3 are masters, the rest workers")
	node := fs.String("node", "", "remove-node: the worker to remove (default: the last added)")
	k8s := fs.Bool("k8s", false, "up: run Kubernetes (bin/k8s from `make k8s-binaries`, containerd, the smoke test)")
	mode := fs.String("mode", "planned", "up: pod CIDRs planned by kubesalt, or allocated by the controller manager (controller; needs --k8s)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: kubesalt-lab up|add-node|remove-node|show|down [flags]")
		fs.PrintDefaults()
	}
	// Flags may come before or after the subcommand (the Makefile puts
	// them first).
	if err := fs.Parse(os.Args[1:]); err != nil || fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	l, err := lab.Open(*dir, *repo, *saltBin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	switch fs.Arg(0) {
	case "up":
		if err = l.Up(lab.DefaultNodes(*nodes), lab.Options{K8S: *k8s, Mode: *mode}); err == nil {
			if err = l.Converge(); err == nil {
				_, err = l.Show()
			}
		}
	case "add-node":
		var n lab.Node
		if n, _, err = l.AddNode(); err == nil {
			_, err = l.Show()
			fmt.Printf("added %s\n", n.Name)
		}
	case "remove-node":
		name := *node
		if name == "" {
			name = l.LastWorker()
		}
		_, err = l.RemoveNode(name)
	case "show":
		_, err = l.Show()
	case "down":
		err = l.Down()
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
