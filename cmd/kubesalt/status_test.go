package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// plannedExample plans pillar.example into a temporary directory and
// returns a status store path there, the plan file and the definition.
func plannedExample(t *testing.T) (db, plan, def string) {
	t.Helper()
	dir := t.TempDir()
	db, plan = filepath.Join(dir, "status.db"), filepath.Join(dir, "plan.json")
	def = filepath.Join("..", "..", "pillar.example")
	if _, code, errs := call(t, "", "cidr", "plan", "--definition", def, "--plan", plan); code != 0 {
		t.Fatalf("cidr plan: %d %s", code, errs)
	}
	return db, plan, def
}

func TestStatusRecordAndShow(t *testing.T) {
	db, plan, def := plannedExample(t)
	ret := `{"id": "worker-0", "fun": "kubesalt_net.routes_sync", "fun_args": [], "jid": "1", "success": true,
	  "return": {"result": true, "changes": {}, "comment": "", "data": {"desired": 5, "present": 5}}}`

	// --test records nothing.
	r, code, _ := call(t, ret, "status", "record", "--db", db, "--test")
	if code != 0 || r.Result != nil || r.Changes["recorded"] == nil {
		t.Fatalf("record --test: %d %+v", code, r)
	}
	r, _, _ = call(t, "", "status", "show", "--db", db, "--definition", def, "--plan", plan)
	if !strings.Contains(r.Comment, "6 nodes: 0 with routes converged") {
		t.Fatalf("--test wrote to the store: %s", r.Comment)
	}

	if r, code, errs := call(t, ret, "status", "record", "--db", db); code != 0 || r.Result == nil || !*r.Result {
		t.Fatalf("record: %d %+v %s", code, r, errs)
	}
	// Unrelated functions are ignored, bad input is exit 2.
	if r, code, _ := call(t, `{"id": "worker-0", "fun": "test.ping", "return": true}`, "status", "record", "--db", db); code != 0 || len(r.Changes) != 0 {
		t.Errorf("test.ping: %d %+v", code, r)
	}
	for _, bad := range []string{"", "{", `{"fun": "state.apply"}`} {
		if r, code, _ := call(t, bad, "status", "record", "--db", db); code != 2 || r.Result == nil || *r.Result {
			t.Errorf("bad input %q: exit %d %+v", bad, code, r)
		}
	}

	r, code, _ = call(t, "", "status", "show", "--db", db, "--definition", def, "--plan", plan)
	if code != 0 {
		t.Fatalf("show: %d", code)
	}
	var v struct {
		Nodes []struct {
			Name     string   `json:"name"`
			IPs      []string `json:"ips"`
			PodCIDRs []string `json:"pod_cidrs"`
			Routes   struct {
				Converged bool `json:"converged"`
				Expected  int  `json:"expected"`
			} `json:"routes"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(r.Data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Nodes) != 6 {
		t.Fatalf("%d nodes, want the 6 of pillar.example", len(v.Nodes))
	}
	for _, n := range v.Nodes {
		if len(n.PodCIDRs) != 1 || len(n.IPs) != 1 {
			t.Errorf("%s: ips %v pod cidrs %v", n.Name, n.IPs, n.PodCIDRs)
		}
		if want := n.Name == "worker-0"; n.Routes.Converged != want || n.Routes.Expected != 5 {
			t.Errorf("%s: converged %v (want %v), expected %d", n.Name, n.Routes.Converged, want, n.Routes.Expected)
		}
	}

	var out strings.Builder
	code = run(&streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"status", "show", "--db", db, "--definition", def, "--plan", plan, "--output", "table"})
	if code != 0 || !strings.Contains(out.String(), "worker-0") || !strings.Contains(out.String(), "converged") || !strings.Contains(out.String(), "never") {
		t.Errorf("table: %d\n%s", code, out.String())
	}
}

func TestStatusShowWithoutPlanFile(t *testing.T) {
	dir := t.TempDir()
	r, code, errs := call(t, "", "status", "show", "--db", filepath.Join(dir, "none.db"),
		"--definition", filepath.Join("..", "..", "pillar.example"), "--plan", filepath.Join(dir, "missing.json"))
	if code != 0 || !strings.Contains(r.Comment, "6 nodes: 0 with routes converged, 6 not reported") {
		t.Fatalf("%d %+v %s", code, r, errs)
	}
	if strings.Contains(string(r.Data), `"plan_changed"`) {
		t.Errorf("a missing plan has a change time: %s", r.Data)
	}
}

// Controller mode: the routes a node needs follow the discovered CIDRs
// (the masters have none), not kubesalt's plan.
func TestStatusShowDiscovered(t *testing.T) {
	db, plan, def := plannedExample(t)
	// worker-0 routes the other two workers' allocated CIDRs.
	ret := `{"id": "worker-0", "fun": "kubesalt_net.routes_sync", "fun_args": [], "jid": "1", "success": true,
	  "return": {"result": true, "changes": {}, "comment": "", "data": {"desired": 2, "present": 2}}}`
	if _, code, errs := call(t, ret, "status", "record", "--db", db); code != 0 {
		t.Fatalf("record: %d %s", code, errs)
	}
	discovered := `{"result": true, "data": {"nodes": [
	  {"name": "worker-0", "ips": ["192.168.170.20"], "pod_cidrs": ["10.200.7.0/24"]},
	  {"name": "worker-1", "ips": ["192.168.170.21"], "pod_cidrs": ["10.200.8.0/24"]},
	  {"name": "worker-2", "ips": ["192.168.170.22"], "pod_cidrs": ["10.200.9.0/24"]}]}}`
	expected := func(r result) map[string]int {
		var v struct {
			Nodes []struct {
				Name   string `json:"name"`
				Routes struct {
					Converged bool `json:"converged"`
					Expected  int  `json:"expected"`
				} `json:"routes"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal(r.Data, &v); err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, n := range v.Nodes {
			out[n.Name] = n.Routes.Expected
			if n.Name == "worker-0" && !n.Routes.Converged {
				t.Errorf("worker-0 synced the 2 discovered routes it needs, but is not converged: %s", r.Data)
			}
		}
		return out
	}
	r, code, errs := call(t, discovered, "status", "show", "--db", db, "--definition", def, "--plan", plan, "--discovered", "-")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	if got := expected(r); got["worker-0"] != 2 || got["master-0"] != 3 {
		t.Errorf("expected routes %v: want worker-0 2 and master-0 3 (the discovered CIDRs)", got)
	}
	if _, code, _ := call(t, `{"nodes": [{"name": "w", "pod_cidrs": ["bad"]}]}`, "status", "show", "--db", db, "--discovered", "-"); code != 2 {
		t.Errorf("a bad discovered list: exit %d, want 2", code)
	}
}

// status show flags the nodes without a successful state run within two
// reconcile intervals of the definition; --stale-after overrides it.
func TestStatusShowStale(t *testing.T) {
	db, plan, _ := plannedExample(t)
	def := filepath.Join(t.TempDir(), "def.yaml")
	src, _ := os.ReadFile(filepath.Join("..", "..", "pillar.example"))
	edit := func(path, old, new string) {
		if !strings.Contains(string(src), old) {
			t.Fatalf("pillar.example has no %q", old)
		}
		os.WriteFile(path, []byte(strings.Replace(string(src), old, new, 1)), 0o644)
	}
	edit(def, "    interval: 3600\n    splay: 300\n", "    interval: 600\n    splay: 300\n")
	now := time.Now().UTC()
	for node, ago := range map[string]time.Duration{"worker-0": time.Minute, "worker-1": 30 * time.Minute} {
		ret := fmt.Sprintf(`{"id": %q, "fun": "state.apply", "fun_args": ["kubernetes"], "jid": "1", "success": true,
		  "_stamp": %q, "return": {}}`, node, now.Add(-ago).Format("2006-01-02T15:04:05.000000"))
		if _, code, errs := call(t, ret, "status", "record", "--db", db); code != 0 {
			t.Fatalf("record: %s", errs)
		}
	}
	stale := func(args ...string) (map[string]bool, string) {
		r, code, errs := call(t, "", append([]string{"status", "show", "--db", db, "--plan", plan}, args...)...)
		if code != 0 {
			t.Fatalf("show: %d %s", code, errs)
		}
		var v struct {
			Nodes []struct {
				Name  string `json:"name"`
				Stale bool   `json:"stale"`
			} `json:"nodes"`
		}
		json.Unmarshal(r.Data, &v)
		out := map[string]bool{}
		for _, n := range v.Nodes {
			out[n.Name] = n.Stale
		}
		return out, r.Comment
	}
	got, comment := stale("--definition", def)
	if got["worker-0"] || !got["worker-1"] || !got["master-0"] || !strings.Contains(comment, "5 stale (no successful state run within 20m0s)") {
		t.Errorf("two intervals of 600 s: %v %s", got, comment)
	}
	if got, comment = stale("--definition", def, "--stale-after", "1h"); got["worker-1"] || !strings.Contains(comment, "4 stale") {
		t.Errorf("--stale-after 1h: %v %s", got, comment)
	}
	off := filepath.Join(t.TempDir(), "off.yaml")
	edit(off, "  reconcile:\n    enabled: true\n", "  reconcile:\n    enabled: false\n")
	if got, comment = stale("--definition", off); got["master-0"] || strings.Contains(comment, "stale") {
		t.Errorf("schedule off: %v %s", got, comment)
	}
	var out strings.Builder
	run(&streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"status", "show", "--db", db, "--definition", def, "--plan", plan, "--output", "table"})
	if !strings.Contains(out.String(), "LAST GOOD RUN") || !strings.Contains(out.String(), "never STALE") {
		t.Errorf("table:\n%s", out.String())
	}
}

