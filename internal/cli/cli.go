// Package cli is the command-line plumbing the kubesalt binaries share:
// subcommand dispatch, the flags every subcommand has (--test, --output),
// and printing a result as the JSON contract (internal/saltio) or a table.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/kubesalt/kubesalt/internal/saltio"
)

// Streams are a command's standard input, output and error.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Command is one subcommand, named by one or more words ("routes sync").
type Command struct {
	Name    string
	Summary string
	Run     func(s *Streams, args []string) int
}

// Run finds the subcommand args name and runs it; it prints the usage of
// prog for help (exit 0) or an unknown command (exit 2).
func Run(prog string, commands []Command, s *Streams, args []string) int {
	for _, c := range commands {
		words := strings.Fields(c.Name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.Name {
			return c.Run(s, args[len(words):])
		}
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		usage(s.Stdout, prog, commands)
		return 0
	}
	usage(s.Stderr, prog, commands)
	if len(args) > 0 {
		fmt.Fprintf(s.Stderr, "\nunknown command %q\n", strings.Join(args, " "))
	}
	return saltio.ExitBadInput
}

func usage(w io.Writer, prog string, commands []Command) {
	fmt.Fprintf(w, "usage: %s <command> [flags]   (%s <command> --help for its flags)\n", prog, prog)
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.Name, c.Summary)
	}
}

// Output holds the flags every subcommand has.
type Output struct {
	Test   bool   // --test: compute and report every change, apply none
	Format string // --output: json (for Salt) or table (for people)
}

// NewFlags makes a subcommand's flag set (name is "prog subcommand") with
// --test and --output.
func NewFlags(s *Streams, name string, o *Output) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(s.Stderr)
	fs.BoolVar(&o.Test, "test", false, "compute and report every change, apply none (Salt's test=True)")
	fs.StringVarP(&o.Format, "output", "o", "json", "output format: json (for Salt) or table (for people)")
	return fs
}

// Parse parses args; it returns an exit code and false when the command
// should stop (help asked, or bad usage).
func Parse(fs *pflag.FlagSet, o *Output, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0, false
		}
		return saltio.ExitBadInput, false
	}
	if o.Format != "json" && o.Format != "table" {
		fmt.Fprintf(fs.Output(), "--output %q: use json or table\n", o.Format)
		return saltio.ExitBadInput, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments %q; this command takes flags only\n", fs.Args())
		return saltio.ExitBadInput, false
	}
	return 0, true
}

// Emit prints res as JSON, or as a table drawn by table, and returns the
// exit code.
func Emit(s *Streams, o *Output, res saltio.Result, table func(w io.Writer)) int {
	if o.Format == "table" && table != nil {
		tw := tabwriter.NewWriter(s.Stdout, 0, 4, 2, ' ', 0)
		table(tw)
		tw.Flush()
		if res.Comment != "" {
			fmt.Fprintln(s.Stdout, res.Comment)
		}
	} else if err := saltio.Write(s.Stdout, res); err != nil {
		fmt.Fprintln(s.Stderr, "error:", err)
		return saltio.ExitFailed
	}
	return res.ExitCode()
}

// Row writes tab-separated cells.
func Row(w io.Writer, cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(parts, "\t"))
}
