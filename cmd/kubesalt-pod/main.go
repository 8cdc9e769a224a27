// Command kubesalt-pod is the one file of the lab's two local images: the
// pod sandbox's pause process (registry.k8s.io/pause) and the smoke test's
// HTTP server (kubesalt.local/kubesalt-pod). It also writes those images,
// with itself inside, as OCI tarballs for `ctr images import`.
//
// It is static (CGO_ENABLED=0): the images hold nothing else.
package main

import (
	"os"
	"path/filepath"

	"github.com/kubesalt/kubesalt/internal/cli"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

var commands = []cli.Command{
	{Name: "pause", Summary: "hold the pod's namespaces; reap zombies as PID 1; exit 0 on SIGTERM (the default, also as argv[0] pause)", Run: runPause},
	{Name: "serve", Summary: "HTTP server: /whoami, /fetch?url=, /healthz", Run: runServe},
	{Name: "image", Summary: "write the pause or the serve image (this binary inside), or the coredns image (--from), as an OCI tarball", Run: runImage},
	{Name: "dnsload", Summary: "ask one DNS server one name for a while; print the queries per second it answered", Run: runDNSLoad},
	{Name: "version", Summary: "print the version", Run: runVersion},
}

func main() {
	os.Exit(run(&cli.Streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, os.Args))
}

func run(s *cli.Streams, argv []string) int {
	if len(argv) < 2 || filepath.Base(argv[0]) == "pause" {
		return runPause(s, nil)
	}
	return cli.Run("kubesalt-pod", commands, s, argv[1:])
}
