package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/upgrade"
)

// The steps of orch.kubernetes.upgrade, read from pillar_changed's nested
// return: a step's time is the sum of its states', in the steps' order.
func TestUpgradePhases(t *testing.T) {
	out := `{"salt_master": {"salt_|-kubernetes-pillar-changed-upgrade_|-x_|-runner": {"__id__": "kubernetes-pillar-changed-upgrade", "duration": 9000,
	  "changes": {"return": {"data": {"salt_master": {
	    "a": {"__id__": "kubernetes-upgrade 2/3 master master-0: started", "duration": 1500.5},
	    "b": {"__id__": "kubernetes-upgrade 1/3 etcd snapshot: etcd snapshot", "duration": 700},
	    "c": {"__id__": "kubernetes-upgrade 2/3 master master-0: new binaries, daemons stopped", "duration": 500},
	    "d": {"__id__": "kubernetes-upgrade 3/3 workers 1/1 (worker-0): drain", "duration": 3000},
	    "e": {"__id__": "kubernetes-upgrade-preflight", "duration": 10}}}}}}}}`
	got := upgradePhases("noise\n" + out)
	var s []string
	for _, p := range got {
		s = append(s, fmt.Sprintf("%s=%s", p.Name, p.Took))
	}
	want := "1/3 etcd snapshot=700ms|2/3 master master-0=2.0005s|3/3 workers 1/1 (worker-0)=3s"
	if strings.Join(s, "|") != want {
		t.Errorf("phases %s, want %s", strings.Join(s, "|"), want)
	}
}

// The upgrade proof (make test-lab-upgrade, opt-in): a 6-node lab (3
// masters, 3 workers) at KUBESALT_UPGRADE_FROM (v1.35.4) moved to
// KUBESALT_UPGRADE_TO (v1.36.3) by changing versions:kubernetes, with
// requests to a Deployment through every worker's NodePort all along:
// none may fail; after it every node runs the new version and the smoke
// test passes. Prints the benchmark's figures. KUBESALT_UPGRADE_NODES: 5
// or more nodes (3 masters, the rest workers; default 6).
func TestLabUpgrade(t *testing.T) {
	from, to := envOr("KUBESALT_UPGRADE_FROM", "v1.35.4"), envOr("KUBESALT_UPGRADE_TO", "v1.36.3")
	l := openTestLab(t)
	start := time.Now()
	nodes := 6
	if n, err := strconv.Atoi(os.Getenv("KUBESALT_UPGRADE_NODES")); err == nil && n >= 5 {
		nodes = n
	}
	if err := l.Up(DefaultNodes(nodes), Options{K8S: true, K8SVersion: from}); err != nil {
		t.Fatal(err)
	}
	if err := l.Converge(); err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	res, rep, err := l.UpgradeCheck(to)
	fmt.Printf("upgrade %s -> %s, %d masters, %d workers (lab built in %.0fs):\n", res.From, res.To,
		len(l.withRole(RoleMaster)), len(l.workers()), built.Seconds())
	for _, p := range res.Phases {
		fmt.Printf("  %-44s %6.1fs\n", p.Name, p.Took.Seconds())
	}
	fmt.Printf("  total (orch.kubernetes.pillar_changed)      %6.1fs\n", res.Total.Seconds())
	fmt.Printf("  requests: %d sent, %d failed, longest gap %.2fs\n", res.Stream.Sent, res.Stream.Failed, res.Stream.LongestGap.Seconds())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.NodesOK || !rep.PodsOK || !rep.ServiceOK || !rep.DNSOK || !rep.SmokeOK || !rep.EtcdOK || !rep.LBOK {
		t.Errorf("the smoke test after the upgrade: %+v", rep)
	}
	if res.Stream.Failed > 0 || res.Stream.Sent < 100 {
		t.Errorf("requests during the upgrade: %d of %d failed (goal: none of at least 100): %v", res.Stream.Failed, res.Stream.Sent, res.Stream.Failures)
	}
	checkDown(t, l)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// The preflight against a real lab, without a second release (opt-in, like
// TestLabUpgrade): every node's running versions read by
// kubesalt_upgrade.node, test=True prints the plan to the next minor and
// changes nothing, a skipped minor is refused.
func TestLabUpgradePreflight(t *testing.T) {
	from := envOr("KUBESALT_UPGRADE_FROM", "v1.35.4")
	v, err := upgrade.ParseVersion(from)
	if err != nil {
		t.Fatal(err)
	}
	next, skip := fmt.Sprintf("v%d.%d.0", v.Major, v.Minor+1), fmt.Sprintf("v%d.%d.0", v.Major, v.Minor+2)
	l := openTestLab(t)
	if err := l.Up(SmallNodes(3, 1), Options{K8S: true, K8SVersion: from}); err != nil {
		t.Fatal(err)
	}
	if err := l.Converge(); err != nil {
		t.Fatal(err)
	}
	if err := l.allAt(from); err != nil {
		t.Fatal(err)
	}
	if err := l.setK8SVersion(next); err != nil {
		t.Fatal(err)
	}
	out, err := l.SaltRun("state.orchestrate", "orch.kubernetes.upgrade", "test=True")
	fmt.Println(out)
	for _, want := range []string{"upgrade from " + from + " to " + next, "etcd snapshot", "master master-2", "workers 1/1 (worker-0)"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("test=True: %v; the plan does not say %q", err, want)
		}
	}
	if err := l.setK8SVersion(skip); err != nil {
		t.Fatal(err)
	}
	out, _ = l.SaltRun("state.orchestrate", "orch.kubernetes.upgrade")
	fmt.Println(out)
	if len(failedStates(out)) == 0 || !strings.Contains(out, "skips") {
		t.Errorf("a skipped minor: want a failed preflight that says so:\n%s", out)
	}
	if err := l.setK8SVersion(from); err != nil {
		t.Fatal(err)
	}
	if err := l.allAt(from); err != nil {
		t.Errorf("after test=True and a refusal: %v", err)
	}
	checkDown(t, l)
}
