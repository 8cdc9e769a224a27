package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/kubesalt/kubesalt/internal/supervise"
)

// runSupervise keeps a daemon running (the formula's process manager): a
// long-running command, so no JSON; its log lines go to standard error.
func runSupervise(s *streams, args []string) int {
	c := supervise.Config{Log: s.Stderr, Stdout: s.Stdout, Stderr: s.Stderr}
	fs := pflag.NewFlagSet("kubesalt supervise", pflag.ContinueOnError)
	fs.SetOutput(s.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(s.Stderr, "usage: kubesalt supervise --name NAME [--pidfile FILE] [flags] -- COMMAND [ARG...]")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Name, "name", "", "the daemon's name, for the log")
	fs.StringVar(&c.PidFile, "pidfile", "", "write the supervisor's pid here (stopping it stops the daemon)")
	fs.DurationVar(&c.Backoff.Min, "backoff-min", time.Second, "wait before the first restart")
	fs.DurationVar(&c.Backoff.Max, "backoff-max", 30*time.Second, "longest wait between restarts (the wait doubles with each quick exit)")
	fs.DurationVar(&c.Backoff.Stable, "stable-after", time.Minute, "a run this long resets the wait to --backoff-min")
	fs.DurationVar(&c.StopTimeout, "stop-timeout", 8*time.Second, "from SIGTERM to SIGKILL of the daemon when stopping")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return saltio.ExitBadInput
	}
	c.Argv = fs.Args()
	if err := c.Validate(); err != nil {
		fmt.Fprintln(s.Stderr, "error:", err)
		return saltio.ExitBadInput
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := supervise.Run(ctx, c); err != nil {
		fmt.Fprintln(s.Stderr, "error:", err)
		return saltio.ExitFailed
	}
	return 0
}
