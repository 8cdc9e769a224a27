package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"net/netip"

	"github.com/kubesalt/kubesalt/internal/nstest"
	"github.com/kubesalt/kubesalt/internal/routes"
)

type result struct {
	Result  *bool                      `json:"result"`
	Changes map[string]json.RawMessage `json:"changes"`
	Comment string                     `json:"comment"`
	Data    json.RawMessage            `json:"data"`
}

// call runs kubesalt in process and decodes its JSON.
func call(t *testing.T, stdin string, args ...string) (result, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(&streams{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb}, args)
	var r result
	if strings.HasPrefix(strings.TrimSpace(out.String()), "{") {
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%v: output is not one JSON object: %v\n%s", args, err, out.String())
		}
	}
	return r, code, errb.String()
}

func pillar(t *testing.T) string {
	b, err := os.ReadFile("../../pillar.example")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUsageAndExitCodes(t *testing.T) {
	if _, code, _ := call(t, "", "frobnicate"); code != 2 {
		t.Errorf("unknown command exit %d", code)
	}
	if _, code, _ := call(t, "", "cidr", "plan", "--no-such-flag"); code != 2 {
		t.Errorf("bad flag exit %d", code)
	}
	if _, code, _ := call(t, "", "routes", "sync", "--protocol", "3", "--nodes", "/dev/null"); code != 2 {
		t.Errorf("kernel protocol number accepted: exit %d", code)
	}
	var out bytes.Buffer
	if code := run(&streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"--help"}); code != 0 || !strings.Contains(out.String(), "routes sync") {
		t.Errorf("help: %d %s", code, out.String())
	}
}

func TestCIDRPlanContract(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.json")
	r, code, _ := call(t, pillar(t), "cidr", "plan", "--plan", plan, "--test")
	if code != 0 || r.Result != nil || len(r.Changes["assigned"]) == 0 {
		t.Fatalf("test mode: code %d %+v", code, r)
	}
	if _, err := os.Stat(plan); !os.IsNotExist(err) {
		t.Fatal("test mode wrote the plan")
	}
	r, code, _ = call(t, pillar(t), "cidr", "plan", "--plan", plan)
	if code != 0 || r.Result == nil || !*r.Result || len(r.Changes) == 0 {
		t.Fatalf("apply: %d %+v", code, r)
	}
	r, code, _ = call(t, pillar(t), "cidr", "plan", "--plan", plan)
	if code != 0 || !*r.Result || len(r.Changes) != 0 || !strings.Contains(r.Comment, "no change") {
		t.Fatalf("second run: %d %+v", code, r)
	}
	// Bad input: exit 2, the field and the fix named, the plan untouched.
	before, _ := os.ReadFile(plan)
	bad := strings.Replace(pillar(t), "192.168.170.21", "192.168.171.21", 1)
	r, code, stderr := call(t, bad, "cidr", "plan", "--plan", plan)
	if code != 2 || *r.Result || !strings.Contains(r.Comment, "kubernetes:nodes:worker-1:ip") || !strings.Contains(stderr, "give an address inside it") {
		t.Fatalf("bad input: %d %+v %s", code, r, stderr)
	}
	if after, _ := os.ReadFile(plan); !bytes.Equal(before, after) {
		t.Error("bad input changed the plan")
	}
}

func TestNodesDiscoverFromFile(t *testing.T) {
	in := `{"kind":"List","items":[{"metadata":{"name":"w"},"spec":{"podCIDR":"10.200.1.0/24"},"status":{"addresses":[{"type":"InternalIP","address":"192.168.170.20"}]}},{"metadata":{"name":"x"}}]}`
	r, code, _ := call(t, in, "nodes", "discover", "--file", "-")
	if code != 0 || !strings.Contains(r.Comment, "2 nodes discovered; 2 problems") {
		t.Fatalf("%d %+v", code, r)
	}
	if _, code, _ := call(t, "{", "nodes", "discover", "--file", "-"); code != 2 {
		t.Errorf("malformed JSON exit %d", code)
	}
}

