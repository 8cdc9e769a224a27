package status

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func jobReturn(t *testing.T, s string) JobReturn {
	t.Helper()
	var jr JobReturn
	if err := json.Unmarshal([]byte(s), &jr); err != nil {
		t.Fatal(err)
	}
	return jr
}

// A state.apply return as the master's event bus carries it: the
// routes_synced state with its kubesalt block, and an unrelated state.
const stateApply = `{"id": "worker-0", "fun": "state.apply", "jid": "20261124120000000001",
 "fun_args": ["kubernetes"], "success": true, "retcode": 0, "_stamp": "2026-11-24T12:00:00.000000",
 "return": {
  "kubesalt_net_|-routes_|-routes_|-routes_synced": {"name": "routes", "result": true, "changes": {},
    "comment": "3 routes present",
    "kubesalt": {"command": "routes sync", "test": false, "node": "worker-0", "pod_cidrs": ["10.200.1.0/24"],
      "result": {"result": true, "changes": {}, "comment": "", "data": {"desired": 2, "present": 2,
        "added": [], "replaced": [], "removed": [], "failed": [],
        "conflicts": [{"route": {"dst": "10.200.2.0/24", "via": "192.168.170.21", "node": "worker-1"}, "existing": "proto static"}]}}}},
  "file_|-x_|-/etc/x_|-managed": {"name": "/etc/x", "result": true, "changes": {}, "comment": ""}}}`

