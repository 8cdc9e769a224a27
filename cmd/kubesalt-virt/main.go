// Command kubesalt-virt is the hypervisor's half of kubesalt: it creates the
// cluster's node network and VMs on libvirt, with cloud-init seeds that give
// every node its static IP, hostname and pre-accepted Salt minion key. It
// links libvirt (cgo), so it is its own binary; `kubesalt` stays cgo-free.
// Every subcommand speaks the JSON contract of DESIGN.md (internal/saltio).
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	name    string // "node ensure"
	summary string
	run     func(s *streams, args []string) int
}

var commands = []command{
	{"network ensure", "define, autostart and start the node network", networkEnsure},
	{"node ensure", "create and start the nodes' VMs (disk, cloud-init seed, domain, minion key)", nodeEnsure},
	{"node remove", "destroy a node's VM and delete its volumes and minion key", nodeRemove},
	{"list", "list the domains kubesalt-virt made", list},
}

func main() {
	os.Exit(run(&streams{os.Stdin, os.Stdout, os.Stderr}, os.Args[1:]))
}

func run(s *streams, args []string) int {
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c.run(s, args[len(words):])
		}
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		usage(s.stdout)
		return 0
	}
	usage(s.stderr)
	if len(args) > 0 {
		fmt.Fprintf(s.stderr, "\nunknown command %q\n", strings.Join(args, " "))
	}
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kubesalt-virt <command> [flags]   (kubesalt-virt <command> --help for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
}
