package main

import (
	"io"
	"sort"
	"strings"

	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/kubesalt/kubesalt/internal/virt"
)

func networkEnsure(s *streams, args []string) int {
	var c common
	var update bool
	fs := newFlags(s, "network ensure", &c, true)
	fs.BoolVar(&update, "update", false, "redefine the network when it drifted from the definition")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	d, h, err := open(s, &c)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	defer h.Close()
	defer c.release()
	opts := virt.Options{Test: c.Test, Update: update}
	rep, err := h.EnsureNetwork(d, opts)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	return emit(s, &c, rep.Result(opts), func(w io.Writer) {
		row(w, "NETWORK", "BRIDGE", "ACTIVE", "DONE", "DRIFT")
		row(w, rep.Name, rep.Bridge, rep.Active, orDash(rep.Done), len(rep.Drift))
	})
}

func nodeEnsure(s *streams, args []string) int {
	var c common
	var nodes []string
	var pkiDir string
	var update bool
	fs := newFlags(s, "node ensure", &c, true)
	fs.StringSliceVar(&nodes, "node", nil, "node to create (repeatable; default: every node of the definition)")
	fs.StringVar(&pkiDir, "master-pki-dir", "", "the Salt master's pki_dir: the minion keys are accepted there (e.g. /etc/salt/pki/master)")
	fs.BoolVar(&update, "update", false, "change domains that drifted from the definition (memory, vCPU, NIC)")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	d, h, err := open(s, &c)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	defer h.Close()
	defer c.release()
	opts := virt.Options{Test: c.Test, Update: update}
	if nodes, err = virt.OnHypervisor(d, c.hypervisor, nodes); err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	rep := &virt.NodesReport{Changes: map[string]*virt.NodeChange{}, Nodes: map[string]virt.NodeState{}}
	if nodes == nil || len(nodes) > 0 { // an empty list: none placed here
		if rep, err = h.EnsureNodes(d, nodes, pkiDir, opts); err != nil {
			return saltio.Fail(s.Stdout, s.Stderr, err)
		}
	}
	return emit(s, &c, rep.Result(opts, "created or changed"), nodesTable(rep))
}

func nodeRemove(s *streams, args []string) int {
	var c common
	var nodes []string
	var pkiDir string
	fs := newFlags(s, "node remove", &c, true)
	fs.StringSliceVar(&nodes, "node", nil, "node to remove (repeatable)")
	fs.StringVar(&pkiDir, "master-pki-dir", "", "the Salt master's pki_dir: the minion keys are removed from it")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	if len(nodes) == 0 {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--node: missing; give the node to remove"))
	}
	d, h, err := open(s, &c)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	defer h.Close()
	defer c.release()
	opts := virt.Options{Test: c.Test}
	rep, err := h.RemoveNodes(d, nodes, pkiDir, c.Test)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	return emit(s, &c, rep.Result(opts, "removed"), nodesTable(rep))
}

func nodesTable(rep *virt.NodesReport) func(w io.Writer) {
	return func(w io.Writer) {
		row(w, "NODE", "STATE", "MAC", "IP", "CHANGES")
		names := map[string]bool{}
		for n := range rep.Nodes {
			names[n] = true
		}
		for n := range rep.Changes {
			names[n] = true
		}
		sorted := make([]string, 0, len(names))
		for n := range names {
			sorted = append(sorted, n)
		}
		sort.Strings(sorted)
		for _, n := range sorted {
			st := rep.Nodes[n]
			var ch []string
			if c := rep.Changes[n]; c != nil {
				ch = append(append(append(ch, c.Created...), c.Fixed...), c.Removed...)
				if len(c.Drift) > 0 {
					ch = append(ch, "drift")
				}
			}
			row(w, n, st.State, st.MAC, st.IP, orDash(ch))
		}
	}
}

func list(s *streams, args []string) int {
	var c common
	fs := newFlags(s, "list", &c, false)
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	uri := c.connect
	if uri == "" {
		uri = "qemu:///system"
	}
	h, err := virt.Connect(uri)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	defer h.Close()
	defer c.release()
	doms, err := h.List()
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	res := saltio.Result{Result: saltio.Bool(true), Data: map[string]any{"domains": doms}}
	return emit(s, &c, res, func(w io.Writer) {
		row(w, "NAME", "STATE", "MAC", "VCPU", "MEMORY_MIB", "CLUSTER", "ROLE")
		for _, d := range doms {
			row(w, d.Name, d.State, d.MAC, d.VCPU, d.MemoryMiB, d.Cluster, d.Role)
		}
	})
}

// orDash joins a list for a table cell; "-" when empty.
func orDash(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ",")
}
