package addons

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

// FieldManager owns the add-ons' fields in server-side apply.
const FieldManager = "kubesalt"

// Kubectl runs kubectl against one cluster.
type Kubectl struct {
	Path, Kubeconfig string
	Timeout          time.Duration
}

func (k Kubectl) run(ctx context.Context, stdin string, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(ctx, k.Timeout)
	defer cancel()
	argv := append([]string{"--kubeconfig", k.Kubeconfig, "--request-timeout", k.Timeout.String()}, args...)
	cmd := exec.CommandContext(ctx, k.Path, argv...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode(), nil
	}
	return out.String(), errb.String(), 0, err
}

// Applied is what Apply found and did.
type Applied struct {
	// Changed are the objects the apply changes (or, in test mode, would),
	// as kubectl diff names them: group.version.Kind.namespace.name.
	Changed []string `json:"changed"`
	// Diff is kubectl diff's unified diff of them.
	Diff string `json:"diff,omitempty"`
	// Applied is kubectl apply's report, when it ran.
	Applied string `json:"applied,omitempty"`
}

// diffFile is the header kubectl diff prints per object:
// diff -u -N /tmp/LIVE-123/apps.v1.Deployment.kube-system.coredns /tmp/MERGED-456/...
var diffFile = regexp.MustCompile(`(?m)^diff -u -N \S+ (\S+)$`)

// ChangedObjects names the objects a kubectl diff output changes.
func ChangedObjects(diff string) []string {
	var out []string
	for _, m := range diffFile.FindAllStringSubmatch(diff, -1) {
		out = append(out, path.Base(m[1]))
	}
	sort.Strings(out)
	return out
}

// Apply compares manifests with the cluster (kubectl diff, server side)
// and, unless test, applies them server side when they differ: a second
// run finds nothing to change and applies nothing.
func Apply(ctx context.Context, k Kubectl, manifests string, test bool) (*Applied, error) {
	ssa := []string{"--server-side", "--field-manager", FieldManager, "--force-conflicts", "-f", "-"}
	out, stderr, code, err := k.run(ctx, manifests, append([]string{"diff"}, ssa...)...)
	if err != nil {
		return nil, fmt.Errorf("kubectl diff: %w", err)
	}
	// kubectl diff: 0 no differences, 1 differences, more: it failed.
	if code > 1 {
		return nil, fmt.Errorf("kubectl diff failed (exit %d): %s", code, strings.TrimSpace(stderr))
	}
	res := &Applied{Changed: ChangedObjects(out), Diff: out}
	if code == 1 && len(res.Changed) == 0 {
		res.Changed = []string{"(unnamed)"}
	}
	if test || len(res.Changed) == 0 {
		return res, nil
	}
	out, stderr, code, err = k.run(ctx, manifests, append([]string{"apply"}, ssa...)...)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr))
	}
	if err != nil {
		return res, fmt.Errorf("kubectl apply: %w", err)
	}
	res.Applied = strings.TrimSpace(out)
	return res, nil
}
