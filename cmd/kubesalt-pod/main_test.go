package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/podserver"
	"github.com/kubesalt/kubesalt/internal/testenv"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binary builds kubesalt-pod as the Makefile does (static, trimpath) once
// per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kubesalt-pod-test-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "kubesalt-pod")
		cmd := exec.Command("go", "build", "-trimpath", "-o", builtBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// exitCode waits for cmd and returns its exit code, failing after d.
func exitCode(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s still running after %v", cmd.Path, d)
		return -1
	}
}

// waitHTTP GETs url until it answers 200 and decodes its JSON into v.
func waitHTTP(t *testing.T, url string, v any, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if err := json.Unmarshal(b, v); err != nil {
					t.Fatalf("GET %s: %v in %q", url, err, b)
				}
				return
			}
			err = fmt.Errorf("HTTP %d %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v after %v", url, err, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServeAnswersAndExitsZeroOnSIGTERM(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(binary(t), "serve", "--port", strconv.Itoa(port))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var w podserver.Whoami
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/whoami", port), &w, 10*time.Second)
	host, _ := os.Hostname()
	if w != (podserver.Whoami{Pod: host, IP: "127.0.0.1", Caller: "127.0.0.1"}) {
		t.Errorf("whoami = %+v, want pod %s, ip and caller 127.0.0.1", w, host)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, 10*time.Second); code != 0 {
		t.Errorf("serve exited %d on SIGTERM, want 0", code)
	}
}

func TestServeRejectsBadPort(t *testing.T) {
	out, err := exec.Command(binary(t), "serve", "--port", "70000").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--port 70000: give a port from 1 to 65535") {
		t.Errorf("serve --port 70000: %v %q, want exit 2 naming the flag", err, out)
	}
}

// TestPauseIsDefault runs the binary as argv[0] "pause" and with no
// arguments: both pause until SIGTERM and exit 0.
func TestPauseIsDefault(t *testing.T) {
	link := filepath.Join(t.TempDir(), "pause")
	if err := os.Symlink(binary(t), link); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{{link}, {binary(t)}, {link, "whatever"}} {
		cmd := exec.Command(argv[0], argv[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Still running: it is pausing, not printing usage.
		time.Sleep(300 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Fatalf("%v exited at once, want it to pause", argv)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if code := exitCode(t, cmd, 5*time.Second); code != 0 {
			t.Errorf("%v exited %d on SIGTERM, want 0", argv, code)
		}
	}
}

// zombiesOf lists the children of pid, and those in state Z. Orphans are
// reparented to any thread of the reaper, so every thread's list counts.
func zombiesOf(pid int) (children, zombies []int) {
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var b []byte
	for _, l := range lists {
		c, _ := os.ReadFile(l)
		b = append(append(b, c...), ' ')
	}
	for _, f := range strings.Fields(string(b)) {
		c, _ := strconv.Atoi(f)
		children = append(children, c)
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c))
		if err == nil && strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))[0] == "Z" {
			zombies = append(zombies, c)
		}
	}
	return
}

// TestPauseReapsOrphansAsPID1 runs pause as PID 1 of a new pid namespace
// and orphans processes into it: they must not stay zombies.
func TestPauseReapsOrphansAsPID1(t *testing.T) {
	testenv.Root(t, "make a pid namespace (unshare --pid)")
	testenv.Tools(t, "apt-get install util-linux", "unshare", "nsenter")
	cmd := exec.Command("unshare", "--pid", "--fork", "--kill-child", binary(t), "pause")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// pause is unshare's only child.
	var pause int
	for deadline := time.Now().Add(5 * time.Second); pause == 0; time.Sleep(20 * time.Millisecond) {
		if c, _ := zombiesOf(cmd.Process.Pid); len(c) == 1 {
			pause = c[0]
		} else if time.Now().After(deadline) {
			t.Fatal("pause did not start under unshare")
		}
	}
	// sh forks three sleeps and exits: they are reparented to PID 1. (Their
	// output goes to /dev/null, or nsenter's output pipe would stay open
	// until they end.)
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(pause), "-p", "--", "sh", "-c",
		"for i in 1 2 3; do sleep 1 </dev/null >/dev/null 2>&1 & done; exit 0").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v %s", err, out)
	}
	if c, _ := zombiesOf(pause); len(c) == 0 {
		t.Fatal("no orphan was reparented to pause; the test proves nothing")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, z := zombiesOf(pause)
		if len(c) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pause (pid %d) still has children %v, zombies %v: not reaped", pause, c, z)
		}
	}
	// SIGTERM to PID 1 of a namespace only arrives when it is handled.
	syscall.Kill(pause, syscall.SIGTERM)
	if code := exitCode(t, cmd, 5*time.Second); code != 0 {
		t.Errorf("unshare … pause exited %d on SIGTERM, want 0", code)
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary(t), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "kubesalt-pod dev go1.") {
		t.Errorf("version: %v %q", err, out)
	}
}
