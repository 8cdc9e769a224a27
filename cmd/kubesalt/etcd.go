package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/etcdbackup"
	"github.com/kubesalt/kubesalt/internal/etcdmembers"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// runEtcdSnapshot: one snapshot into --dir, the newest --keep kept (the
// masters' Salt schedule runs it through kubesalt_etcd.snapshot).
func runEtcdSnapshot(s *streams, args []string) int {
	var c common
	var cl etcdbackup.Client
	var dir, member string
	var keep int
	var timeout time.Duration
	fs := newFlags(s, "etcd snapshot", &c)
	fs.StringVar(&dir, "dir", "", "the snapshot directory (made 0700)")
	fs.StringVar(&member, "member", "", "this etcd member's name (in the file name)")
	fs.IntVar(&keep, "keep", 24, "how many snapshots to keep, newest first")
	fs.StringVar(&cl.Etcdctl, "etcdctl", "/usr/local/bin/etcdctl", "the etcdctl binary")
	fs.StringVar(&cl.Endpoints, "endpoints", "https://127.0.0.1:2379", "etcd's client URL(s), comma-separated")
	fs.StringVar(&cl.CACert, "cacert", "", "the CA certificate (PEM)")
	fs.StringVar(&cl.Cert, "cert", "", "an etcd client certificate (PEM)")
	fs.StringVar(&cl.Key, "key", "", "its key (PEM)")
	fs.DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	switch err := cl.Validate(); {
	case err != nil:
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	case dir == "" || member == "":
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--dir and --member are required: where the snapshots go, and this member's name"))
	case keep < 1:
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--keep %d: keep at least 1 snapshot", keep))
	}
	if c.Test {
		return emit(s, &c, saltio.Result{Result: nil, Changes: map[string]any{"saved": dir + "/" + etcdbackup.FileName(member, time.Now())},
			Comment: "would take a snapshot of etcd into " + dir}, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := etcdbackup.Save(ctx, cl, dir, member, keep, time.Now())
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	changes := map[string]any{"saved": res.Saved.Path}
	if len(res.Removed) > 0 {
		changes["removed"] = res.Removed
	}
	return emit(s, &c, saltio.Result{Result: saltio.Bool(true), Changes: changes, Data: res,
		Comment: fmt.Sprintf("saved %s (%d bytes); %d kept, %d removed", res.Saved.Path, res.Saved.Size, len(res.Kept), len(res.Removed))},
		func(w io.Writer) {
			row(w, "SNAPSHOT", "TAKEN", "BYTES")
			for _, k := range res.Kept {
				row(w, k.Path, k.Taken.Format(time.RFC3339), k.Size)
			}
		})
}

// runEtcdRestore: this member's data directory from one snapshot, for
// orch.kubernetes.etcd_restore (etcd stopped on every master).
func runEtcdRestore(s *streams, args []string) int {
	var c common
	var m etcdbackup.Member
	var snapshot, etcdctl, etcdutl string
	fs := newFlags(s, "etcd restore", &c)
	fs.StringVar(&snapshot, "snapshot", "", "the snapshot file (from etcd snapshot / etcdctl snapshot save)")
	fs.StringVar(&m.Name, "member", "", "this member's name")
	fs.StringVar(&m.PeerURL, "peer-url", "", "this member's peer URL")
	fs.StringVar(&m.InitialCluster, "initial-cluster", "", "every member: name=peer-url,...")
	fs.StringVar(&m.Token, "token", "", "the cluster's initial-cluster-token")
	fs.StringVar(&m.DataDir, "data-dir", "", "etcd's data directory")
	fs.StringVar(&etcdctl, "etcdctl", "/usr/local/bin/etcdctl", "etcdctl (restores where there is no etcdutl: etcd 3.4)")
	fs.StringVar(&etcdutl, "etcdutl", "/usr/local/bin/etcdutl", "etcdutl (etcd 3.5+), used when present")
	if code, ok := parse(fs, &c, args); !ok {
		return code
	}
	if err := m.Validate(); err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	if snapshot == "" {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInputf("--snapshot is required: the snapshot file to restore from"))
	}
	tool := etcdbackup.RestoreTool(etcdutl, etcdctl)
	changes := map[string]any{"restored": map[string]any{"data_dir": m.DataDir, "snapshot": snapshot, "member": m.Name}}
	if c.Test {
		return emit(s, &c, saltio.Result{Changes: changes, Comment: fmt.Sprintf("would restore %s from %s with %s", m.DataDir, snapshot, tool)}, nil)
	}
	if err := etcdbackup.Restore(context.Background(), tool, snapshot, m); err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	return emit(s, &c, saltio.Result{Result: saltio.Bool(true), Changes: changes,
		Comment: fmt.Sprintf("restored member %s into %s from %s (%s)", m.Name, m.DataDir, snapshot, tool)}, nil)
}

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
