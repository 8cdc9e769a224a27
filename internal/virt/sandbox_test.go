package virt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/libvirtd"
	"github.com/kubesalt/kubesalt/internal/testenv"
)

// sandbox is a real libvirtd (with virtlogd) that a test started in its own
// network and mount namespaces, with its own configuration, state and
// socket. Cleanup stops every process in the namespace, deletes the
// namespace and the directory.
type sandbox struct {
	Dir    string
	NS     string
	URI    string
	Pool   string // a directory pool's path for the test's volumes
	daemon libvirtd.Daemon
	cmd    *exec.Cmd
	exited chan struct{}
}

// needRealLibvirt skips unless the test can run a real libvirtd.
func needRealLibvirt(t *testing.T) {
	t.Helper()
	testenv.Root(t, "start libvirtd in its own network namespace")
	need(t, "libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img", "dnsmasq", "iptables", "ip", "unshare", "isoinfo")
}

func writeFiles(t *testing.T, files map[string]string) {
	t.Helper()
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func startLibvirtd(t *testing.T) *sandbox {
	t.Helper()
	dir, err := os.MkdirTemp("", "kubesalt-libvirtd-")
	if err != nil {
		t.Fatal(err)
	}
	d, err := libvirtd.Prepare(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &sandbox{Dir: dir, NS: fmt.Sprintf("ksvirt%d", os.Getpid()), Pool: d.Pool(), URI: d.URI(), daemon: d, exited: make(chan struct{})}
	t.Cleanup(s.stop)
	if out, err := exec.Command("ip", "netns", "add", s.NS).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v %s", s.NS, err, out)
	}
	log, err := os.Create(filepath.Join(dir, "sandbox.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	s.cmd = exec.Command("ip", append([]string{"netns", "exec", s.NS}, d.Argv()...)...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		h, err := Connect(s.URI)
		if err == nil {
			h.Close()
			return s
		}
		select {
		case <-s.exited:
			t.Fatalf("libvirtd exited: %s", s.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("libvirtd did not answer on %s within 60s: %v\n%s", s.URI, err, s.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// logs returns the daemons' output and logs, for failure messages.
func (s *sandbox) logs() string { return s.daemon.Logs() }

// inNS runs a command inside the sandbox's network namespace.
func (s *sandbox) inNS(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", s.NS}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", s.NS, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (s *sandbox) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	// What is left in the namespace was started by this test (virtlogd,
	// dnsmasq, guests that were not destroyed): stop it by pid.
	for i := 0; i < 20; i++ {
		out, _ := exec.Command("ip", "netns", "pids", s.NS).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				sig := syscall.SIGTERM
				if i > 10 {
					sig = syscall.SIGKILL
				}
				syscall.Kill(pid, sig)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	exec.Command("ip", "netns", "del", s.NS).Run()
	os.RemoveAll(s.Dir)
}
