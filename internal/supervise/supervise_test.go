package supervise

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestBackoffNext(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 30 * time.Second, Stable: time.Minute}
	var got []time.Duration
	wait := time.Duration(0)
	for i := 0; i < 7; i++ {
		wait = b.Next(wait, 100*time.Millisecond) // quick exits
		got = append(got, wait)
	}
	want := "[1s 2s 4s 8s 16s 30s 30s]"
	if fmt.Sprint(got) != want {
		t.Errorf("quick exits: waits %v, want %s", got, want)
	}
	if w := b.Next(30*time.Second, 2*time.Minute); w != time.Second {
		t.Errorf("after a stable run: %s, want the minimum 1s", w)
	}
}

// TestMain lets the test binary be a supervisor of its own (HELPER), so a
// test can SIGKILL a real supervisor process.
func TestMain(m *testing.M) {
	if argv := os.Getenv("SUPERVISE_HELPER_ARGV"); argv != "" {
		err := Run(context.Background(), Config{Name: "helper", Argv: strings.Fields(argv), PidFile: os.Getenv("SUPERVISE_HELPER_PIDFILE"),
			Backoff: Backoff{Min: 10 * time.Millisecond, Max: 10 * time.Millisecond, Stable: time.Second}, StopTimeout: time.Second,
			Log: os.Stderr, Stdout: os.Stdout, Stderr: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// supervised runs Run in the background over argv and records each
// child's pid; stop cancels it and waits for Run to return.
type supervised struct {
	mu   sync.Mutex
	pids []int
	log  bytes.Buffer
	stop func() error
}

func (s *supervised) children() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.pids...)
}

func (s *supervised) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

type lockedWriter struct{ s *supervised }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.log.Write(p)
}

func supervise(t *testing.T, b Backoff, pidFile string, argv ...string) *supervised {
	t.Helper()
	s := &supervised{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Name: "test", Argv: argv, PidFile: pidFile, Backoff: b, StopTimeout: 2 * time.Second,
			Log: lockedWriter{s}, Stdout: lockedWriter{s}, Stderr: lockedWriter{s},
			Started: func(pid int) { s.mu.Lock(); s.pids = append(s.pids, pid); s.mu.Unlock() }})
	}()
	var once sync.Once
	var err error
	s.stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// waitFor polls cond for up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("after %s: %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// A child that exits at once is started again and again, each wait
// twice the last up to the cap, and every exit is logged.
func TestRestartsAnExitingChildWithBackoff(t *testing.T) {
	b := Backoff{Min: 40 * time.Millisecond, Max: 160 * time.Millisecond, Stable: time.Minute}
	var starts []time.Time
	var mu sync.Mutex
	s := &supervised{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Name: "quitter", Argv: []string{"sh", "-c", "exit 3"}, Backoff: b, StopTimeout: time.Second,
			Log: lockedWriter{s}, Stdout: lockedWriter{s}, Stderr: lockedWriter{s},
			Started: func(int) { mu.Lock(); starts = append(starts, time.Now()); mu.Unlock() }})
	}()
	waitFor(t, 5*time.Second, "6 starts", func() bool { mu.Lock(); defer mu.Unlock(); return len(starts) >= 6 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var gaps []time.Duration
	for i := 1; i < 6; i++ {
		gaps = append(gaps, starts[i].Sub(starts[i-1]))
	}
	// Waits 40, 80, 160, 160, 160 ms (plus the child's own run time).
	for i, want := range []time.Duration{40, 80, 160, 160, 160} {
		want *= time.Millisecond
		if gaps[i] < want || gaps[i] > want+150*time.Millisecond {
			t.Errorf("gap %d: %s, want about %s (all: %v)", i+1, gaps[i], want, gaps)
		}
	}
	if log := s.logText(); !strings.Contains(log, "exited (exit status 3)") || !strings.Contains(log, "restarting in 160ms") {
		t.Errorf("the log does not show the exits and waits:\n%s", log)
	}
}

// A child killed with SIGKILL is back within the first wait; the pid file
// holds the supervisor's pid all along, and is removed when it stops.
func TestRestartsAKilledChild(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "d.pid")
	s := supervise(t, Backoff{Min: 100 * time.Millisecond, Max: time.Second, Stable: time.Minute}, pidFile, "sleep", "60")
	waitFor(t, 5*time.Second, "the first start", func() bool { return len(s.children()) == 1 })
	if b, _ := os.ReadFile(pidFile); string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("pid file holds %q, want the supervisor's pid %d", b, os.Getpid())
	}
	first := s.children()[0]
	syscall.Kill(first, syscall.SIGKILL)
	took := waitFor(t, 5*time.Second, "a restart after kill -9", func() bool { return len(s.children()) == 2 })
	t.Logf("killed pid %d, pid %d started %s later", first, s.children()[1], took.Round(time.Millisecond))
	if !alive(s.children()[1]) {
		t.Errorf("the restarted child %d is not running", s.children()[1])
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if alive(s.children()[1]) {
		t.Errorf("child %d still runs after the stop", s.children()[1])
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after the stop: %v", err)
	}
	if !strings.Contains(s.logText(), "signal: killed") {
		t.Errorf("the log does not name the kill:\n%s", s.logText())
	}
}

