package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubesalt/kubesalt/internal/podserver"
	"github.com/kubesalt/kubesalt/internal/testenv"
)

// containerd is a private containerd started by a test: its own root, state
// and socket, so it touches nothing of a containerd the machine may run.
type containerd struct {
	t    *testing.T
	dir  string // root and state live here
	sock string
	id   string // random, unique to this containerd: in its socket and container ids
	cmd  *exec.Cmd
	log  *os.File
}

// startContainerd starts containerd and registers a cleanup that removes
// every trace of it: tasks, shims, mounts under dir and the sockets.
func startContainerd(t *testing.T) *containerd {
	t.Helper()
	testenv.Root(t, "run containerd")
	testenv.Tools(t, "apt-get install containerd runc", "containerd", "ctr", "runc")
	dir := t.TempDir()
	rnd := make([]byte, 4)
	rand.Read(rnd)
	// Unix socket paths are limited to 108 bytes: t.TempDir() can be longer.
	id := hex.EncodeToString(rnd)
	c := &containerd{t: t, dir: dir, id: id, sock: "/run/ksp-" + id + ".sock"}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc")
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.log = log
	c.cmd = exec.Command("containerd", "--config", cfg)
	c.cmd.Stdout, c.cmd.Stderr = log, log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := c.ctr("version"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s: %v\n%s", c.sock, err, c.logTail())
		}
	}
	return c
}

func (c *containerd) logTail() string {
	b, _ := os.ReadFile(c.log.Name())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// ctrCmd is `ctr --address <sock> -n k8s.io args...`.
func (c *containerd) ctrCmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ctr", append([]string{"--address", c.sock, "-n", "k8s.io"}, args...)...)
}

func (c *containerd) ctr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.ctrCmd(ctx, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (c *containerd) cleanup() {
	t := c.t
	// Tasks and containers first, while containerd can still clean up
	// after them (runc state, cgroups, rootfs mounts).
	if out, err := c.ctr("task", "ls", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			c.ctr("task", "kill", "-s", "SIGKILL", id)
			time.Sleep(200 * time.Millisecond)
			c.ctr("task", "delete", "--force", id)
		}
	}
	if out, err := c.ctr("containers", "ls", "-q"); err == nil {
		for _, id := range strings.Fields(out) {
			c.ctr("containers", "delete", id)
		}
	}
	// The shims' sockets are under /run/containerd/s; their address files
	// are in the bundles under our state dir.
	shimSocks, _ := filepath.Glob(filepath.Join(c.dir, "state", "io.containerd.runtime.v2.task", "*", "*", "address"))
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	c.log.Close()
	// Shims run in their own session: find ours by the socket they were
	// given (-address <sock>).
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), "containerd-shim") {
			continue
		}
		if args := strings.Split(string(b), "\x00"); containsPair(args, "-address", c.sock) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			t.Logf("killing leftover shim %d", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, f := range shimSocks {
		if b, err := os.ReadFile(f); err == nil {
			os.Remove(strings.TrimPrefix(strings.TrimSpace(string(b)), "unix://"))
		}
	}
	for _, m := range mountsUnder(c.dir) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", m, err)
		}
	}
	os.Remove(c.sock)
	os.Remove(c.sock + ".ttrpc")
	// The containers' cgroups (under /ksp-<id> in every hierarchy),
	// deepest first; rmdir fails on one still in use, which is reported.
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/ksp-" + c.id)
	more, _ := filepath.Glob("/sys/fs/cgroup/*/ksp-" + c.id + "/*")
	for _, d := range append(more, cgs...) {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			if err := os.Remove(d); err != nil {
				t.Errorf("removing cgroup %s: %v", d, err)
			}
		}
	}
}

// run is `ctr run --rm` of ref as container cid, in the host's network
// namespace or a new one, in a cgroup of this containerd's own (ctr's
// default /k8s.io/<cid> has a parent shared with any other containerd).
func (c *containerd) run(netHost bool, ref, cid string, args ...string) []string {
	a := []string{"run", "--rm", "--cgroup", "/ksp-" + c.id + "/" + cid}
	if netHost {
		a = append(a, "--net-host")
	}
	return append(append(a, ref, cid), args...)
}

