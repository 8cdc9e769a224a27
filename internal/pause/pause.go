// Package pause is what a pod sandbox runs: it holds the pod's namespaces
// open, and as PID 1 of a shared pid namespace it reaps the zombies that
// are reparented to it.
package pause

import (
	"context"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// Run reaps every child that exits until SIGTERM or SIGINT arrives (it
// returns that signal) or ctx is done (it returns nil).
func Run(ctx context.Context) os.Signal {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	defer signal.Stop(ch)
	// Children that exited before the handler was in place.
	Reap()
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-ch:
			if s != unix.SIGCHLD {
				return s
			}
			// Signals coalesce: one SIGCHLD may stand for many children.
			Reap()
		}
	}
}

// Reap waits for every child that has exited, without blocking, and
// returns how many it reaped.
func Reap() int {
	n := 0
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return n
		}
		n++
	}
}
