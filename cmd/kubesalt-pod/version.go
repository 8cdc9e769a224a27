package main

import (
	"fmt"
	"runtime"

	"github.com/kubesalt/kubesalt/internal/cli"
)

func runVersion(s *cli.Streams, _ []string) int {
	fmt.Fprintf(s.Stdout, "kubesalt-pod %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
