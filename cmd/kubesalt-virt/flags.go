package main

import (
	"io"

	"github.com/spf13/pflag"

	"github.com/kubesalt/kubesalt/internal/cli"
	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/kubesalt/kubesalt/internal/virt"
)

// common holds the flags every subcommand has.
type common struct {
	cli.Output
	definition string
	connect    string
	hypervisor string
	unlock     func() // releases the hypervisor lock open took
}

func newFlags(s *streams, name string, c *common, withDefinition bool) *pflag.FlagSet {
	fs := cli.NewFlags(s, "kubesalt-virt "+name, &c.Output)
	fs.StringVar(&c.connect, "connect", "", "libvirt URI (default: the hypervisor's uri, else kubernetes:libvirt:uri, else qemu:///system)")
	fs.StringVar(&c.hypervisor, "hypervisor", "", "this hypervisor, with several under kubernetes:libvirt:hypervisors (its minion id; the Salt module passes it): its uri and the nodes placed on it")
	if withDefinition {
		fs.StringVar(&c.definition, "definition", "", "cluster definition file (the kubernetes: pillar tree, YAML or JSON), - for stdin")
	}
	return fs
}

func parse(fs *pflag.FlagSet, c *common, args []string) (int, bool) {
	return cli.Parse(fs, &c.Output, args)
}

// open loads the definition and connects to its hypervisor (or --connect).
func open(s *streams, c *common) (*cluster.Definition, *virt.Hypervisor, error) {
	if c.definition == "" {
		return nil, nil, saltio.BadInputf("--definition: missing; give the cluster definition file, or - for stdin")
	}
	raw, err := saltio.ReadInput(c.definition, s.Stdin)
	if err != nil {
		return nil, nil, err
	}
	d, err := cluster.Load(raw)
	if err != nil {
		return nil, nil, saltio.BadInput(err)
	}
	if d.Libvirt == nil {
		return nil, nil, saltio.BadInputf("kubernetes:libvirt: missing; add the section that says where the VMs go (see pillar.example)")
	}
	if len(d.Libvirt.Hypervisors) > 0 {
		if _, err := virt.OnHypervisor(d, c.hypervisor, nil); err != nil {
			return nil, nil, err
		}
	}
	uri := virt.URIOf(d, c.hypervisor)
	if c.connect != "" {
		uri = c.connect
	}
	if !c.Test {
		unlock, err := virt.LockURI(uri)
		if err != nil {
			return nil, nil, err
		}
		c.unlock = unlock
	}
	h, err := virt.Connect(uri)
	if err != nil {
		c.release()
		return nil, nil, err
	}
	return d, h, nil
}

// release drops the hypervisor lock, if taken.
func (c *common) release() {
	if c.unlock != nil {
		c.unlock()
		c.unlock = nil
	}
}

func emit(s *streams, c *common, res saltio.Result, table func(w io.Writer)) int {
	return cli.Emit(s, &c.Output, res, table)
}

func row(w io.Writer, cells ...any) { cli.Row(w, cells...) }
