// Package cli is the command-line plumbing the kubesalt binaries share:
// subcommand dispatch, the flags every subcommand has (--test, --output),
// and printing a result as the JSON contract (internal/saltio) or a table.
package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
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

// Run finds the subcommand args name and runs it. Otherwise it prints
// usage, as git and kubectl do: for help (-h, --help or help, after prog or
// after a group's words such as "routes") the commands of prog or of the
// group on stdout, exit 0; for a group alone or an unknown command, the
// same on stderr, exit 2.
func Run(prog string, commands []Command, s *Streams, args []string) int {
	for _, c := range commands {
		words := strings.Fields(c.Name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.Name {
			return c.Run(s, args[len(words):])
		}
	}
	group, members := groupOf(commands, args)
	name := strings.Join(append([]string{prog}, group...), " ")
	rest := args[len(group):]
	if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help") {
		usage(s.Stdout, name, members, len(group))
		return 0
	}
	usage(s.Stderr, name, members, len(group))
	if len(rest) > 0 {
		fmt.Fprintf(s.Stderr, "\nunknown command %q\n", strings.Join(args, " "))
	}
	return saltio.ExitBadInput
}

// groupOf returns the longest run of leading args that names a group of
// commands ("routes" of "routes sync"), and the group's commands; none and
// every command when args name no group.
func groupOf(commands []Command, args []string) ([]string, []Command) {
	for k := len(args); k > 0; k-- {
		var members []Command
		for _, c := range commands {
			words := strings.Fields(c.Name)
			if len(words) > k && slices.Equal(words[:k], args[:k]) {
				members = append(members, c)
			}
		}
		if len(members) > 0 {
			return args[:k], members
		}
	}
	return nil, commands
}

// usage lists commands under name, each without its first skip words (the
// group's, already in name).
func usage(w io.Writer, name string, commands []Command, skip int) {
	fmt.Fprintf(w, "usage: %s <command> [flags]   (%s <command> --help for its flags)\n", name, name)
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", strings.Join(strings.Fields(c.Name)[skip:], " "), c.Summary)
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