// routes sync registers the protocol's name only when asked: by default it
// writes nothing outside the kernel's tables.
func TestRoutesSyncRegistersNoNameByDefault(t *testing.T) {
	var f routeFlags
	fs := newRouteFlags(&streams{Stderr: io.Discard}, "routes sync", &f, true)
	if err := fs.Parse(nil); err != nil || f.protosDir != "" {
		t.Errorf("--rt-protos-dir defaults to %q (%v), want empty", f.protosDir, err)
	}
}

// nodeAndPlan is a namespace node (worker-0 of pillar), a temporary dir
// and the planner's output for pillar, its plan kept in that dir.
func nodeAndPlan(t *testing.T) (*nstest.Lab, nstest.Node, string, *bytes.Buffer) {
	t.Helper()
	l := nstest.New(t)
	node := l.AddNode(netip.MustParsePrefix("192.168.170.20/24"), netip.MustParsePrefix("10.200.3.0/24"))
	dir := t.TempDir()
	var planOut bytes.Buffer
	if code := run(&streams{Stdin: strings.NewReader(pillar(t)), Stdout: &planOut, Stderr: os.Stderr}, []string{"cidr", "plan", "--plan", filepath.Join(dir, "plan.json")}); code != 0 {
		t.Fatal(planOut.String())
	}
	return l, node, dir, &planOut
}

// The planner's output feeds route sync as is, in a real namespace.
func TestPlanPipesIntoRoutesSync(t *testing.T) {
	l, node, dir, planOut := nodeAndPlan(t)
	args := []string{"routes", "sync", "--netns", node.NS, "--rt-protos-dir", dir}
	r, code, _ := call(t, planOut.String(), append(args, "--test")...)
	if code != 0 || r.Result != nil || len(r.Changes["added"]) == 0 {
		t.Fatalf("test mode: %d %+v", code, r)
	}
	if got := l.In(node.NS, "ip", "route", "show", "proto", "201"); got != "" {
		t.Fatalf("test mode applied: %s", got)
	}
	r, code, _ = call(t, planOut.String(), args...)
	var rep routes.Report
	json.Unmarshal(r.Data, &rep)
	// worker-0 (192.168.170.20) is self: 5 routes to the other nodes.
	if code != 0 || !*r.Result || len(rep.Added) != 5 || rep.Desired != 5 {
		t.Fatalf("sync: %d %+v", code, r)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "kubesalt.conf")); !strings.Contains(string(b), "201\tkubesalt") {
		t.Errorf("protocol name not registered: %q", b)
	}
	// Without --rt-protos-dir nothing is registered: the host's /etc stays
	// as it was.
	hostConf := filepath.Join(routes.DefaultProtosDir, "kubesalt.conf")
	before, beforeErr := os.ReadFile(hostConf)
	r, code, _ = call(t, planOut.String(), "routes", "sync", "--netns", node.NS)
	if code != 0 || len(r.Changes) != 0 {
		t.Fatalf("second sync: %d %+v", code, r)
	}
	if after, afterErr := os.ReadFile(hostConf); !bytes.Equal(before, after) || os.IsNotExist(beforeErr) != os.IsNotExist(afterErr) {
		t.Errorf("a sync without --rt-protos-dir changed %s", hostConf)
	}
	r, code, _ = call(t, "", "routes", "list", "--netns", node.NS)
	if code != 0 || !strings.Contains(string(r.Data), `"dst": "10.200.0.0/24"`) {
		t.Errorf("list: %d %s", code, r.Data)
	}
	if r, code, _ := call(t, "[]", "routes", "sync", "--netns", "no-such-ns-kubesalt"); code != 1 || !strings.Contains(r.Comment, `network namespace "no-such-ns-kubesalt"`) {
		t.Errorf("a missing namespace: %d %+v", code, r)
	}
}