// A stop takes down the child and what it forked (its process group); one
// that ignores SIGTERM is killed after the stop timeout.
func TestStopTakesTheChildAndItsGroupDown(t *testing.T) {
	dir := t.TempDir()
	grand := filepath.Join(dir, "grandchild.pid")
	s := supervise(t, Backoff{Min: time.Second, Max: time.Second, Stable: time.Minute}, "",
		"sh", "-c", "trap '' TERM; sleep 60 & echo $! > "+grand+"; wait; sleep 60")
	// The child may write the file before the supervisor has recorded its
	// pid: wait for both.
	waitFor(t, 5*time.Second, "the grandchild", func() bool {
		b, _ := os.ReadFile(grand)
		return strings.HasSuffix(string(b), "\n") && len(s.children()) == 1
	})
	b, _ := os.ReadFile(grand)
	gpid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	child := s.children()[0]
	start := time.Now()
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
	waitFor(t, 2*time.Second, "child and grandchild gone", func() bool { return !alive(child) && !alive(gpid) })
	if len(s.children()) != 1 {
		t.Errorf("started %d times, want once: a stop must not restart", len(s.children()))
	}
}

// The supervisor itself killed with SIGKILL (what the formula's
// stop-changed step falls back to) takes its child along: Pdeathsig.
func TestChildDiesWithAKilledSupervisor(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "s.pid")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SUPERVISE_HELPER_ARGV=sleep 60", "SUPERVISE_HELPER_PIDFILE="+pidFile)
	var out bytes.Buffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var child int
	waitFor(t, 5*time.Second, "the supervisor's child", func() bool {
		child = childOf(cmd.Process.Pid)
		return child != 0
	})
	if b, _ := os.ReadFile(pidFile); string(b) != strconv.Itoa(cmd.Process.Pid)+"\n" {
		t.Errorf("pid file %q, want %d", b, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitFor(t, 2*time.Second, fmt.Sprintf("child %d gone with its supervisor", child), func() bool { return !alive(child) })
}

// childOf finds a child process of parent.
func childOf(parent int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", parent, parent))
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			pid, _ := strconv.Atoi(f[0])
			return pid
		}
	}
	// The child may hang off another thread of the Go process.
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", parent))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", parent, task.Name()))
		if f := strings.Fields(string(b)); len(f) > 0 {
			pid, _ := strconv.Atoi(f[0])
			return pid
		}
	}
	return 0
}

// A command that does not exist is an error at once, not a restart loop.
func TestStartFailureIsAnError(t *testing.T) {
	err := Run(context.Background(), Config{Name: "x", Argv: []string{"/nonexistent/daemon"},
		Backoff: Backoff{Min: time.Second, Max: time.Second, Stable: time.Second}, StopTimeout: time.Second,
		Log: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/daemon") {
		t.Errorf("got %v, want an error naming the command", err)
	}
}
