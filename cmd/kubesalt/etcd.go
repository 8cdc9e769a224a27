package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/etcdmembers"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// runEtcdPrune removes the etcd members whose master left the cluster
// definition (--keep names the masters that stay).
func runEtcdPrune(s *streams, args []string) int {
	var c common
	var keep, endpoints []string
	var e etcdmembers.Etcdctl
	fs := newFlags(s, "etcd prune", &c)
	fs.StringSliceVar(&keep, "keep", nil, "the definition's masters: every member named otherwise is removed")
	fs.StringSliceVar(&endpoints, "endpoints", nil, "the etcd client URLs to ask (the masters that stay)")
	fs.StringVar(&e.Path, "etcdctl", "etcdctl", "the etcdctl to run")
	fs.StringVar(&e.CACert, "cacert", "", "the CA that signed etcd's server certificates")
	fs.StringVar(&e.Cert, "cert", "", "a client certificate etcd accepts")
	fs.StringVar(&e.Key, "key", "", "its key")
	fs.DurationVar(&e.Timeout, "timeout", 10*time.Second, "how long each etcdctl command may take")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	// Everything is checked before etcd is asked anything.
	var missing []string
	for _, f := range []struct {
		flag  string
		empty bool
	}{{"--keep", len(keep) == 0}, {"--endpoints", len(endpoints) == 0}, {"--cacert", e.CACert == ""}, {"--cert", e.Cert == ""}, {"--key", e.Key == ""}} {
		if f.empty {
			missing = append(missing, f.flag)
		}
	}
	if len(missing) > 0 {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("%s required: the masters to keep, etcd's client URLs and etcdctl's TLS files (the formula passes etcd-server.pem)", strings.Join(missing, ", ")))
	}
	if e.Timeout <= 0 {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--timeout %s: give a positive duration, e.g. 10s", e.Timeout))
	}
	e.Endpoints = endpoints
	ctx := context.Background()
	members, err := e.List(ctx)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	remove, err := etcdmembers.Prune(members, keep)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	res := saltio.Result{Result: saltio.Bool(true), Data: map[string]any{"members": members, "keep": keep}}
	var names []string
	for _, m := range remove {
		names = append(names, m.Name)
	}
	switch {
	case len(remove) == 0:
		res.Comment = fmt.Sprintf("etcd's %d members are masters of the definition", len(members))
	case c.Test:
		res.Result = nil
		res.Changes = map[string]any{"removed": remove}
		res.Comment = "would remove " + strings.Join(names, ", ")
	default:
		var done []etcdmembers.Member
		for _, m := range remove {
			if err := e.Remove(ctx, m); err != nil {
				res.Result = saltio.Bool(false)
				res.Comment = err.Error()
				break
			}
			done = append(done, m)
		}
		if len(done) > 0 {
			res.Changes = map[string]any{"removed": done}
		}
		if res.Comment == "" {
			res.Comment = "removed " + strings.Join(names, ", ")
		}
	}
	return emit(s, &c, res, func(w io.Writer) {
		row(w, "MEMBER", "ID", "PEER URLS", "")
		for _, m := range members {
			what := "kept"
			for _, r := range remove {
				if r.ID == m.ID {
					what = "removed"
				}
			}
			row(w, m.Name, m.HexID(), strings.Join(m.PeerURLs, ","), what)
		}
	})
}