// A certificate that has expired since it was reported is a problem in
// `kubesalt status show`, with the fix.
func TestStatusShowsAnExpiredCertificate(t *testing.T) {
	db, plan, def := plannedExample(t)
	ret := `{"id": "salt", "fun": "kubesalt_pki.rotate", "fun_args": [], "jid": "1", "success": true,
	  "return": {"result": true, "changes": {}, "comment": "", "data": {"certificates": [
	    {"name": "worker-0/kubelet", "sans": ["worker-0"], "not_after": "2020-01-01T00:00:00Z", "days_left": 0},
	    {"name": "admin", "not_after": "2999-01-01T00:00:00Z", "days_left": 300000}]}}}`
	if _, code, errs := call(t, ret, "status", "record", "--db", db); code != 0 {
		t.Fatal(errs)
	}
	r, code, _ := call(t, "", "status", "show", "--db", db, "--definition", def, "--plan", plan)
	var v struct {
		Problems []struct {
			Name, Problem, Fix string
		} `json:"certificate_problems"`
	}
	if err := json.Unmarshal(r.Data, &v); err != nil || code != 0 {
		t.Fatal(code, err)
	}
	if len(v.Problems) != 1 || v.Problems[0].Name != "worker-0/kubelet" || !strings.HasPrefix(v.Problems[0].Problem, "expired") ||
		!strings.Contains(v.Problems[0].Fix, "orch.kubernetes.rotate") || !strings.Contains(r.Comment, "1 certificates need attention (worker-0/kubelet expired") {
		t.Errorf("expired certificate: %q %+v", r.Comment, v.Problems)
	}
}

// status add-needed: the minion-start reactor's question. A cluster no
// node has run a state on is the bootstrap's; a stranger needs nothing;
// no --node is bad input.
func TestStatusAddNeeded(t *testing.T) {
	db, plan, def := plannedExample(t)
	ask := func(args ...string) (result, int) {
		t.Helper()
		r, code, _ := call(t, "", append([]string{"status", "add-needed", "--db", db, "--definition", def, "--plan", plan}, args...)...)
		return r, code
	}
	needed := func(r result) any {
		var d map[string]any
		json.Unmarshal(r.Data, &d)
		return d["add_needed"]
	}
	if r, code := ask("--node", "worker-0"); code != 0 || needed(r) != false || !strings.Contains(r.Comment, "orch.kubernetes.bootstrap builds it") {
		t.Errorf("unbuilt cluster: %d %s", code, show(r))
	}
	if r, code := ask("--node", "web-1"); code != 0 || needed(r) != false || r.Comment != "web-1 is not a node of the cluster definition" {
		t.Errorf("stranger: %d %s", code, show(r))
	}
	if r, code := ask(); code != 2 || !strings.Contains(r.Comment, "--node is required") {
		t.Errorf("no --node: %d %s", code, show(r))
	}
}
