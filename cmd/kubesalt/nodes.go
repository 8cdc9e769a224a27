package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kubesalt/kubesalt/internal/nodes"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

func runNodesDiscover(s *streams, args []string) int {
	var c common
	var file, kubectl, kubeconfig string
	var timeout time.Duration
	fs := newFlags(s, "nodes discover", &c)
	fs.StringVar(&file, "file", "", "read `kubectl get nodes -o json` output from this file (- for stdin) instead of running kubectl")
	fs.StringVar(&kubectl, "kubectl", "kubectl", "the kubectl to run")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig for kubectl")
	fs.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for kubectl")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	var data []byte
	var err error
	if file != "" {
		data, err = saltio.ReadInput(file, s.Stdin)
	} else {
		data, err = nodes.Kubectl(context.Background(), kubectl, kubeconfig, timeout)
	}
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	members, problems, err := nodes.Parse(data)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	comment := fmt.Sprintf("%d nodes discovered", len(members))
	if len(problems) > 0 {
		comment += fmt.Sprintf("; %d problems (nodes not routable yet)", len(problems))
	}
	res := saltio.Result{Result: saltio.Bool(true), Comment: comment, Data: map[string]any{"nodes": members, "problems": problems}}
	return emit(s, &c, res, func(w io.Writer) {
		row(w, "NODE", "ROLE", "IPS", "POD CIDRS")
		for _, m := range members {
			row(w, m.Name, m.Role, join(m.IPs), join(m.PodCIDRs))
		}
		for _, p := range problems {
			row(w, p.Node, "PROBLEM", p.Problem, "")
		}
	})
}
