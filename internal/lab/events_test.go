package lab

import (
	"strings"
	"testing"
	"time"
)

// The timeline from the master's events: an orchestration's steps in the
// order they started, each with its duration and the minion that returned
// its job last; the floor from the first test.ping a minion answered.
func TestOrchestrationTimeline(t *testing.T) {
	lines := []string{
		`salt/run/20261130085000000001/new	{"fun": "runner.state.orchestrate", "_stamp": "2026-11-30T08:50:00.000000"}`,
		`salt/job/1/ret/worker-3	{"fun": "test.ping", "return": false, "_stamp": "2026-11-30T08:50:00.200000"}`,
		`salt/job/2/ret/worker-3	{"fun": "test.ping", "return": true, "_stamp": "2026-11-30T08:50:00.500000"}`,
		`salt/job/3/ret/master-0	{"fun": "kubesalt_net.routes_sync", "return": {}, "_stamp": "2026-11-30T08:50:02.000000"}`,
		`salt/job/3/ret/worker-0	{"fun": "kubesalt_net.routes_sync", "return": {}, "_stamp": "2026-11-30T08:50:02.700000"}`,
		`not an event line`,
		`salt/run/20261130085000000001/ret	{"fun": "runner.state.orchestrate", "fun_args": [{"mods": "orch.kubernetes.add_node"}], "_stamp": "2026-11-30T08:50:05.000000",
		 "return": {"data": {"salt_master": {
		   "salt_|-kubernetes-add-node-routes_|-kubesalt_net.routes_sync_|-function": {"__id__": "kubernetes-add-node-routes", "__jid__": "3", "start_time": "08:50:01.500000", "duration": 1300.0, "result": true},
		   "salt_|-kubernetes-add-node-up_|-test.ping_|-function": {"__id__": "kubernetes-add-node-up", "__jid__": "2", "start_time": "08:50:00.100000", "duration": 400.0, "result": false}
		 }}}}`,
	}
	var events []saltEvent
	for _, line := range lines {
		if e, ok := parseEventLine(strings.ReplaceAll(line, "\n", "")); ok {
			events = append(events, e)
		}
	}
	if len(events) != 6 {
		t.Fatalf("parsed %d events, want 6", len(events))
	}
	t0 := time.Date(2026, 11, 30, 8, 50, 0, 0, time.UTC)
	if at, ok := firstPing(events, "worker-3"); !ok || at.Sub(t0) != 500*time.Millisecond {
		t.Errorf("first ping answer %v %v, want +0.5s (a false return is no answer)", at.Sub(t0), ok)
	}
	os := orchestrations(events)
	if len(os) != 1 || os[0].Mods != "orch.kubernetes.add_node" || !os[0].Started.Equal(t0) {
		t.Fatalf("%+v", os)
	}
	steps := os[0].Steps
	if len(steps) != 2 || steps[0].ID != "kubernetes-add-node-up" || steps[1].ID != "kubernetes-add-node-routes" {
		t.Fatalf("steps out of order: %+v", steps)
	}
	r := steps[1]
	if r.Function != "salt.function" || r.Took != 1300*time.Millisecond || !r.Result || r.Minions != 2 || r.Last != "worker-0" ||
		r.LastAt.Sub(t0) != 2700*time.Millisecond {
		t.Errorf("routes step %+v", r)
	}
	if steps[0].Result {
		t.Errorf("a failed step reads as passed: %+v", steps[0])
	}
}

func TestLineFit(t *testing.T) {
	a, b, ok := lineFit([][2]float64{{7, 2}, {21, 4.8}})
	if !ok || a < 0.599 || a > 0.601 || b < 0.199 || b > 0.201 {
		t.Errorf("fit %v %v %v, want 0.6 + 0.2x", a, b, ok)
	}
	if _, _, ok := lineFit([][2]float64{{7, 2}}); ok {
		t.Error("one point fits no line")
	}
}
