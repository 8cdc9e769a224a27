// Package supervise keeps one daemon running where no init system does (the
// formula's `process` service manager): it runs the daemon as its child,
// starts it again when it exits, with an exponential back-off, and takes it
// down when told to stop. What systemd's Restart=always does for a unit.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
)

// Backoff is the wait before each restart: Min after the first exit,
// doubling with every exit that follows soon, never more than Max; a child
// that ran for Stable or longer counts as healthy, so its exit starts again
// from Min.
type Backoff struct {
	Min, Max, Stable time.Duration
}

// Next returns the wait before the next start, given the last wait (0
// before any restart) and how long the child ran.
func (b Backoff) Next(last, ran time.Duration) time.Duration {
	if last == 0 || ran >= b.Stable {
		return min(b.Min, b.Max)
	}
	return min(2*last, b.Max)
}

// Config is one supervised daemon.
type Config struct {
	Name        string        // for the log
	Argv        []string      // the child's command line
	PidFile     string        // the supervisor's pid goes here ("" = none)
	Backoff     Backoff       // restart pacing
	StopTimeout time.Duration // from SIGTERM to SIGKILL when stopping
	Log         io.Writer     // the supervisor's own lines (each exit and restart)
	Stdout      io.Writer     // the child's output
	Stderr      io.Writer
	// Started is called with each child's pid (tests watch restarts with it).
	Started func(pid int)
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("--name is empty: name the daemon (for the log)")
	case len(c.Argv) == 0:
		return errors.New("no command: give the daemon's command line after --")
	case c.Backoff.Min <= 0 || c.Backoff.Max < c.Backoff.Min:
		return fmt.Errorf("--backoff-min %s / --backoff-max %s: both positive, max not below min", c.Backoff.Min, c.Backoff.Max)
	case c.Backoff.Stable <= 0:
		return fmt.Errorf("--stable-after %s: give a positive duration", c.Backoff.Stable)
	case c.StopTimeout <= 0:
		return fmt.Errorf("--stop-timeout %s: give a positive duration", c.StopTimeout)
	}
	return nil
}

// Run supervises until ctx is done (the caller cancels it on SIGTERM or
// SIGINT), then stops the child: SIGTERM to its process group, SIGKILL
// after StopTimeout. It returns nil after a stop, an error only when the
// child cannot be started at all the first time (a wrong path: restarting
// would not help) or the pid file cannot be written.
func Run(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.PidFile != "" {
		if err := atomicfile.WriteFile(c.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
		defer removeIfOurs(c.PidFile)
	}
	var wait time.Duration
	for restarts := 0; ; restarts++ {
		start := time.Now()
		exited, pid, err := c.start()
		if err != nil {
			if restarts == 0 {
				return fmt.Errorf("start %s: %w", c.Argv[0], err)
			}
			fmt.Fprintf(c.Log, "supervise %s: start failed: %v\n", c.Name, err)
		} else {
			fmt.Fprintf(c.Log, "supervise %s: started pid %d (start %d)\n", c.Name, pid, restarts+1)
			select {
			case err = <-exited:
			case <-ctx.Done():
				c.stop(pid, exited)
				return nil
			}
		}
		ran := time.Since(start)
		wait = c.Backoff.Next(wait, ran)
		fmt.Fprintf(c.Log, "supervise %s: exited (%s) after %s; restarting in %s\n", c.Name, describe(err), ran.Round(time.Millisecond), wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
	}
}

// start runs the child in a process group of its own (so a stop reaches
// what it started) that dies with the supervisor (Pdeathsig: a SIGKILL of
// the supervisor takes the child along). The channel gets Wait's error.
func (c Config) start() (<-chan error, int, error) {
	started := make(chan error, 1)
	exited := make(chan error, 1)
	var pid int
	go func() {
		// Pdeathsig fires when the thread that forked the child ends, not
		// the process: keep this goroutine on its thread until the child
		// is gone.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
		cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		pid = cmd.Process.Pid
		started <- nil
		err := cmd.Wait()
		// What the child left in its group (a helper it forked) goes with it.
		syscall.Kill(-pid, syscall.SIGKILL)
		exited <- err
	}()
	if err := <-started; err != nil {
		return nil, 0, err
	}
	if c.Started != nil {
		c.Started(pid)
	}
	return exited, pid, nil
}

// stop sends SIGTERM to the child's group, and SIGKILL if it is still
// there after StopTimeout.
func (c Config) stop(pid int, exited <-chan error) {
	fmt.Fprintf(c.Log, "supervise %s: stopping pid %d\n", c.Name, pid)
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case err := <-exited:
		fmt.Fprintf(c.Log, "supervise %s: stopped (%s)\n", c.Name, describe(err))
	case <-time.After(c.StopTimeout):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
		fmt.Fprintf(c.Log, "supervise %s: killed after %s\n", c.Name, c.StopTimeout)
	}
}

func describe(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// removeIfOurs removes the pid file unless another supervisor has written
// its own pid there since.
func removeIfOurs(path string) {
	if b, err := os.ReadFile(path); err == nil && string(b) == strconv.Itoa(os.Getpid())+"\n" {
		os.Remove(path)
	}
}
