package main

import (
	"context"

	"github.com/kubesalt/kubesalt/internal/cli"
	"github.com/kubesalt/kubesalt/internal/pause"
)

// runPause ignores its arguments: the runtime may pass none or some.
func runPause(_ *cli.Streams, _ []string) int {
	pause.Run(context.Background())
	return 0
}
