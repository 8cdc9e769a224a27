package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/pki"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// renewFlag parses --renew-before; "" means the definition's (or the default).
func renewFlag(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := cluster.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, saltio.BadInputf("--renew-before %q: give a positive duration such as 720h or 30d", v)
	}
	return d, nil
}

// issueFlags are what `pki issue` and `pki rotate` both take: the
// definition, the PKI directory and the renewal window.
type issueFlags struct{ def, dir, renew *string }

func addIssueFlags(fs *pflag.FlagSet, dirHelp string) issueFlags {
	return issueFlags{
		def:   fs.String("definition", "", "cluster definition (the kubernetes: pillar tree), file or - for stdin"),
		dir:   fs.String("dir", "", dirHelp),
		renew: fs.String("renew-before", "", "reissue certificates expiring within this window (default kubernetes:pki:renew_before, 720h)"),
	}
}

// load reads the definition and the window into the issuing options.
func (f issueFlags) load(s *streams, test bool) (*cluster.Definition, pki.Options, error) {
	d, err := loadDefinition(s, *f.def)
	if err != nil {
		return nil, pki.Options{}, err
	}
	rb, err := renewFlag(*f.renew)
	if err != nil {
		return nil, pki.Options{}, err
	}
	return d, pki.Options{Dir: *f.dir, Test: test, RenewBefore: rb}, nil
}

func pkiIssue(s *streams, args []string) int {
	var c common
	fs := newFlags(s, "pki issue", &c)
	in := addIssueFlags(fs, "the PKI directory (created 0700)")
	reissue := fs.StringSlice("reissue", nil, "reissue these although they are fine: a certificate name, ca, service-account, encryption-config or all")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	d, opts, err := in.load(s, c.Test)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	opts.Reissue = *reissue
	res, err := pki.Issue(d, opts)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	changes := map[string]any{}
	for key, m := range map[string]map[string]string{"issued": res.Issued, "kubeconfigs": res.Kubeconfigs, "removed": res.Removed, "modes": res.Modes} {
		if len(m) > 0 {
			changes[key] = m
		}
	}
	comment := fmt.Sprintf("all %d certificates in %s are current", res.Certificates, opts.Dir)
	if res.Changed() {
		var parts []string
		for _, p := range []struct {
			n          int
			done, test string
		}{{len(res.Issued), "issued %d", "would issue %d"}, {len(res.Kubeconfigs), "wrote %d kubeconfigs", "would write %d kubeconfigs"},
			{len(res.Removed), "removed %d", "would remove %d"}, {len(res.Modes), "fixed %d file modes", "would fix %d file modes"}} {
			switch {
			case p.n > 0 && c.Test:
				parts = append(parts, fmt.Sprintf(p.test, p.n))
			case p.n > 0:
				parts = append(parts, fmt.Sprintf(p.done, p.n))
			}
		}
		comment = strings.Join(parts, ", ") + " in " + opts.Dir
	}
	if len(res.Warnings) > 0 {
		comment += "; WARNING: " + strings.Join(res.Warnings, "; ")
	}
	out := saltio.Result{
		Result:  saltio.Outcome(c.Test, res.Changed(), false),
		Changes: changes,
		Comment: comment,
		Data:    map[string]any{"dir": opts.Dir, "certificates": res.Certificates},
	}
	if len(res.Warnings) > 0 {
		out.Data.(map[string]any)["warnings"] = res.Warnings
	}
	return emit(s, &c, out, func(w io.Writer) {
		row(w, "NAME", "WHAT", "WHY")
		for _, kind := range []struct {
			what string
			m    map[string]string
		}{{"issued", res.Issued}, {"kubeconfig", res.Kubeconfigs}, {"removed", res.Removed}, {"mode", res.Modes}} {
			for _, name := range sortedKeys(kind.m) {
				row(w, name, kind.what, kind.m[name])
			}
		}
	})
}

func pkiCheck(s *streams, args []string) int {
	var c common
	fs := newFlags(s, "pki check", &c)
	dir := fs.String("dir", "", "the PKI directory")
	renew := fs.String("renew-before", "720h", "fail when a certificate expires within this window")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	if *dir == "" {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--dir is required: the PKI directory `kubesalt pki issue` wrote"))
	}
	rb, err := renewFlag(*renew)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	report, err := pki.Check(*dir, rb, time.Now())
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	failing := report.Failing()
	comment := fmt.Sprintf("%d certificates, none expires within %s", len(report.Certificates), *renew)
	if failing > 0 {
		comment = fmt.Sprintf("%d of %d certificates or files need attention (expired, expiring within %s, foreign or unreadable): %s", failing, len(report.Certificates), *renew, pki.FixRenew)
	}
	out := saltio.Result{Result: saltio.Bool(failing == 0), Comment: comment, Data: report}
	return emit(s, &c, out, func(w io.Writer) {
		row(w, "CERTIFICATE", "EXPIRES", "DAYS LEFT", "SUBJECT", "SANS", "PROBLEM")
		for _, cs := range report.Certificates {
			row(w, cs.Name, cs.NotAfter.Format("2006-01-02 15:04 MST"), cs.DaysLeft, cs.Subject, strings.Join(cs.SANs, ","), cs.Problem)
		}
		for _, p := range report.Problems {
			row(w, "-", "-", "-", "-", "-", p)
		}
	})
}

