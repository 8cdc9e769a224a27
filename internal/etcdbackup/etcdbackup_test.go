package etcdbackup

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/testenv"
)

func TestListAndExpired(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 0; i < 4; i++ {
		os.WriteFile(filepath.Join(dir, FileName("master-0", t0.Add(time.Duration(i)*time.Hour))), []byte("x"), 0o600)
	}
	// Not snapshots: a foreign file, a snapshot being written.
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, ".saving-"+FileName("master-0", t0)), nil, 0o600)
	list, err := List(dir)
	if err != nil || len(list) != 4 {
		t.Fatalf("List: %v %v", list, err)
	}
	if got := filepath.Base(list[0].Path); got != "etcd-master-0-20260102T060405Z.db" {
		t.Errorf("newest first: got %s", got)
	}
	exp := Expired(list, 3)
	if len(exp) != 1 || !exp[0].Taken.Equal(t0) {
		t.Errorf("Expired(keep 3) = %v, want the oldest only", exp)
	}
	if Expired(list, 4) != nil || Expired(list, 10) != nil {
		t.Error("nothing expires when the count is within keep")
	}
	if none, err := List(filepath.Join(dir, "missing")); err != nil || none != nil {
		t.Errorf("a missing directory: %v %v", none, err)
	}
}

func TestValidate(t *testing.T) {
	if err := (Client{Etcdctl: "etcdctl", Endpoints: "https://x:2379", Cert: "c"}).Validate(); err == nil || !strings.Contains(err.Error(), "--key") {
		t.Errorf("a cert without its key: %v", err)
	}
	m := Member{Name: "m0", PeerURL: "https://10.0.0.1:2380", InitialCluster: "m1=https://10.0.0.2:2380", Token: "t", DataDir: "/d"}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "--initial-cluster") {
		t.Errorf("a member missing from the initial cluster: %v", err)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A real etcd (Debian's): a key written, snapshots taken (the oldest
// pruned), the key changed after the snapshot, etcd stopped and its data
// destroyed, the member restored from the newest snapshot: etcd starts on
// the restored data and holds the key as it was at the snapshot.
func TestSaveAndRestoreWithRealEtcd(t *testing.T) {
	testenv.Root(t, "run an etcd daemon")
	testenv.Tools(t, "apt-get install etcd-server etcd-client", "etcd", "etcdctl")
	dir := t.TempDir()
	data, backups := filepath.Join(dir, "data"), filepath.Join(dir, "backups")
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	m := Member{Name: "m0", PeerURL: peer, InitialCluster: "m0=" + peer, Token: "kubesalt-test", DataDir: data}
	etcdctl, _ := exec.LookPath("etcdctl")
	c := Client{Etcdctl: etcdctl, Endpoints: client}
	ctl := func(args ...string) (string, error) {
		cmd := exec.Command(etcdctl, append(c.flags(), args...)...)
		cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	start := func() func() {
		cmd := exec.Command("etcd", "--name", m.Name, "--data-dir", data, "--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", m.InitialCluster,
			"--initial-cluster-token", m.Token, "--initial-cluster-state", "new")
		log, _ := os.OpenFile(filepath.Join(dir, "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop := func() { cmd.Process.Kill(); cmd.Wait(); log.Close() }
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := ctl("endpoint", "health"); err == nil {
				return stop
			}
			if time.Now().After(deadline) {
				stop()
				b, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
				t.Fatalf("etcd not healthy in 30s:\n%s", b)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	stop := start()
	defer func() { stop() }()
	if out, err := ctl("put", "/kubesalt/k", "at-snapshot"); err != nil {
		t.Fatal(out)
	}
	now := time.Now()
	var res SaveResult
	for i := 0; i < 3; i++ {
		var err error
		if res, err = Save(context.Background(), c, backups, m.Name, 2, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	list, _ := List(backups)
	if len(list) != 2 || len(res.Removed) != 1 || res.Saved.Path != list[0].Path || res.Saved.Size == 0 {
		t.Fatalf("after 3 saves keeping 2: %+v, dir %v", res, list)
	}
	if info, _ := os.Stat(backups); info.Mode().Perm() != 0o700 {
		t.Errorf("backup dir mode %v, want 0700", info.Mode().Perm())
	}
	if out, err := ctl("put", "/kubesalt/k", "after-snapshot"); err != nil {
		t.Fatal(out)
	}
	stop()
	stop = func() {}
	if err := os.RemoveAll(filepath.Join(data, "member")); err != nil {
		t.Fatal(err)
	}
	// A missing snapshot is refused before anything is touched.
	if err := Restore(context.Background(), etcdctl, filepath.Join(dir, "none.db"), m); err == nil || !strings.Contains(err.Error(), "none.db") {
		t.Errorf("missing snapshot: %v", err)
	}
	if err := Restore(context.Background(), RestoreTool("/nonexistent/etcdutl", etcdctl), res.Saved.Path, m); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(data, ".restoring*")); len(left) > 0 {
		t.Errorf("temporary restore directory left: %v", left)
	}
	stop = start()
	if got, err := ctl("get", "/kubesalt/k", "--print-value-only"); err != nil || got != "at-snapshot" {
		t.Errorf("after the restore: %q %v, want the snapshot's value at-snapshot", got, err)
	}
}
