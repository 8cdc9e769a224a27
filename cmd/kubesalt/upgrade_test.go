package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/upgrade"
)

const upgradeNodes = `{"nodes": [
 {"name": "master-1", "role": "master", "version": "v1.35.4", "reachable": true, "etcd_healthy": true},
 {"name": "master-0", "role": "master", "version": "v1.36.3", "reachable": true, "etcd_healthy": true},
 {"name": "worker-0", "role": "worker", "version": "v1.35.4", "reachable": true},
 {"name": "worker-1", "role": "worker", "version": "v1.35.4", "reachable": true},
 {"name": "worker-2", "role": "worker", "version": "v1.35.4", "reachable": true}]}`

// The plan through the command: exit 0, the order in data, master-0 (done)
// skipped, workers in batches of 2.
func TestUpgradePlanCommand(t *testing.T) {
	r, code, stderr := call(t, upgradeNodes, "upgrade", "plan", "--target", "v1.36.3", "--worker-batch", "2")
	if code != 0 || r.Result == nil || !*r.Result {
		t.Fatalf("exit %d %s: %s", code, r.Comment, stderr)
	}
	var p upgrade.Plan
	if err := json.Unmarshal(r.Data, &p); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Steps {
		got = append(got, s.Kind+":"+strings.Join(s.Nodes, ","))
	}
	if want := "snapshot:|master:master-1|workers:worker-0,worker-1|workers:worker-2"; strings.Join(got, "|") != want {
		t.Errorf("steps %v, want %s", got, want)
	}
	if len(p.Done) != 1 || p.Done[0] != "master-0" || !strings.Contains(r.Comment, "1 node(s) already done") {
		t.Errorf("done %v, comment %q", p.Done, r.Comment)
	}
}

// A refusal fails (exit 1) and lists its reasons; bad input is exit 2.
func TestUpgradePlanRefusedAndBadInput(t *testing.T) {
	r, code, _ := call(t, upgradeNodes, "upgrade", "plan", "--target", "v1.35.4")
	if code != 1 || r.Result == nil || *r.Result || !strings.Contains(r.Comment, "master-0 runs v1.36.3, newer than the target v1.35.4") {
		t.Errorf("downgrade: exit %d, %q", code, r.Comment)
	}
	if _, code, stderr := call(t, upgradeNodes, "upgrade", "plan", "--target", "1.36"); code != 2 || !strings.Contains(stderr, "target:") {
		t.Errorf("bad target: exit %d %s", code, stderr)
	}
	if _, code, stderr := call(t, "not json", "upgrade", "plan", "--target", "v1.36.3"); code != 2 || !strings.Contains(stderr, "the node list") {
		t.Errorf("bad nodes: exit %d %s", code, stderr)
	}
	if _, code, stderr := call(t, "", "upgrade", "node", "--node", "worker-0", "--role", "etcd", "--kubeconfig", "k"); code != 2 || !strings.Contains(stderr, "--role") {
		t.Errorf("bad role: exit %d %s", code, stderr)
	}
}
