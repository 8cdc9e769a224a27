package main

import (
	"io"

	"github.com/spf13/pflag"

	"github.com/kubesalt/kubesalt/internal/cli"
	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// common holds the flags every subcommand has.
type common = cli.Output

func newFlags(s *streams, name string, c *common) *pflag.FlagSet {
	return cli.NewFlags(s, "kubesalt "+name, c)
}

func parse(fs *pflag.FlagSet, c *common, args []string) (int, bool) { return cli.Parse(fs, c, args) }

func emit(s *streams, c *common, res saltio.Result, table func(w io.Writer)) int {
	return cli.Emit(s, c, res, table)
}

func row(w io.Writer, cells ...any) { cli.Row(w, cells...) }

// loadDefinition reads and validates --definition (a file, or - for
// stdin); a bad definition is bad input (exit 2).
func loadDefinition(s *streams, name string) (*cluster.Definition, error) {
	if name == "" {
		return nil, saltio.BadInputf("--definition is required: the kubernetes: pillar tree as YAML or JSON (a file, or - for standard input)")
	}
	data, err := saltio.ReadInput(name, s.Stdin)
	if err != nil {
		return nil, err
	}
	d, err := cluster.Load(data)
	if err != nil {
		return nil, saltio.BadInput(err)
	}
	return d, nil
}