func containsPair(args []string, k, v string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == k && args[i+1] == v {
			return true
		}
	}
	return false
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var ms []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			ms = append(ms, fields[4])
		}
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i]) > len(ms[j]) })
	return ms
}

// waitTask waits until ctr task ls shows id RUNNING.
func (c *containerd) waitTask(id string) {
	c.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, _ := c.ctr("task", "ls")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == id && f[2] == "RUNNING" {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("task %s is not RUNNING after 30s: %s\n%s", id, out, c.logTail())
		}
	}
}

// TestContainerdImportAndRun imports both images, built by the real binary,
// into a real containerd and runs them with runc: the version one-shot,
// the server (answers, exits 0 on SIGTERM) and pause (exits 0 on SIGTERM
// as the container's PID 1).
func TestContainerdImportAndRun(t *testing.T) {
	c := startContainerd(t)
	bin := binary(t)
	tmp := t.TempDir()
	const pauseRef, serveRef = "registry.k8s.io/pause:3.10", "kubesalt.local/kubesalt-pod:test"
	pauseTar, serveTar := filepath.Join(tmp, "pause.tar"), filepath.Join(tmp, "serve.tar")
	for _, args := range [][]string{
		{"image", "--kind", "pause", "--ref", pauseRef, "--file", pauseTar},
		{"image", "--kind", "serve", "--ref", serveRef, "--file", serveTar},
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("kubesalt-pod %v: %v\n%s", args, err, out)
		}
	}
	for _, tar := range []string{pauseTar, serveTar} {
		if out, err := c.ctr("images", "import", tar); err != nil {
			t.Fatalf("%v\n%s", err, c.logTail())
		} else {
			t.Logf("%s", out)
		}
	}
	out, err := c.ctr("images", "ls", "-q")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{pauseRef, serveRef} {
		if !strings.Contains("\n"+out, "\n"+ref+"\n") {
			t.Fatalf("ctr images ls -q does not list %s:\n%s", ref, out)
		}
	}
	suffix := c.id

	t.Run("version", func(t *testing.T) {
		out, err := c.ctr(c.run(false, serveRef, "ksp-version-"+suffix, "/kubesalt-pod", "version")...)
		if err != nil {
			t.Fatalf("running a container: %v\n%s", err, c.logTail())
		}
		if !strings.HasPrefix(out, "kubesalt-pod dev go1.") {
			t.Errorf("kubesalt-pod version in the container printed %q", out)
		}
	})

	t.Run("serve", func(t *testing.T) {
		id := "ksp-serve-" + suffix
		port := freePort(t)
		var stdout bytes.Buffer
		// The image's own entrypoint and cmd, with another port.
		run := c.ctrCmd(context.Background(), c.run(true, serveRef, id, "/kubesalt-pod", "serve", "--port", strconv.Itoa(port))...)
		run.Stdout, run.Stderr = &stdout, &stdout
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		defer run.Process.Kill()
		var w podserver.Whoami
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/whoami", port), &w, 30*time.Second)
		if w.Caller != "127.0.0.1" || w.IP != "127.0.0.1" || w.Pod == "" {
			t.Errorf("whoami from the container: %+v", w)
		}
		if _, err := c.ctr("task", "kill", "-s", "SIGTERM", id); err != nil {
			t.Fatal(err)
		}
		if code := exitCode(t, run, 20*time.Second); code != 0 {
			t.Errorf("the serve container exited %d on SIGTERM, want 0\n%s", code, stdout.String())
		}
	})

	t.Run("pause", func(t *testing.T) {
		id := "ksp-pause-" + suffix
		// The image's entrypoint /pause: pause by its argv[0].
		run := c.ctrCmd(context.Background(), c.run(false, pauseRef, id)...)
		var stdout bytes.Buffer
		run.Stdout, run.Stderr = &stdout, &stdout
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		defer run.Process.Kill()
		c.waitTask(id)
		if _, err := c.ctr("task", "kill", "-s", "SIGTERM", id); err != nil {
			t.Fatal(err)
		}
		if code := exitCode(t, run, 20*time.Second); code != 0 {
			t.Errorf("the pause container exited %d on SIGTERM, want 0\n%s", code, stdout.String())
		}
	})
}
