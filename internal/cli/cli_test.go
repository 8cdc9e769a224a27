package cli

import (
	"bytes"
	"strings"
	"testing"
)

// fixture is a command set with groups of one and two words; each command
// records the arguments it ran with.
func fixture(ran *[]string) []Command {
	cmd := func(name, summary string) Command {
		return Command{Name: name, Summary: summary, Run: func(_ *Streams, args []string) int {
			*ran = append(*ran, name+" "+strings.Join(args, " "))
			return 0
		}}
	}
	return []Command{
		cmd("routes sync", "program routes"),
		cmd("routes list", "list the routes"),
		cmd("node ensure", "create the VMs"),
		cmd("node disk grow", "grow a disk"),
		cmd("list", "list the domains"),
	}
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr []string // lines each must hold
		notOut         []string // and what stdout must not
		ran            string
	}{
		{args: []string{"routes", "sync", "--test"}, ran: "routes sync --test"},
		{args: []string{"routes", "sync", "--help"}, ran: "routes sync --help"},
		{args: []string{"list"}, ran: "list "},
		{args: []string{"--help"}, stdout: []string{"usage: prog <command>", "routes sync      program routes", "node disk grow   grow a disk", "list             list the domains"}},
		{args: []string{"help"}, stdout: []string{"usage: prog <command>", "routes list"}},
		// A group's help lists its commands, by their words after the group.
		{args: []string{"routes", "--help"},
			stdout: []string{"usage: prog routes <command> [flags]   (prog routes <command> --help for its flags)", "  sync             program routes", "  list             list the routes"},
			notOut: []string{"node", "domains"}},
		{args: []string{"routes", "-h"}, stdout: []string{"usage: prog routes <command>", "  sync "}},
		{args: []string{"routes", "help"}, stdout: []string{"usage: prog routes <command>", "  list "}},
		{args: []string{"node", "--help"}, stdout: []string{"usage: prog node <command>", "  ensure           create the VMs", "  disk grow        grow a disk"}, notOut: []string{"routes", "domains"}},
		{args: []string{"node", "disk", "--help"}, stdout: []string{"usage: prog node disk <command>", "  grow             grow a disk"}, notOut: []string{"ensure"}},
		// Help comes first: a flag after it is not parsed.
		{args: []string{"routes", "--help", "--output", "table"}, stdout: []string{"usage: prog routes <command>"}},
		// A group alone names no command: usage on stderr, exit 2.
		{args: []string{"routes"}, code: 2, stderr: []string{"usage: prog routes <command>", "  sync "}},
		{args: []string{"node", "disk"}, code: 2, stderr: []string{"usage: prog node disk <command>", "  grow "}},
		{args: nil, code: 2, stderr: []string{"usage: prog <command>", "routes sync"}},
		{args: []string{"routes", "nosuch"}, code: 2, stderr: []string{"usage: prog routes <command>", `unknown command "routes nosuch"`}},
		{args: []string{"routes", "--test"}, code: 2, stderr: []string{`unknown command "routes --test"`}},
		{args: []string{"frobnicate", "--help"}, code: 2, stderr: []string{"usage: prog <command>", `unknown command "frobnicate --help"`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var ran []string
			var out, errb bytes.Buffer
			code := Run("prog", fixture(&ran), &Streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}, tc.args)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if got := strings.Join(ran, "; "); got != tc.ran {
				t.Errorf("ran %q, want %q", got, tc.ran)
			}
			if len(tc.stdout) == 0 && out.Len() > 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
			if len(tc.stderr) == 0 && errb.Len() > 0 {
				t.Errorf("stderr %q, want nothing", errb.String())
			}
			for _, want := range tc.stdout {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, out.String())
				}
			}
			for _, not := range tc.notOut {
				if strings.Contains(out.String(), not) {
					t.Errorf("stdout holds %q:\n%s", not, out.String())
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(errb.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, errb.String())
				}
			}
		})
	}
}