func pkiRotate(s *streams, args []string) int {
	var c common
	fs := newFlags(s, "pki rotate", &c)
	in := addIssueFlags(fs, "the PKI directory")
	retry := fs.String("retry-after", pki.DefaultRetryAfter.String(), "hand a node its bundle again when its distribution is not confirmed within this")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	d, opts, err := in.load(s, c.Test)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	ra, err := cluster.ParseDuration(*retry)
	if err != nil || ra <= 0 {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--retry-after %q: give a positive duration such as 1h or 10m", *retry))
	}
	res, err := pki.Rotate(d, pki.RotateOptions{Options: opts, RetryAfter: ra})
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	changes := map[string]any{}
	if len(res.Issued) > 0 {
		changes["issued"] = res.Issued
	}
	if len(res.Dispatch) > 0 {
		dispatch := map[string]string{}
		for _, n := range res.Dispatch {
			dispatch[n] = res.Due[n]
		}
		changes["dispatch"] = dispatch
	}
	comment := fmt.Sprintf("nothing due in %s", opts.Dir)
	switch verb := map[bool]string{true: "would issue", false: "issued"}[c.Test]; {
	case len(res.Dispatch) > 0:
		comment = fmt.Sprintf("%s %d certificates; %d nodes to take their new bundle: %s", verb, len(res.Issued), len(res.Dispatch), strings.Join(res.Dispatch, ", "))
	case len(res.Waiting) > 0:
		comment = fmt.Sprintf("%s %d certificates; %d nodes have their new bundle on its way (%s)", verb, len(res.Issued), len(res.Waiting), strings.Join(res.Waiting, ", "))
	case len(res.Issued) > 0:
		comment = fmt.Sprintf("%s %d certificates; no node's bundle changed", verb, len(res.Issued))
	}
	if len(res.Warnings) > 0 {
		comment += "; WARNING: " + strings.Join(res.Warnings, "; ")
	}
	data := map[string]any{"dir": opts.Dir, "issued": res.Issued, "due": res.Due, "dispatch": res.Dispatch, "waiting": res.Waiting}
	if res.Check != nil {
		data["certificates"] = res.Check.Certificates
		data["problems"] = res.Check.Problems
	}
	out := saltio.Result{Result: saltio.Outcome(c.Test, len(changes) > 0, false), Changes: changes, Comment: comment, Data: data}
	return emit(s, &c, out, func(w io.Writer) {
		row(w, "NODE", "WHAT", "WHY")
		for _, n := range res.Dispatch {
			row(w, n, "dispatch", res.Due[n])
		}
		for _, n := range res.Waiting {
			row(w, n, "waiting", res.Due[n])
		}
	})
}

func pkiDistributed(s *streams, args []string) int {
	var c common
	fs := newFlags(s, "pki distributed", &c)
	dir := fs.String("dir", "", "the PKI directory")
	nodes := fs.StringSlice("node", nil, "the nodes that took the bundle they were dispatched (repeat or comma-separate)")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	if *dir == "" || len(*nodes) == 0 {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--dir and --node are required: the PKI directory and the nodes whose distribution succeeded"))
	}
	if c.Test {
		return emit(s, &c, saltio.Result{Result: nil, Comment: "would record " + strings.Join(*nodes, ", ") + " as up to date"}, nil)
	}
	unknown, err := pki.Distributed(*dir, *nodes)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	comment := fmt.Sprintf("recorded %d nodes as holding their current bundle", len(*nodes)-len(unknown))
	if len(unknown) > 0 {
		comment += fmt.Sprintf("; %s had nothing dispatched", strings.Join(unknown, ", "))
	}
	return emit(s, &c, saltio.Result{Result: saltio.Bool(true), Comment: comment, Data: map[string]any{"nodes": *nodes, "not_dispatched": unknown}}, nil)
}

func pkiBundle(s *streams, args []string) int {
	var c common
	fs := newFlags(s, "pki bundle", &c)
	node := fs.String("node", "", "the node whose material to print")
	dir := fs.String("dir", "", "the PKI directory")
	def := fs.String("definition", "", "cluster definition (the kubernetes: pillar tree), file or - for stdin")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	if *node == "" || *dir == "" {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--node and --dir are required"))
	}
	d, err := loadDefinition(s, *def)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	b, err := pki.MakeBundle(d, *dir, *node)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	out := saltio.Result{Result: saltio.Bool(true), Comment: fmt.Sprintf("%d files for %s %s", len(b.Files), b.Role, b.Node), Data: b}
	return emit(s, &c, out, func(w io.Writer) {
		row(w, "FILE", "MODE", "BYTES")
		for _, name := range sortedKeys(b.Files) {
			row(w, name, b.Files[name].Mode, len(b.Files[name].Contents))
		}
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
