package main

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/nstest"
	"github.com/kubesalt/kubesalt/internal/routes"
	"golang.org/x/sys/unix"
)

// buildKubesalt builds this command into a temp dir, for tests that need
// it as a process of its own (signals).
func buildKubesalt(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kubesalt")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// routes sync --record keeps what the watcher needs, only for an applied
// sync; `routes watch` run as its own process heals from it and ends on
// SIGTERM with exit 0, leaving the routes in place, the record's lock
// free and no process behind.
func TestRoutesWatchProcess(t *testing.T) {
	l := nstest.New(t)
	a := l.AddNode(netip.MustParsePrefix("192.168.170.10/24"), netip.MustParsePrefix("10.200.0.0/24"))
	l.AddNode(netip.MustParsePrefix("192.168.170.20/24"), netip.MustParsePrefix("10.200.1.0/24"))
	list := `{"nodes": [{"name": "a", "ips": ["192.168.170.10"], "pod_cidrs": ["10.200.0.0/24"]},
	                    {"name": "b", "ips": ["192.168.170.20"], "pod_cidrs": ["10.200.1.0/24"]}]}`
	record := filepath.Join(t.TempDir(), "state", "routes.json")

	if _, code, _ := call(t, list, "routes", "sync", "--netns", a.NS, "--record", record, "--test"); code != 0 {
		t.Fatalf("test-mode sync: exit %d", code)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("a test-mode sync wrote the record (%v)", err)
	}
	if r, code, _ := call(t, list, "routes", "sync", "--netns", a.NS, "--self", "a", "--record", record); code != 0 || len(r.Changes["added"]) == 0 {
		t.Fatalf("sync: %d %+v", code, r)
	}
	rec, err := routes.ReadRecord(record)
	if err != nil || rec.Self != "a" || rec.Protocol != 201 || rec.Table != 254 || len(rec.Nodes) != 2 {
		t.Fatalf("record %+v %v", rec, err)
	}
	st, _ := os.Stat(record)
	time.Sleep(10 * time.Millisecond)
	if _, code, _ := call(t, list, "routes", "sync", "--netns", a.NS, "--self", "a", "--record", record); code != 0 {
		t.Fatal("second sync failed")
	}
	if st2, _ := os.Stat(record); !st2.ModTime().Equal(st.ModTime()) {
		t.Error("an unchanged record was rewritten")
	}

	bin := buildKubesalt(t)
	var log bytes.Buffer
	cmd := exec.Command(bin, "routes", "watch", "--netns", a.NS, "--record", record)
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	time.Sleep(300 * time.Millisecond) // listening
	l.In(a.NS, "ip", "route", "del", "10.200.1.0/24")
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(l.In(a.NS, "ip", "route", "show", "proto", "201"), "10.200.1.0/24") {
		if time.Now().After(deadline) {
			t.Fatalf("the deleted route is not back within 2 s; log:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after SIGTERM: %v; log:\n%s", err, log.String())
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("still running 3 s after SIGTERM; log:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "stopping; the routes stay") {
		t.Errorf("log:\n%s", log.String())
	}
	if got := l.In(a.NS, "ip", "route", "show", "proto", "201"); !strings.Contains(got, "10.200.1.0/24") {
		t.Errorf("stopping the watcher removed its routes:\n%s", got)
	}
	f, err := os.Open(record + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Errorf("the record's lock is still held after the watcher ended: %v", err)
	}
	if err := syscall.Kill(cmd.Process.Pid, 0); err == nil {
		t.Error("the watcher's process is still there")
	}
	entries, _ := os.ReadDir(filepath.Dir(record))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "routes.json routes.json.lock" {
		t.Errorf("files beside the record: %v", names)
	}

	// Bad usage is exit 2 and says why.
	var out bytes.Buffer
	if code := run(&streams{Stdout: &out, Stderr: &out}, []string{"routes", "watch", "--debounce", "0s"}); code != 2 || !strings.Contains(out.String(), "positive --debounce") {
		t.Errorf("bad --debounce: %d %s", code, out.String())
	}
}
