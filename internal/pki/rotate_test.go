package pki

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// shortLived is the fast-forward of the lab: certificates of 30 minutes,
// renewed in their last 20.
const shortLived = "  pki: {validity: 30m, renew_before: 20m}\n"

func rotate(t *testing.T, o RotateOptions) *RotateResult {
	t.Helper()
	d := definition(t, 2, 2, shortLived)
	res, err := Rotate(d, o)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return res
}

// The schedule's decisions over a certificate set's life: nothing while
// every certificate is far from expiry; once due, everything reissued and
// every node dispatched, masters first; then nothing dispatched twice
// while the distribution runs, only the unconfirmed node after the retry
// window, and nothing once all are confirmed.
func TestRotateOverTheLifetime(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now()
	issue(t, definition(t, 2, 2, shortLived), Options{Dir: dir, Now: t0})
	at := func(d time.Duration) RotateOptions {
		return RotateOptions{Options: Options{Dir: dir, Now: t0.Add(d)}, RetryAfter: 5 * time.Minute}
	}

	res := rotate(t, at(5*time.Minute))
	if len(res.Issued) != 0 || len(res.Dispatch)+len(res.Waiting) != 0 || res.Check.Failing() != 0 {
		t.Fatalf("at 5 min: %+v", res)
	}
	before := readCert(t, dir, "worker-1/kubelet")

	res = rotate(t, at(11*time.Minute))
	if len(res.Issued) != 16 { // 8 cluster-wide, 4 kubelets, 2x2 etcd
		t.Errorf("at 11 min issued %d: %v", len(res.Issued), res.Issued)
	}
	if _, ok := res.Issued[NameCA]; ok {
		t.Error("the CA was reissued without being asked")
	}
	if want := []string{"master-0", "master-1", "worker-0", "worker-1"}; !slices.Equal(res.Dispatch, want) {
		t.Errorf("dispatch %v, want %v (masters first)", res.Dispatch, want)
	}
	if why := res.Due["worker-1"]; !strings.Contains(why, "worker-1/kubelet") || !strings.Contains(why, "kube-proxy") || strings.Contains(why, "etcd") {
		t.Errorf("worker-1 due because %q", why)
	}
	if res.Check.Failing() != 0 {
		t.Errorf("after the renewal %d certificates still need attention: %+v", res.Check.Failing(), res.Check.Certificates)
	}
	after := readCert(t, dir, "worker-1/kubelet")
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 || !after.NotAfter.After(before.NotAfter) {
		t.Errorf("worker-1/kubelet not replaced: serial %v -> %v, notAfter %v -> %v", before.SerialNumber, after.SerialNumber, before.NotAfter, after.NotAfter)
	}

	res = rotate(t, at(12*time.Minute))
	if len(res.Issued) != 0 || len(res.Dispatch) != 0 || len(res.Waiting) != 4 {
		t.Errorf("a minute later: issued %v, dispatch %v, waiting %v; want only waiting", res.Issued, res.Dispatch, res.Waiting)
	}
	if unknown, err := Distributed(dir, []string{"master-0", "master-1", "worker-0", "nobody"}); err != nil || !slices.Equal(unknown, []string{"nobody"}) {
		t.Fatalf("Distributed: %v %v", unknown, err)
	}
	res = rotate(t, at(13*time.Minute))
	if len(res.Dispatch) != 0 || !slices.Equal(res.Waiting, []string{"worker-1"}) {
		t.Errorf("after three confirmed: dispatch %v, waiting %v", res.Dispatch, res.Waiting)
	}
	res = rotate(t, at(17*time.Minute))
	if !slices.Equal(res.Dispatch, []string{"worker-1"}) || len(res.Issued) != 0 {
		t.Errorf("past the retry window: dispatch %v (want worker-1 again), issued %v", res.Dispatch, res.Issued)
	}
	Distributed(dir, []string{"worker-1"})
	if res = rotate(t, at(18*time.Minute)); len(res.Dispatch)+len(res.Waiting)+len(res.Due) != 0 {
		t.Errorf("all confirmed: %+v", res)
	}
}

