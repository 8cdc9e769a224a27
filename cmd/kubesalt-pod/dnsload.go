package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kubesalt/kubesalt/internal/cli"
	"github.com/kubesalt/kubesalt/internal/dnsload"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// dnsload: the DNS benchmark's load, run inside a pod (kubectl exec).
func runDNSLoad(s *cli.Streams, args []string) int {
	var o cli.Output
	var d dnsload.Options
	fs := cli.NewFlags(s, "kubesalt-pod dnsload", &o)
	fs.StringVar(&d.Server, "server", "", "the DNS server, host:port")
	fs.StringVar(&d.Name, "name", "", "the name to ask for")
	fs.StringVar(&d.Type, "type", "A", "A or AAAA")
	fs.DurationVar(&d.Duration, "duration", 5*time.Second, "how long to send")
	fs.IntVar(&d.Concurrency, "concurrency", 8, "queries in flight")
	fs.DurationVar(&d.Timeout, "timeout", time.Second, "how long to wait for each answer")
	if code, ok := cli.Parse(fs, &o, args); !ok {
		return code
	}
	if err := d.Check(); err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, saltio.BadInput(err))
	}
	r, err := dnsload.Run(context.Background(), d)
	if err != nil {
		return saltio.Fail(s.Stdout, s.Stderr, err)
	}
	res := saltio.Result{Result: saltio.Bool(true), Data: r,
		Comment: fmt.Sprintf("%s answered %.0f queries/s for %s (%d of %d, %d timed out)", r.Server, r.QPS, r.Name, r.Answered, r.Sent, r.Timeouts)}
	return cli.Emit(s, &o, res, func(w io.Writer) {
		cli.Row(w, "SERVER", "NAME", "QPS", "ANSWERED", "SENT", "P50 MS", "P99 MS")
		cli.Row(w, r.Server, r.Name, fmt.Sprintf("%.0f", r.QPS), r.Answered, r.Sent, r.P50ms, r.P99ms)
	})
}