// Every group answers --help with its commands on stdout (exit 0), and
// alone or with an unknown command with its usage on stderr (exit 2).
func TestGroupHelp(t *testing.T) {
	groups := map[string][]command{}
	for _, c := range commands {
		if words := strings.Fields(c.Name); len(words) > 1 { // one word (supervise): a command, no group
			groups[words[0]] = append(groups[words[0]], c)
		}
	}
	for _, g := range []string{"cidr", "routes", "nodes", "pki", "status", "etcd"} {
		if len(groups[g]) == 0 {
			t.Errorf("no %s commands", g)
		}
	}
	for g, cs := range groups {
		for _, help := range []string{"--help", "-h", "help"} {
			var out, errb bytes.Buffer
			code := run(&streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}, []string{g, help})
			if code != 0 || errb.Len() > 0 || !strings.HasPrefix(out.String(), "usage: kubesalt "+g+" <command>") {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", g, help, code, out.String(), errb.String())
			}
			for _, c := range cs {
				if !strings.Contains(out.String(), strings.TrimPrefix(c.Name, g+" ")) || !strings.Contains(out.String(), c.Summary) {
					t.Errorf("%s %s does not list %q: %s", g, help, c.Name, out.String())
				}
			}
		}
		for _, args := range [][]string{{g}, {g, "nosuch"}} {
			var out, errb bytes.Buffer
			code := run(&streams{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}, args)
			if code != 2 || out.Len() > 0 || !strings.Contains(errb.String(), "usage: kubesalt "+g+" <command>") {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
			}
			if len(args) > 1 && !strings.Contains(errb.String(), `unknown command "`+g+` nosuch"`) {
				t.Errorf("%v does not name the unknown command: %s", args, errb.String())
			}
		}
	}
}

// A sync of a node list older than the recorded one (a state run whose
// pillar predates a node's addition) changes nothing; one without a
// revision applies as always.
func TestRoutesSyncOfAnOlderRevisionChangesNothing(t *testing.T) {
	l, node, dir, planOut := nodeAndPlan(t)
	var plan struct {
		Data struct {
			Nodes    []map[string]any `json:"nodes"`
			Revision int64            `json:"revision"`
		} `json:"data"`
	}
	if err := json.Unmarshal(planOut.Bytes(), &plan); err != nil || plan.Data.Revision <= 0 || len(plan.Data.Nodes) != 6 {
		t.Fatalf("plan: revision %d, %d nodes, %v", plan.Data.Revision, len(plan.Data.Nodes), err)
	}
	older, _ := json.Marshal(map[string]any{"nodes": plan.Data.Nodes[:5]})
	record := filepath.Join(dir, "routes.json")
	rev := strconv.FormatInt(plan.Data.Revision, 10)
	sync := func(nodes string, extra ...string) (result, int) {
		r, code, _ := call(t, nodes, append([]string{"routes", "sync", "--netns", node.NS, "--record", record}, extra...)...)
		return r, code
	}
	if r, code := sync(planOut.String(), "--revision", rev); code != 0 || !*r.Result || !strings.Contains(r.Comment, "5 added") {
		t.Fatalf("sync of revision %s: %d %+v", rev, code, r)
	}
	r, code := sync(string(older), "--revision", strconv.FormatInt(plan.Data.Revision-1, 10))
	if code != 0 || !*r.Result || len(r.Changes) != 0 || !strings.Contains(r.Comment, "newer than this one's") {
		t.Fatalf("sync of an older revision: %d %+v", code, r)
	}
	if rec, err := routes.ReadRecord(record); err != nil || rec.Revision != plan.Data.Revision || len(rec.Nodes) != 6 {
		t.Fatalf("the record changed: %+v %v", rec, err)
	}
	if out := l.In(node.NS, "ip", "route", "show", "proto", "201"); strings.Count(out, "via") != 5 {
		t.Fatalf("routes changed by an older list:\n%s", out)
	}
	// Bad input changes nothing either.
	if r, code := sync(string(older), "--revision", "-1"); code != 2 || !strings.Contains(r.Comment, "--revision -1") {
		t.Fatalf("--revision -1: %d %+v", code, r)
	}
	// No revision: applied (a person's sync by hand), and recorded as such.
	if r, code := sync(string(older)); code != 0 || !strings.Contains(r.Comment, "1 removed") {
		t.Fatalf("sync without a revision: %d %+v", code, r)
	}
	if rec, _ := routes.ReadRecord(record); rec.Revision != 0 {
		t.Errorf("record revision %d after a sync without one", rec.Revision)
	}
}
