package pause

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// state is the process state letter of pid ("Z" for a zombie), or "" when
// the process is gone.
func state(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndex(s, ")")+1:])[0]
}

// TestRunReapsChildrenAndStopsOnSIGTERM starts children nobody waits for
// and checks Run reaps them (they stay zombies otherwise), then that
// SIGTERM ends Run.
func TestRunReapsChildrenAndStopsOnSIGTERM(t *testing.T) {
	var pids []int
	for i := 0; i < 5; i++ {
		pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
		if err != nil {
			t.Skipf("cannot start /bin/true: %v", err)
		}
		pids = append(pids, pid)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan os.Signal, 1)
	go func() { got <- Run(ctx) }()

	late, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, late)
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for state(pid) != "" {
			if time.Now().After(deadline) {
				t.Fatalf("child %d is still there in state %q: not reaped", pid, state(pid))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The handler is in place (it reaped), so SIGTERM goes to Run.
	if err := unix.Kill(os.Getpid(), unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != unix.SIGTERM {
			t.Errorf("Run returned %v, want SIGTERM", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after SIGTERM")
	}
}
