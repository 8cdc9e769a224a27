package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/kubesalt/kubesalt/internal/cli"
	"github.com/kubesalt/kubesalt/internal/podserver"
)

func runServe(s *cli.Streams, args []string) int {
	fs := pflag.NewFlagSet("kubesalt-pod serve", pflag.ContinueOnError)
	fs.SetOutput(s.Stderr)
	port := fs.Int("port", 8080, "TCP port to listen on, every address")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *port < 1 || *port > 65535 {
		fmt.Fprintf(s.Stderr, "--port %d: give a port from 1 to 65535\n", *port)
		return 2
	}
	host, err := os.Hostname()
	if err != nil {
		fmt.Fprintln(s.Stderr, "error: hostname:", err)
		return 1
	}
	l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(s.Stderr, "error:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := log.New(s.Stderr, "", log.LstdFlags)
	logger.Printf("pod %s serving on %s", host, l.Addr())
	if err := podserver.Serve(ctx, l, &podserver.Server{Hostname: host, Log: logger}); err != nil {
		fmt.Fprintln(s.Stderr, "error:", err)
		return 1
	}
	logger.Print("shut down")
	return 0
}
