// Command kubesalt-virt is the hypervisor's half of kubesalt: it creates the
// cluster's node network and VMs on libvirt, with cloud-init seeds that give
// every node its static IP, hostname and pre-accepted Salt minion key. It
// links libvirt (cgo), so it is its own binary; `kubesalt` stays cgo-free.
// Every subcommand speaks the JSON contract of docs/architecture.md (internal/saltio).
package main

import (
	"os"

	"github.com/kubesalt/kubesalt/internal/cli"
)

type (
	streams = cli.Streams
	command = cli.Command
)

var commands = []command{
	{Name: "network ensure", Summary: "define, autostart and start the node network", Run: networkEnsure},
	{Name: "node ensure", Summary: "create and start the nodes' VMs (disk, cloud-init seed, domain, minion key)", Run: nodeEnsure},
	{Name: "node remove", Summary: "destroy a node's VM and delete its volumes and minion key", Run: nodeRemove},
	{Name: "list", Summary: "list the domains kubesalt-virt made", Run: list},
}

func main() {
	os.Exit(run(&streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:]))
}

func run(s *streams, args []string) int { return cli.Run("kubesalt-virt", commands, s, args) }
