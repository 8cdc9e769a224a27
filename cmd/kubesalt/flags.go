package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/spf13/pflag"
)

// common holds the flags every subcommand has.
type common struct {
	test   bool
	output string
}

func newFlags(s *streams, name string, c *common) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kubesalt "+name, pflag.ContinueOnError)
	fs.SetOutput(s.stderr)
	fs.BoolVar(&c.test, "test", false, "compute and report every change, apply none (Salt's test=True)")
	fs.StringVarP(&c.output, "output", "o", "json", "output format: json (for Salt) or table (for people)")
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

// loadDefinition reads and validates --definition (a file, or - for
// stdin); a bad definition is bad input (exit 2).
func loadDefinition(s *streams, name string) (*cluster.Definition, error) {
	if name == "" {
		return nil, saltio.BadInputf("--definition is required: the kubernetes: pillar tree as YAML or JSON (a file, or - for standard input)")
	}
	data, err := saltio.ReadInput(name, s.stdin)
	if err != nil {
		return nil, err
	}
	d, err := cluster.Load(data)
	if err != nil {
		return nil, saltio.BadInput(err)
	}
	return d, nil
}
