package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/kubesalt/kubesalt/internal/virt"
	"github.com/spf13/pflag"
)

// common holds the flags every subcommand has.
type common struct {
	test       bool
	output     string
	definition string
	connect    string
	unlock     func() // releases the hypervisor lock open took
}

func newFlags(s *streams, name string, c *common, withDefinition bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kubesalt-virt "+name, pflag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.BoolVar(&c.test, "test", false, "compute and report every change, apply none (Salt's test=True)")
	fs.StringVarP(&c.output, "output", "o", "json", "output format: json (for Salt) or table (for people)")
	fs.StringVar(&c.connect, "connect", "", "libvirt URI (default: kubernetes:libvirt:uri, else qemu:///system)")
	if withDefinition {
		fs.StringVar(&c.definition, "definition", "", "cluster definition file (the kubernetes: pillar tree, YAML or JSON), - for stdin")
	}
	return fs
}

// parse parses args; it returns an exit code and false when the command
// should stop (help asked, or bad usage).
func parse(fs *pflag.FlagSet, c *common, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0, false
		}
		return saltio.ExitBadInput, false
	}
	if c.output != "json" && c.output != "table" {
		fmt.Fprintf(fs.Output(), "--output %q: use json or table\n", c.output)
		return saltio.ExitBadInput, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments %q; this command takes flags only\n", fs.Args())
		return saltio.ExitBadInput, false
	}
	return 0, true
}

// open loads the definition and connects to its hypervisor (or --connect).
func open(s *streams, c *common) (*cluster.Definition, *virt.Hypervisor, error) {
	if c.definition == "" {
		return nil, nil, saltio.BadInputf("--definition: missing; give the cluster definition file, or - for stdin")
	}
	raw, err := saltio.ReadInput(c.definition, s.stdin)
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
	uri := d.Libvirt.URI
	if c.connect != "" {
		uri = c.connect
	}
	if !c.test {
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

// emit prints res as JSON, or as a table drawn by table, and returns the
// exit code.
func emit(s *streams, c *common, res saltio.Result, table func(w io.Writer)) int {
	if c.output == "table" && table != nil {
		tw := tabwriter.NewWriter(s.stdout, 0, 4, 2, ' ', 0)
		table(tw)
		tw.Flush()
		if res.Comment != "" {
			fmt.Fprintln(s.stdout, res.Comment)
		}
	} else if err := saltio.Write(s.stdout, res); err != nil {
		fmt.Fprintln(s.stderr, "error:", err)
		return saltio.ExitFailed
	}
	return res.ExitCode()
}

// row writes tab-separated cells.
func row(w io.Writer, cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(parts, "\t"))
}