func TestExtractStateReturn(t *testing.T) {
	f, err := Extract(jobReturn(t, stateApply), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if f.Minion != "worker-0" || !f.At.Equal(t0) || f.Node != "worker-0" {
		t.Errorf("identity: %+v", f)
	}
	if len(f.PodCIDRs) != 1 || f.PodCIDRs[0] != "10.200.1.0/24" {
		t.Errorf("pod cidrs %v", f.PodCIDRs)
	}
	if f.Routes == nil || f.RoutesCheck != nil {
		t.Fatalf("routes %+v check %+v", f.Routes, f.RoutesCheck)
	}
	if f.Routes.Desired != 2 || len(f.Routes.Conflicts) != 1 || f.Routes.Conflicts[0].Route.Node != "worker-1" {
		t.Errorf("routes %+v", f.Routes)
	}
}

func TestExtractModuleReturns(t *testing.T) {
	// salt-call passes test=True as a string argument: a prediction.
	diff := `{"id": "m", "fun": "kubesalt_net.routes_sync", "fun_args": ["test=True"], "jid": "1",
	  "return": {"result": null, "changes": {"added": [{"dst": "10.200.9.0/24", "via": "192.168.170.29"}]},
	  "comment": "", "data": {"desired": 1, "present": 0, "added": [{"dst": "10.200.9.0/24", "via": "192.168.170.29"}]}}}`
	f, err := Extract(jobReturn(t, diff), t0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Routes != nil || f.RoutesCheck == nil || !f.RoutesCheck.Test || f.RoutesCheck.Added != 1 {
		t.Errorf("test-mode sync taken as applied: %+v %+v", f.Routes, f.RoutesCheck)
	}
	if f.Success != nil {
		t.Errorf("success invented: %v", *f.Success)
	}

	check := `{"id": "master", "fun": "kubesalt_pki.check", "jid": "2", "retcode": 1,
	  "return": {"result": false, "changes": {}, "comment": "1 expiring",
	  "data": {"certificates": [{"name": "worker-0", "subject": "CN=system:node:worker-0", "sans": ["worker-0"],
	  "not_after": "2026-12-01T00:00:00Z", "days_left": 6}]}}}`
	f, err = Extract(jobReturn(t, check), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Certificates) != 1 || f.Certificates[0].DaysLeft != 6 || f.Certificates[0].Reporter != "master" {
		t.Errorf("certificates %+v", f.Certificates)
	}
	if f.Success == nil || *f.Success {
		t.Errorf("retcode 1 not a failure")
	}

	virt := `{"id": "hv", "fun": "kubesalt_virt.node_ensure", "fun_args": [{"test": false, "__kwarg__": true}], "jid": "3",
	  "return": {"result": true, "changes": {"worker-0": {"created": ["domain"]}}, "comment": "",
	  "data": {"nodes": {"worker-0": {"state": "running", "mac": "52:54:00:00:00:01", "ip": "192.168.170.20"}}}}}`
	f, _ = Extract(jobReturn(t, virt), t0)
	if len(f.VMs) != 1 || f.VMs[0].State != "running" || f.VMs[0].Hypervisor != "hv" {
		t.Errorf("vms %+v", f.VMs)
	}
	virtTest := `{"id": "hv", "fun": "kubesalt_virt.node_ensure", "fun_args": [{"test": true}], "jid": "4",
	  "return": {"result": null, "changes": {"worker-1": {"created": ["domain"]}}, "comment": "",
	  "data": {"nodes": {"worker-1": {"state": "running"}}}}}`
	if f, _ = Extract(jobReturn(t, virtTest), t0); len(f.VMs) != 0 {
		t.Errorf("test-mode VM state recorded: %+v", f.VMs)
	}
}

func TestExtractBadInput(t *testing.T) {
	if _, err := Extract(JobReturn{Fun: "state.apply"}, t0); err == nil {
		t.Error("return without id accepted")
	}
	if _, err := Extract(JobReturn{ID: "m"}, t0); err == nil {
		t.Error("return without fun accepted")
	}
	// A render error (list of strings) is a failed run, not a crash.
	f, err := Extract(jobReturn(t, `{"id": "m", "fun": "state.apply", "jid": "5", "return": ["Rendering SLS failed"]}`), t0)
	if err != nil || f.Success == nil || *f.Success {
		t.Errorf("render error: %+v %v", f, err)
	}
	if Relevant("test.ping") || !Relevant("kubesalt_net.routes_sync") || !Relevant("state.apply") {
		t.Error("relevance")
	}
}

func TestStoreMergesAndPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.db")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := Extract(jobReturn(t, stateApply), t0)
	if err := st.Apply(f); err != nil {
		t.Fatal(err)
	}
	// A later module call without routes keeps the route outcome.
	later := Facts{Minion: "worker-0", At: t0.Add(time.Hour), Fun: "kubesalt_net.routes_list"}
	if err := st.Apply(later); err != nil {
		t.Fatal(err)
	}
	// An older return arriving late does not move last run back.
	if err := st.Apply(Facts{Minion: "worker-0", At: t0.Add(-time.Hour), Fun: "old"}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	snap, err := ro.Read()
	if err != nil {
		t.Fatal(err)
	}
	m := snap.Minions["worker-0"]
	if !m.LastRun.Equal(t0.Add(time.Hour)) || m.LastFun != "kubesalt_net.routes_list" {
		t.Errorf("last run %v %s", m.LastRun, m.LastFun)
	}
	if m.Routes == nil || m.Routes.Desired != 2 || m.Node != "worker-0" {
		t.Errorf("route outcome lost: %+v", m)
	}
}

func TestStoreConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.db")
	// Separate handles, as separate returner processes would open it.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st, err := Open(path)
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			errs <- st.Apply(Facts{Minion: string(rune('a' + i)), At: t0, Fun: "state.apply"})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ro, _ := OpenReadOnly(path)
	defer ro.Close()
	snap, _ := ro.Read()
	if len(snap.Minions) != 8 {
		t.Errorf("%d minions recorded, want 8", len(snap.Minions))
	}
}

func members() []cluster.Member {
	m := func(name, ip, pod string) cluster.Member {
		return cluster.Member{Name: name, Role: "worker", IPs: []netip.Addr{netip.MustParseAddr(ip)},
			PodCIDRs: []netip.Prefix{netip.MustParsePrefix(pod)}}
	}
	return []cluster.Member{
		m("worker-0", "192.168.170.20", "10.200.1.0/24"),
		m("worker-1", "192.168.170.21", "10.200.2.0/24"),
		m("worker-2", "192.168.170.22", "10.200.3.0/24"),
	}
}

func TestShow(t *testing.T) {
	ok := true
	sync := func(at time.Time, desired int) *RouteSync {
		return &RouteSync{At: at, Result: &ok, Desired: desired, Present: desired}
	}
	goodRun := t0.Add(2 * time.Hour)
	snap := Snapshot{
		Minions: map[string]Minion{
			// converged: synced after the plan changed, all routes.
			"worker-0": {ID: "worker-0", LastRun: t0.Add(2 * time.Hour), LastGoodRun: &goodRun, PodCIDRs: []string{"10.200.1.0/24"}, Routes: sync(t0.Add(2*time.Hour), 2)},
			// synced before the plan changed.
			"worker-1.example.org": {ID: "worker-1.example.org", LastRun: t0, Routes: sync(t0, 1)},
			"hypervisor":           {ID: "hypervisor", LastRun: t0},
		},
		VMs: map[string]VM{"worker-2": {Name: "worker-2", State: "shutoff"}},
		Certificates: map[string]Certificate{
			"worker-0": {Name: "worker-0", SANs: []string{"worker-0", "192.168.170.20"}, DaysLeft: 5},
			"ca":       {Name: "ca", DaysLeft: 3000},
		},
	}
	v := Show(snap, members(), t0.Add(time.Hour), DefaultExpiringDays, false, time.Time{})
	if len(v.Nodes) != 3 {
		t.Fatalf("nodes %d", len(v.Nodes))
	}
	w0, w1, w2 := v.Nodes[0], v.Nodes[1], v.Nodes[2]
	if !w0.Routes.Converged || w0.Routes.Expected != 2 || !w0.ReportedSincePlan {
		t.Errorf("worker-0: %+v", w0)
	}
	if len(w0.Certificates) != 1 || w0.Certificates[0].DaysLeft != 5 {
		t.Errorf("worker-0 certificates %+v", w0.Certificates)
	}
	if w1.Minion != "worker-1.example.org" || w1.Routes.Converged || w1.ReportedSincePlan {
		t.Errorf("worker-1 (synced before the plan changed): %+v", w1)
	}
	if w2.LastRun != nil || w2.Routes.Converged || w2.Routes.Why != "never reported" || w2.VMState != "shutoff" {
		t.Errorf("worker-2: %+v", w2)
	}
	if v.Summary != (Summary{Nodes: 3, Converged: 1, NotReported: 2, CertificatesExpiring: 1, EverRun: 1}) {
		t.Errorf("summary %+v", v.Summary)
	}
	if len(v.OtherMinions) != 1 || v.OtherMinions[0].ID != "hypervisor" {
		t.Errorf("other minions %+v", v.OtherMinions)
	}

	// A pillar still carrying an old pod CIDR is not converged.
	m := snap.Minions["worker-0"]
	m.PodCIDRs = []string{"10.200.7.0/24"}
	snap.Minions["worker-0"] = m
	if v := Show(snap, members(), t0.Add(time.Hour), 30, false, time.Time{}); v.Nodes[0].Routes.Converged {
		t.Error("stale pillar pod CIDR counted as converged")
	}
	// In controller mode the pillar's CIDR is kubesalt's plan, not the
	// cluster's: it is not compared.
	if v := Show(snap, members(), t0.Add(time.Hour), 30, true, time.Time{}); !v.Nodes[0].Routes.Converged {
		t.Errorf("controller mode compared the pillar's pod CIDR: %s", v.Nodes[0].Routes.Why)
	}
	// Fewer routes than the plan needs is not converged.
	m.PodCIDRs = nil
	m.Routes = sync(t0.Add(2*time.Hour), 1)
	snap.Minions["worker-0"] = m
	if v := Show(snap, members(), t0.Add(time.Hour), 30, false, time.Time{}); v.Nodes[0].Routes.Converged {
		t.Error("1 of 2 routes counted as converged")
	}
}

// certificates_issued carries two blocks: the issue and the check after it.
func TestExtractStateWithTwoBlocks(t *testing.T) {
	ret := `{"id": "master", "fun": "state.single", "jid": "6", "return": {
	  "kubesalt_pki_|-pki_|-pki_|-certificates_issued": {"name": "pki", "result": true, "changes": {}, "comment": "",
	    "kubesalt": [
	      {"command": "pki issue", "test": false, "result": {"result": true, "changes": {}, "comment": "", "data": {}}},
	      {"command": "pki check", "test": false, "result": {"result": true, "changes": {}, "comment": "",
	        "data": {"certificates": [{"name": "worker-0/kubelet", "sans": ["worker-0"], "not_after": "2027-11-24T00:00:00Z", "days_left": 364}]}}}]}}}`
	f, err := Extract(jobReturn(t, ret), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Certificates) != 1 || f.Certificates[0].Name != "worker-0/kubelet" {
		t.Fatalf("certificates %+v", f.Certificates)
	}
	v := Show(Snapshot{Minions: map[string]Minion{}, Certificates: map[string]Certificate{"worker-0/kubelet": f.Certificates[0]}}, members(), time.Time{}, 30, false, time.Time{})
	if len(v.Nodes[0].Certificates) != 1 || v.Nodes[0].Certificates[0].DaysLeft != 364 || len(v.Nodes[1].Certificates) != 0 {
		t.Errorf("certificate not attached to worker-0 only: %+v", v.Nodes)
	}
}

// The scheduled state runs keep each node's last successful run; a node
// without one within the limit (two reconcile intervals) is flagged stale,
// whether it stopped reporting, reports only failures, or never reported.
func TestLastGoodRunAndStaleness(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "status.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run := func(id string, at time.Time, success bool, args string) {
		t.Helper()
		jr := jobReturn(t, `{"id": "`+id+`", "fun": "state.apply", "fun_args": `+args+`, "jid": "1",
		  "return": {"file_|-x_|-/etc/x_|-managed": {"name": "/etc/x", "result": true, "changes": {}, "comment": ""}}}`)
		jr.Success = &success
		jr.Stamp = at.Format("2006-01-02T15:04:05.000000")
		f, err := Extract(jr, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(f); err != nil {
			t.Fatal(err)
		}
	}
	sched := `["kubernetes", {"queue": true}]`
	run("master-0", t0, true, sched)
	run("worker-0", t0.Add(-3*time.Hour), true, sched)     // then silent
	run("worker-1", t0.Add(-3*time.Hour), true, sched)     // then failing
	run("worker-1", t0.Add(-10*time.Minute), false, sched) //
	run("worker-1", t0.Add(-5*time.Minute), true, `["kubernetes", "test=True"]`)
	snap, err := st.Read()
	if err != nil {
		t.Fatal(err)
	}
	if g := snap.Minions["worker-1"].LastGoodRun; g == nil || !g.Equal(t0.Add(-3*time.Hour)) {
		t.Errorf("worker-1's last good run %v: a failed or test-mode run counted", g)
	}
	nodes := []cluster.Member{{Name: "master-0"}, {Name: "worker-0"}, {Name: "worker-1"}, {Name: "worker-2"}}
	v := Show(snap, nodes, time.Time{}, DefaultExpiringDays, false, time.Time{})
	MarkStale(&v, t0.Add(time.Minute), 2*time.Hour)
	got := map[string]string{}
	for _, n := range v.Nodes {
		if n.Stale {
			got[n.Name] = n.StaleWhy
		}
	}
	if v.Nodes[0].Stale || v.Nodes[0].LastGoodRun == nil || !v.Nodes[0].LastGoodRun.Equal(t0) {
		t.Errorf("master-0 ran a minute ago: %+v", v.Nodes[0])
	}
	want := map[string]string{
		"worker-0": "last successful state run 3h1m0s ago, more than 2h0m0s",
		"worker-1": "last successful state run 3h1m0s ago, more than 2h0m0s; it last reported at 2026-11-24T11:55:00Z",
		"worker-2": "never reported",
	}
	if len(got) != len(want) || v.Summary.Stale != 3 {
		t.Errorf("stale %v (summary %d), want %v", got, v.Summary.Stale, want)
	}
	for name, why := range want {
		if got[name] != why {
			t.Errorf("%s: %q, want %q", name, got[name], why)
		}
	}
	// No limit (the schedule is off): nothing is flagged.
	v = Show(snap, nodes, time.Time{}, DefaultExpiringDays, false, time.Time{})
	MarkStale(&v, t0.Add(time.Minute), 0)
	if v.Summary.Stale != 0 {
		t.Errorf("flagged without a limit: %+v", v.Summary)
	}
}
