package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/addons"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// addons dns: the cluster DNS add-on's manifests, printed.
func runAddonsDNS(s *streams, args []string) int {
	var c common
	var def string
	fs := newFlags(s, "addons dns", &c)
	fs.StringVar(&def, "definition", "", "the kubernetes: pillar tree, YAML or JSON (a file, or - for stdin)")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	d, err := loadDefinition(s, def)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	manifests, err := addons.DNSManifests(d)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	// YAML for kubectl and people, unless JSON is asked for by name.
	if !fs.Changed("output") || c.Format == "table" {
		fmt.Fprint(s.Stdout, manifests)
		return 0
	}
	res := saltio.Result{Result: saltio.Bool(true), Comment: "the cluster DNS add-on's manifests", Data: map[string]any{"manifests": manifests}}
	return emit(s, &c, res, nil)
}

// addons apply: the add-ons the definition enables, applied server side
// (kubectl diff first: nothing to change, nothing applied).
func runAddonsApply(s *streams, args []string) int {
	var c common
	var def, kubectl, kubeconfig string
	var timeout time.Duration
	var ifReady bool
	fs := newFlags(s, "addons apply", &c)
	fs.StringVar(&def, "definition", "", "the kubernetes: pillar tree, YAML or JSON (a file, or - for stdin)")
	fs.StringVar(&kubectl, "kubectl", "kubectl", "the kubectl to run")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "the admin kubeconfig (it creates RBAC objects in kube-system)")
	fs.DurationVar(&timeout, "timeout", 60*time.Second, "how long each kubectl may take")
	fs.BoolVar(&ifReady, "if-api-ready", false, "do nothing, successfully, while the kubeconfig is not written or the API server's /readyz is not ok")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	if kubeconfig == "" {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--kubeconfig is required: the admin kubeconfig, e.g. /etc/kubernetes/pki/admin.kubeconfig"))
	}
	if timeout <= 0 {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--timeout %s: give a positive duration, e.g. 60s", timeout))
	}
	d, err := loadDefinition(s, def)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	if !d.DNS.Enabled {
		res := saltio.Result{Result: saltio.Bool(true), Comment: "the cluster DNS add-on is disabled (kubernetes:dns:enabled false): nothing applied"}
		return emit(s, &c, res, nil)
	}
	manifests, err := addons.DNSManifests(d)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	if ifReady {
		if code, skipped := skipUnlessAPIReady(s, &c, kubeconfig); skipped {
			return code
		}
	}
	k := addons.Kubectl{Path: kubectl, Kubeconfig: kubeconfig, Timeout: timeout}
	got, err := addons.Apply(context.Background(), k, manifests, c.Test)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	// Each object by name, then the diff: maps and strings, as every state's
	// changes (a list of strings reads as errors to Salt's outputters).
	changes := map[string]any{}
	if len(got.Changed) > 0 {
		objects := map[string]any{}
		for _, o := range got.Changed {
			objects[o] = map[bool]string{true: "would apply", false: "applied"}[c.Test]
		}
		changes["dns"] = map[string]any{"objects": objects, "diff": got.Diff}
	}
	var comment string
	switch {
	case len(got.Changed) == 0:
		comment = fmt.Sprintf("cluster DNS (CoreDNS %s at %s) is up to date", d.DNS.Image, d.Network.ClusterDNS)
	case c.Test:
		comment = "cluster DNS: would apply " + strings.Join(got.Changed, ", ")
	default:
		comment = "cluster DNS: applied " + strings.Join(got.Changed, ", ")
	}
	res := saltio.Result{Result: saltio.Outcome(c.Test, len(got.Changed) > 0, false), Changes: changes, Comment: comment, Data: got}
	return emit(s, &c, res, func(w io.Writer) {
		row(w, "ADD-ON", "OBJECT", "ACTION")
		for _, o := range got.Changed {
			row(w, "dns", o, map[bool]string{true: "would apply", false: "applied"}[c.Test])
		}
	})
}
