package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/nodes"
	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/kubesalt/kubesalt/internal/upgrade"
)

// upgrade plan: the preflight (version skew policy, reachability, etcd
// health) and the order of a Kubernetes upgrade, from what every node runs
// (each node's `upgrade node`, gathered by Salt: the runner
// kubesalt.upgrade_plan). Changes nothing.
func runUpgradePlan(s *streams, args []string) int {
	var c common
	var in upgrade.Input
	var file string
	fs := newFlags(s, "upgrade plan", &c)
	fs.StringVar(&in.Target, "target", "", "the version to upgrade to (pillar versions:kubernetes), e.g. v1.36.3")
	fs.IntVar(&in.WorkerBatch, "worker-batch", 1, "how many workers at once (pillar upgrade:worker_batch)")
	fs.StringVar(&file, "nodes", "", `every node: {"nodes": [{"name", "role", "version", "reachable", "etcd_healthy", "problem"}]} or a bare list (a file, default stdin)`)
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	data, err := saltio.ReadInput(file, s.Stdin)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	if in.Nodes, err = parseUpgradeNodes(data); err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	plan, err := upgrade.Decide(in)
	var refusal *upgrade.Refusal
	switch {
	case errors.As(err, &refusal):
		fmt.Fprintln(s.Stderr, "error:", err)
		return emit(s, &c, saltio.Result{Result: saltio.Bool(false), Comment: err.Error(),
			Data: map[string]any{"refused": refusal.Reasons}}, nil)
	case err != nil:
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	return emit(s, &c, saltio.Result{Result: saltio.Bool(true), Comment: plan.Summary(), Data: plan}, func(w io.Writer) {
		row(w, "STEP", "KIND", "NODES")
		for i, st := range plan.Steps {
			row(w, i+1, st.Kind, strings.Join(st.Nodes, ","))
		}
		if len(plan.Done) > 0 {
			row(w, "-", "done", strings.Join(plan.Done, ","))
		}
	})
}

func parseUpgradeNodes(data []byte) ([]upgrade.Node, error) {
	var wrapped struct {
		Nodes []upgrade.Node `json:"nodes"`
	}
	if err := json.Unmarshal(data, &wrapped); err == nil && wrapped.Nodes != nil {
		return wrapped.Nodes, nil
	}
	var list []upgrade.Node
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("the node list: %v; give {\"nodes\": [...]} or a list of {name, role, version, reachable}", err)
	}
	return list, nil
}

// upgrade node: what this node's Kubernetes components run and whether they
// are healthy; with --target and --wait, wait until it runs the target
// (the upgrade's step after a node's new binaries).
func runUpgradeNode(s *streams, args []string) int {
	var c common
	var p upgrade.Probe
	var kubeconfig, server, target string
	var wait, interval time.Duration
	fs := newFlags(s, "upgrade node", &c)
	fs.StringVar(&p.Name, "node", "", "this node's name")
	fs.StringVar(&p.Role, "role", "", "its role: master or worker")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "a master's admin kubeconfig, a worker's kubelet kubeconfig")
	fs.StringVar(&server, "server", "", "the API server to ask instead of the kubeconfig's (a master: the one beside it, https://127.0.0.1:6443)")
	fs.StringVar(&p.ProxyMetrics, "proxy-metrics", "http://127.0.0.1:10249/metrics", "a worker's kube-proxy metrics URL")
	fs.StringVar(&p.Etcdctl, "etcdctl", "/usr/local/bin/etcdctl", "a master's etcdctl")
	fs.StringVar(&p.EtcdEndpoint, "etcd-endpoint", "https://127.0.0.1:2379", "a master's etcd member")
	fs.StringVar(&p.CACert, "cacert", "", "etcd's CA certificate (PEM)")
	fs.StringVar(&p.EtcdCert, "etcd-cert", "", "an etcd client certificate (PEM)")
	fs.StringVar(&p.EtcdKey, "etcd-key", "", "its key (PEM)")
	fs.DurationVar(&p.Timeout, "timeout", 5*time.Second, "each request's limit")
	fs.StringVar(&target, "target", "", "the version it must run (with --wait: until it does)")
	fs.DurationVar(&wait, "wait", 0, "wait this long for --target and readiness (0: read once)")
	fs.DurationVar(&interval, "interval", 2*time.Second, "between two reads while waiting")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	switch {
	case p.Name == "":
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--node is required: this node's name"))
	case p.Role != upgrade.RoleMaster && p.Role != upgrade.RoleWorker:
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--role %q: give master or worker", p.Role))
	case kubeconfig == "":
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--kubeconfig is required: a master's admin kubeconfig, a worker's kubelet kubeconfig"))
	case p.Timeout <= 0 || wait < 0 || interval <= 0:
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--timeout, --interval: give positive durations; --wait: 0 or more"))
	}
	if target != "" {
		if _, err := upgrade.ParseVersion(target); err != nil {
			return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--target: %v", err))
		}
	}
	cfg, err := nodes.LoadKubeconfig(kubeconfig)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	if server != "" {
		cfg.Server = strings.TrimSuffix(server, "/")
	}
	p.API = cfg
	ctx := context.Background()
	var st upgrade.NodeState
	if target == "" {
		st = p.Read(ctx)
	} else if st, err = p.Wait(ctx, target, wait, interval); err != nil {
		return emit(s, &c, saltio.Result{Result: saltio.Bool(false), Comment: err.Error(), Data: st}, nil)
	}
	comment := fmt.Sprintf("%s (%s) runs %s", p.Name, p.Role, orUnknown(st.Version))
	if target != "" {
		comment += ", ready"
	} else if st.Problem != "" {
		comment += "; " + st.Problem
	}
	return emit(s, &c, saltio.Result{Result: saltio.Bool(true), Comment: comment, Data: st}, func(w io.Writer) {
		row(w, "COMPONENT", "VERSION")
		for k, v := range st.Components {
			row(w, k, v)
		}
	})
}

func orUnknown(v string) string {
	if v == "" {
		return "an unknown version"
	}
	return v
}
