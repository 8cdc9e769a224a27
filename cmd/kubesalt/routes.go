package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/routes"
	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/spf13/pflag"
)

type routeFlags struct {
	common
	opts      routes.Options
	nodesFile string
	self      string
	protosDir string
	record    string
	revision  int64
}

func newRouteFlags(s *streams, name string, f *routeFlags, withNodes bool) *pflag.FlagSet {
	fs := newFlags(s, name, &f.common)
	fs.StringVar(&f.opts.Netns, "netns", "", "act in this named network namespace (ip netns)")
	fs.IntVar(&f.opts.Protocol, "protocol", routes.DefaultProtocol, "route protocol number kubesalt owns its routes by")
	fs.IntVar(&f.opts.Table, "table", 254, "routing table (254 = main)")
	fs.BoolVar(&f.opts.Plain, "plain-routes", false, "make gateway routes, not routes via nexthop objects (kernels before 5.3 get these anyway)")
	if withNodes {
		fs.StringVar(&f.nodesFile, "nodes", "-", "node list JSON, as `kubesalt cidr plan` prints it (- for stdin)")
		fs.StringVar(&f.self, "self", "", "this node's name (default: the node holding a local address)")
		fs.BoolVar(&f.opts.Adopt, "adopt", false, "take over a foreign route for a desired destination instead of reporting a conflict")
		// Off by default: a binary that writes the host's /etc unasked changes
		// every host a test runs it on. The formula registers the name itself.
		fs.StringVar(&f.protosDir, "rt-protos-dir", "", "register the protocol's name for `ip route` as <dir>/kubesalt.conf, e.g. "+routes.DefaultProtosDir+" (default: do not)")
		fs.StringVar(&f.record, "record", "", "keep the node list and options of an applied sync in this file for `routes watch`, e.g. "+routes.DefaultRecord+" (default: do not)")
		fs.Int64Var(&f.revision, "revision", 0, "the plan revision of the node list (`kubesalt cidr plan` prints it): with --record, a list older than the recorded one changes nothing (default 0: always apply)")
	}
	return fs
}

func (f *routeFlags) check() error {
	if f.opts.Protocol < 5 || f.opts.Protocol > 255 {
		return saltio.BadInputf("--protocol %d: use 5-255 (0-4 are the kernel's own); default %d", f.opts.Protocol, routes.DefaultProtocol)
	}
	if f.revision < 0 {
		return saltio.BadInputf("--revision %d: give the plan's revision (0 or more; 0 applies whatever the record holds)", f.revision)
	}
	if f.opts.Table < 1 || f.opts.Table == 255 {
		return saltio.BadInputf("--table %d: use a table id of 1 or more other than 255 (local); 254 is main", f.opts.Table)
	}
	return nil
}

func runRoutesSync(s *streams, args []string) int { return routesSync(s, "routes sync", args, false) }
func runRoutesDiff(s *streams, args []string) int { return routesSync(s, "routes diff", args, true) }

func routesSync(s *streams, name string, args []string, diff bool) int {
	var f routeFlags
	fs := newRouteFlags(s, name, &f, true)
	if code, ok := parse(fs, &f.common, args); !ok {
		return code
	}
	f.opts.Test = f.Test || diff
	f.Test = f.opts.Test
	if err := f.check(); err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	data, err := saltio.ReadInput(f.nodesFile, s.Stdin)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	nodes, err := cluster.ParseNodeList(data)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	record := f.record != "" && !f.opts.Test
	if record {
		// The watcher reconciles from the record under the same lock: it
		// never acts on the list this sync is replacing.
		unlock, err := routes.LockRecord(f.record)
		if err != nil {
			return saltio.Fail(s.Stdout, s.Stderr, fmt.Errorf("--record %s: %w", f.record, err))
		}
		defer unlock()
	}
	if f.record != "" && f.revision > 0 {
		// Read under the lock: the sync that wrote it may be newer.
		if prev, err := routes.ReadRecord(f.record); err == nil && prev.Supersedes(f.revision) {
			return emit(s, &f.common, saltio.Result{
				Result:  saltio.Bool(true),
				Changes: map[string]any{},
				Comment: fmt.Sprintf("routes left as they are: %s holds the node list of plan revision %d, newer than this one's %d (this run's pillar predates a node's addition or removal)", f.record, prev.Revision, f.revision),
			}, nil)
		}
	}
	conn, err := routes.Open(f.opts)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	defer conn.Close()
	local, err := conn.LocalAddrs()
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	desired, err := routes.Desired(nodes, f.self, local)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	rep, err := conn.Sync(desired)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	if record {
		rec := routes.Record{Self: f.self, Protocol: f.opts.Protocol, Table: f.opts.Table, Plain: f.opts.Plain, Nodes: nodes, Revision: f.revision}
		if _, err := routes.WriteRecord(f.record, rec); err != nil {
			return saltio.Fail(s.Stdout, s.Stderr, fmt.Errorf("the routes are synced but not recorded for the watcher: --record %s: %w", f.record, err))
		}
	}
	if f.protosDir != "" && !f.opts.Test {
		if _, err := routes.RegisterProtocolName(f.protosDir, f.opts.Protocol); err != nil {
			fmt.Fprintf(s.Stderr, "warning: registering the protocol name in %s: %v (routes show as proto %d)\n", f.protosDir, err, f.opts.Protocol)
		}
	}
	return emitReport(s, &f.common, rep)
}

