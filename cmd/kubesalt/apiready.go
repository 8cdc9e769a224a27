package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kubesalt/kubesalt/internal/nodes"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// --if-api-ready: a highstate runs the commands that talk to the API before
// the control plane answers (a first run, a master coming back). They then
// succeed doing nothing, and a later run does the work. The check is here,
// not in a state's onlyif: Salt 3008 loads every state module for the first
// onlyif of a state run (about a second of CPU on each minion).

// apiReadyTimeout bounds the /readyz question, whatever the command's own
// timeout.
const apiReadyTimeout = 10 * time.Second

// apiNotReady says why the API server behind kubeconfig cannot be used
// yet (the kubeconfig is not written, /readyz does not answer ok), or ""
// when it is ready. A kubeconfig that is there but wrong is left to the
// command, which reports it as bad input.
func apiNotReady(kubeconfig string) string {
	if fi, err := os.Stat(kubeconfig); err != nil || fi.Size() == 0 {
		return fmt.Sprintf("%s is not written yet", kubeconfig)
	}
	cfg, err := nodes.LoadKubeconfig(kubeconfig)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiReadyTimeout)
	defer cancel()
	if _, err := nodes.NewClient(cfg, apiReadyTimeout).Get(ctx, "/readyz"); err != nil {
		return fmt.Sprintf("the API server %s is not ready (%v)", cfg.Server, err)
	}
	return ""
}

// skipUnlessAPIReady emits the success that does nothing when the API is
// not ready, and says whether it did.
func skipUnlessAPIReady(s *streams, c *common, kubeconfig string) (int, bool) {
	why := apiNotReady(kubeconfig)
	if why == "" {
		return 0, false
	}
	res := saltio.Result{Result: saltio.Bool(true), Comment: why + ": nothing done (--if-api-ready); a later run does it"}
	return emit(s, c, res, nil), true
}