// One certificate reissued: only the node whose bundle holds it is sent;
// a cluster-wide one of the masters goes to the masters only. Test mode
// reports the same and writes nothing.
func TestRotateSendsOnlyTheNodesConcerned(t *testing.T) {
	dir := t.TempDir()
	d := definition(t, 2, 2, shortLived)
	issue(t, d, Options{Dir: dir})
	rotate(t, RotateOptions{Options: Options{Dir: dir}}) // the record's baseline

	files := snapshot(t, dir)
	res := rotate(t, RotateOptions{Options: Options{Dir: dir, Test: true, Reissue: []string{"worker-0/kubelet", "kube-scheduler"}}})
	if want := []string{"master-0", "master-1", "worker-0"}; !slices.Equal(res.Dispatch, want) {
		t.Errorf("test mode: dispatch %v, want %v", res.Dispatch, want)
	}
	if changed := changedFiles(files, snapshot(t, dir)); len(changed) > 0 {
		t.Errorf("test mode wrote %v", changed)
	}
	res = rotate(t, RotateOptions{Options: Options{Dir: dir, Reissue: []string{"worker-0/kubelet", "kube-scheduler"}}})
	if want := []string{"master-0", "master-1", "worker-0"}; !slices.Equal(res.Dispatch, want) {
		t.Errorf("dispatch %v, want %v", res.Dispatch, want)
	}
	if res.Due["master-0"] != "issued now: kube-scheduler kubeconfig" {
		t.Errorf("master-0 due because %q", res.Due["master-0"])
	}
}

// A record kubesalt cannot read stops the run, naming the file and the fix.
func TestRotateCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	d := definition(t, 1, 1, shortLived)
	issue(t, d, Options{Dir: dir})
	os.WriteFile(filepath.Join(dir, rotationFile), []byte("{"), 0o600)
	_, err := Rotate(d, RotateOptions{Options: Options{Dir: dir}})
	if err == nil || !strings.Contains(err.Error(), "rotation.json") || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("corrupt record: %v", err)
	}
}

// On a node, Check reads the kubeconfigs too: kube-proxy's certificate
// is only there; the kubelet's kubeconfig holds the same certificate as
// kubelet.pem and is not listed twice. One made to expire is a problem
// with the fix.
func TestCheckANodesFiles(t *testing.T) {
	dir := t.TempDir()
	d := definition(t, 1, 1, shortLived)
	t0 := time.Now()
	issue(t, d, Options{Dir: dir, Now: t0})
	b, err := MakeBundle(d, dir, "worker-0")
	if err != nil {
		t.Fatal(err)
	}
	node := t.TempDir()
	for name, f := range b.Files {
		os.WriteFile(filepath.Join(node, name), []byte(f.Contents), 0o600)
	}
	rep, err := Check(node, 20*time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range rep.Certificates {
		names = append(names, c.Name)
	}
	if want := []string{"ca", "kube-proxy", "kubelet"}; !slices.Equal(names, want) || rep.Failing() != 0 {
		t.Errorf("a worker's files: %v (failing %d), want %v", names, rep.Failing(), want)
	}
	rep, _ = Check(node, 20*time.Minute, t0.Add(31*time.Minute))
	for _, c := range rep.Certificates {
		switch {
		case c.Name == NameCA && c.Problem != "":
			t.Errorf("the CA: %+v", c)
		case c.Name != NameCA && (c.Problem != "expired" || !strings.Contains(c.Fix, "orch.kubernetes.rotate")):
			t.Errorf("%s 31 min after a 30 min certificate: %q, fix %q", c.Name, c.Problem, c.Fix)
		}
	}
	rep, _ = Check(node, 20*time.Minute, t0.Add(15*time.Minute))
	if c := rep.Certificates[1]; c.Problem != "expires within 20m" {
		t.Errorf("within the window: %+v", c)
	}
}

func TestFmtWindow(t *testing.T) {
	for d, want := range map[time.Duration]string{720 * time.Hour: "720h", 20 * time.Minute: "20m", 90 * time.Second: "1m30s", 2*time.Hour + 30*time.Minute: "3h"} {
		if got := fmtWindow(d); got != want {
			t.Errorf("fmtWindow(%v) = %q, want %q", d, got, want)
		}
	}
}