func emitReport(s *streams, c *common, rep *routes.Report) int {
	changes := map[string]any{}
	for k, v := range map[string][]routes.Route{"added": rep.Added, "replaced": rep.Replaced, "removed": rep.Removed} {
		if len(v) > 0 {
			changes[k] = v
		}
	}
	verb := ""
	if c.Test {
		verb = "would be "
	}
	parts := []string{fmt.Sprintf("%d routes desired, %d present", rep.Desired, rep.Present)}
	if rep.Changed() {
		parts = append(parts, fmt.Sprintf("%d %sadded, %d %sreplaced, %d %sremoved", len(rep.Added), verb, len(rep.Replaced), verb, len(rep.Removed), verb))
	} else {
		parts = append(parts, "no change")
	}
	if n := len(rep.Failed); n > 0 {
		parts = append(parts, fmt.Sprintf("%d failed (the next run retries them)", n))
	}
	if n := len(rep.Conflicts); n > 0 {
		parts = append(parts, fmt.Sprintf("%d conflict with routes kubesalt does not own (left alone; remove them or sync with --adopt)", n))
	}
	failed := len(rep.Failed)+len(rep.Conflicts) > 0
	res := saltio.Result{
		Result:  saltio.Outcome(c.Test, rep.Changed(), failed),
		Changes: changes,
		Comment: strings.Join(parts, "; "),
		Data:    rep,
	}
	return emit(s, c, res, func(w io.Writer) {
		row(w, "ACTION", "DESTINATION", "VIA", "NODE", "DETAIL")
		for _, r := range rep.Added {
			row(w, "add", r.Dst, r.Via, r.Node, "")
		}
		for _, r := range rep.Replaced {
			row(w, "replace", r.Dst, r.Via, r.Node, "")
		}
		for _, r := range rep.Removed {
			row(w, "remove", r.Dst, r.Via, r.Node, "")
		}
		for _, x := range rep.Failed {
			row(w, "FAILED", x.Route.Dst, x.Route.Via, x.Route.Node, x.Error)
		}
		for _, x := range rep.Conflicts {
			row(w, "CONFLICT", x.Route.Dst, x.Route.Via, x.Route.Node, "existing: "+x.Existing)
		}
	})
}

// openRoutes parses the flags of a command without a node list and opens
// the namespace's routing; it returns an exit code when it cannot.
func openRoutes(s *streams, name string, f *routeFlags, args []string) (*routes.Conn, int) {
	fs := newRouteFlags(s, name, f, false)
	if code, ok := parse(fs, &f.common, args); !ok {
		return nil, code
	}
	f.opts.Test = f.Test
	if err := f.check(); err != nil {
		return nil, saltio.Fail(s.Stdout, s.Stderr, err)
	}
	conn, err := routes.Open(f.opts)
	if err != nil {
		return nil, saltio.Fail(s.Stdout, s.Stderr, err)
	}
	return conn, 0
}

func runRoutesList(s *streams, args []string) int {
	var f routeFlags
	conn, code := openRoutes(s, "routes list", &f, args)
	if conn == nil {
		return code
	}
	defer conn.Close()
	rs, err := conn.List()
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	res := saltio.Result{Result: saltio.Bool(true), Comment: fmt.Sprintf("%d routes owned by kubesalt (protocol %d)", len(rs), f.opts.Protocol), Data: map[string]any{"routes": rs}}
	return emit(s, &f.common, res, func(w io.Writer) {
		row(w, "DESTINATION", "VIA")
		for _, r := range rs {
			row(w, r.Dst, r.Via)
		}
	})
}

func runRoutesFlush(s *streams, args []string) int {
	var f routeFlags
	conn, code := openRoutes(s, "routes flush", &f, args)
	if conn == nil {
		return code
	}
	defer conn.Close()
	rep, err := conn.Flush()
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	return emitReport(s, &f.common, rep)
}

// runRoutesWatch is the watcher (internal/routes, watch.go): a
// long-running command, so no JSON; its log lines go to standard error.
func runRoutesWatch(s *streams, args []string) int {
	o := routes.WatchOptions{Log: s.Stderr}
	fs := pflag.NewFlagSet("kubesalt routes watch", pflag.ContinueOnError)
	fs.SetOutput(s.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(s.Stderr, "usage: kubesalt routes watch [--record FILE] [--netns NS] [flags]")
		fmt.Fprintln(s.Stderr, "Reconciles kubesalt's routes on every route, link and address event, with the node list")
		fmt.Fprintln(s.Stderr, "the last `routes sync --record FILE` kept. Routes it does not own are never touched.")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Netns, "netns", "", "watch in this named network namespace (ip netns)")
	fs.StringVar(&o.Record, "record", routes.DefaultRecord, "the node list and options `routes sync --record` kept")
	fs.DurationVar(&o.Debounce, "debounce", routes.DefaultDebounce, "quiet time after an event before reconciling")
	fs.DurationVar(&o.MaxDelay, "max-delay", routes.DefaultMaxDelay, "longest wait from an event to its reconcile during a burst")
	fs.DurationVar(&o.Resync, "resync", routes.DefaultResync, "reconcile this often without any event too (0: never)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return saltio.ExitBadInput
	}
	if fs.NArg() > 0 || o.Record == "" || o.Debounce <= 0 || o.Resync < 0 {
		fmt.Fprintf(s.Stderr, "error: routes watch takes no arguments, a --record file, a positive --debounce and a --resync of 0 or more (got %q, --record %q, --debounce %s, --resync %s)\n",
			fs.Args(), o.Record, o.Debounce, o.Resync)
		return saltio.ExitBadInput
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := routes.Watch(ctx, o); err != nil {
		fmt.Fprintln(s.Stderr, "error:", err)
		return saltio.ExitFailed
	}
	return 0
}
