package cidr

import (
	"errors"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
	"github.com/kubesalt/kubesalt/internal/cluster"
)

// definition builds a definition with the named nodes (IPs from their index).
func definition(t testing.TB, cluster4, cluster6 string, mask4 int, nodes map[string]string) *cluster.Definition {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "network:\n  node_cidr: [172.16.0.0/12, fd00:170::/64]\n  service_cidr: 10.32.0.0/24\n  node_cidr_mask_size_ipv4: %d\n", mask4)
	if cluster6 != "" {
		fmt.Fprintf(&b, "  cluster_cidr: [%s, %s]\n", cluster4, cluster6)
	} else {
		fmt.Fprintf(&b, "  cluster_cidr: %s\n", cluster4)
	}
	b.WriteString("nodes:\n")
	i := 0
	for name, pin := range nodes {
		i++
		fmt.Fprintf(&b, "  %s: {role: worker, ip: [172.16.%d.%d, 'fd00:170::%x']", name, i/250, i%250+1, i)
		if pin != "" {
			fmt.Fprintf(&b, ", pod_cidr: %s", pin)
		}
		b.WriteString("}\n")
	}
	d, err := cluster.Load([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func names(ns ...string) map[string]string {
	m := map[string]string{}
	for _, n := range ns {
		m[n] = ""
	}
	return m
}

func TestDeterministicAndStable(t *testing.T) {
	d := definition(t, "10.200.0.0/16", "", 24, names("c", "a", "b"))
	p1, ch, err := Compute(d, Plan{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "10.200.0.0/24", "b": "10.200.1.0/24", "c": "10.200.2.0/24"}
	for n, w := range want {
		if got := p1.Nodes[n][0].String(); got != w {
			t.Errorf("%s = %s, want %s", n, got, w)
		}
	}
	if len(ch.Assigned) != 3 {
		t.Errorf("assigned = %v", ch.Assigned)
	}
	// Remove a, add d and aa: b and c keep their blocks; aa (first by name)
	// takes a's released block.
	d2 := definition(t, "10.200.0.0/16", "", 24, names("b", "c", "d", "aa"))
	p2, ch2, err := Compute(d2, p1)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Nodes["b"][0] != p1.Nodes["b"][0] || p2.Nodes["c"][0] != p1.Nodes["c"][0] {
		t.Errorf("kept nodes moved: %v -> %v", p1.Nodes, p2.Nodes)
	}
	if got := p2.Nodes["aa"][0].String(); got != "10.200.0.0/24" {
		t.Errorf("aa = %s, want the released 10.200.0.0/24", got)
	}
	if got := p2.Nodes["d"][0].String(); got != "10.200.3.0/24" {
		t.Errorf("d = %s", got)
	}
	if got := ch2.Released["a"]; len(got) != 1 || got[0].String() != "10.200.0.0/24" {
		t.Errorf("released = %v", ch2.Released)
	}
	// Same inputs, same plan, no changes.
	p3, ch3, _ := Compute(d2, p2)
	if !ch3.Empty() || fmt.Sprint(p3) != fmt.Sprint(p2) {
		t.Errorf("second run changed: %+v", ch3)
	}
}

func TestDualStack(t *testing.T) {
	d := definition(t, "10.200.0.0/16", "fd00:10:200::/56", 24, names("a", "b"))
	p, _, err := Compute(d, Plan{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(p.Nodes["b"]); got != "[10.200.1.0/24 fd00:10:200:1::/64]" {
		t.Errorf("b = %s", got)
	}
}

func TestPinsAndClashes(t *testing.T) {
	d := definition(t, "10.200.0.0/16", "", 24, map[string]string{"a": "", "b": "10.200.0.0/24"})
	p, _, err := Compute(d, Plan{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Nodes["a"][0].String() != "10.200.1.0/24" || p.Nodes["b"][0].String() != "10.200.0.0/24" {
		t.Errorf("plan = %v", p.Nodes)
	}
	// Pinning a block another node holds is refused: assignments never move.
	d2 := definition(t, "10.200.0.0/16", "", 24, map[string]string{"a": "", "b": "10.200.0.0/24", "c": "10.200.1.0/24"})
	_, _, err = Compute(d2, p)
	var pe *PlanError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "10.200.1.0/24 is pinned on node c but node a holds it") {
		t.Errorf("err = %v", err)
	}
	// Pinning a node to another free block moves it, reported.
	d3 := definition(t, "10.200.0.0/16", "", 24, map[string]string{"a": "10.200.9.0/24", "b": "10.200.0.0/24"})
	p3, ch3, err := Compute(d3, p)
	if err != nil || p3.Nodes["a"][0].String() != "10.200.9.0/24" || ch3.Moved["a"].From.String() != "10.200.1.0/24" {
		t.Errorf("move: %v %+v %v", p3.Nodes, ch3, err)
	}
}

func TestNetworkChangedUnderRunningCluster(t *testing.T) {
	d := definition(t, "10.200.0.0/16", "", 24, names("a"))
	p, _, _ := Compute(d, Plan{})
	d2 := definition(t, "10.100.0.0/16", "", 24, names("a"))
	_, _, err := Compute(d2, p)
	if err == nil || !strings.Contains(err.Error(), "node a holds 10.200.0.0/24 in the plan, which is not a /24 block of the cluster CIDR 10.100.0.0/16") {
		t.Errorf("err = %v", err)
	}
}

func TestExhaustedNamesHowManyFitAndWritesNothing(t *testing.T) {
	// Validation refuses more nodes than fit; build the definition by hand
	// to reach the planner's own guard.
	d := definition(t, "10.200.0.0/22", "", 24, names("a"))
	for i := 0; i < 4; i++ {
		d.Nodes = append(d.Nodes, cluster.Node{Name: fmt.Sprintf("b%d", i), Role: cluster.RoleWorker, IPs: d.Nodes[0].IPs})
	}
	path := filepath.Join(t.TempDir(), "plan.json")
	_, _, err := Update(path, d, false)
	if err == nil || !strings.Contains(err.Error(), "10.200.0.0/22 is exhausted") || !strings.Contains(err.Error(), "4 nodes fit") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("a failed plan wrote the plan file")
	}
}

func TestReservedBlocksNeverHandedOut(t *testing.T) {
	b := newBlocks(netip.MustParsePrefix("10.0.0.0/16"), 24)
	b.reserve(netip.MustParsePrefix("10.0.0.0/23"))  // two blocks
	b.reserve(netip.MustParsePrefix("10.0.5.16/28")) // inside one block
	b.reserve(netip.MustParsePrefix("192.168.0.0/16"))
	var got []string
	for i := 0; i < 3; i++ {
		j, _ := b.lowestFree()
		b.take(j)
		got = append(got, b.block(j).String())
	}
	if want := "[10.0.2.0/24 10.0.3.0/24 10.0.4.0/24]"; fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
	j, _ := b.lowestFree()
	if b.block(j).String() != "10.0.6.0/24" {
		t.Errorf("next = %s, want 10.0.6.0/24 (10.0.5.0/24 holds a reserved range)", b.block(j))
	}
}

// Property: for random sequences of adds and removes, no two nodes overlap,
// no assignment ever moves, and every block lies in the cluster CIDR.
func TestPropertyRandomAddsAndRemoves(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		cl4, cl6 := netip.MustParsePrefix("10.200.0.0/20"), netip.MustParsePrefix("fd00:10:200::/60")
		live := map[string]string{}
		plan := Plan{}
		next := 0
		for step := 0; step < 60; step++ {
			if len(live) > 0 && rng.Intn(3) == 0 {
				for n := range live {
					delete(live, n)
					if rng.Intn(2) == 0 {
						break
					}
				}
			} else {
				for k := rng.Intn(4) + 1; k > 0 && len(live) < 16; k-- {
					live[fmt.Sprintf("n%03d", next)] = ""
					next++
				}
			}
			if len(live) == 0 {
				continue
			}
			d := definition(t, cl4.String(), cl6.String(), 24, live)
			p, _, err := Compute(d, plan)
			if err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			var all []netip.Prefix
			for n, ps := range p.Nodes {
				if len(ps) != 2 {
					t.Fatalf("node %s has %v", n, ps)
				}
				for k, q := range ps {
					if !cl4.Contains(q.Addr()) && !cl6.Contains(q.Addr()) {
						t.Fatalf("seed %d: %s outside the cluster CIDRs", seed, q)
					}
					if old, ok := plan.Nodes[n]; ok && old[k] != q {
						t.Fatalf("seed %d: %s moved %s -> %s", seed, n, old[k], q)
					}
					for _, o := range all {
						if o.Overlaps(q) {
							t.Fatalf("seed %d: %s overlaps %s", seed, q, o)
						}
					}
					all = append(all, q)
				}
			}
			plan = p
		}
	}
}

func TestUpdatePersistsAtomicallyAndIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "plan.json")
	d := definition(t, "10.200.0.0/16", "", 24, names("a", "b"))
	if _, ch, err := Update(path, d, true); err != nil || len(ch.Assigned) != 2 {
		t.Fatalf("test run: %+v %v", ch, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("test mode wrote the plan: %v", err)
	}
	if _, _, err := Update(path, d, false); err != nil {
		t.Fatal(err)
	}
	st1, _ := os.Stat(path)
	if st1.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v", st1.Mode())
	}
	_, ch, err := Update(path, d, false)
	if err != nil || !ch.Empty() {
		t.Fatalf("second run: %+v %v", ch, err)
	}
	st2, _ := os.Stat(path)
	if !st2.ModTime().Equal(st1.ModTime()) {
		t.Error("no-op run rewrote the plan file")
	}
	// A corrupt plan is an error naming the file and the fix, and is kept.
	os.WriteFile(path, []byte("{nope"), 0o600)
	if _, _, err := Update(path, d, false); err == nil || !strings.Contains(err.Error(), "is corrupt") {
		t.Errorf("err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{nope" {
		t.Error("corrupt plan was overwritten")
	}
}

// Update holds the plan's lock for its whole read-plan-write, so a second
// planner waits instead of planning from a plan about to change.
func TestUpdateWaitsForTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.json")
	unlock, err := atomicfile.Lock(path + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	d := definition(t, "10.200.0.0/16", "", 24, names("a"))
	done := make(chan error)
	go func() { _, _, err := Update(path, d, false); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("Update finished while another held the lock (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p, _ := ReadPlan(path); len(p.Nodes) != 1 {
		t.Errorf("plan = %v", p.Nodes)
	}
}

// The revision orders node lists: it grows with each change (even when the
// clock is behind), and stays when nothing changed.
func TestRevisionGrowsWithEachChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.json")
	first, _, err := Update(path, definition(t, "10.200.0.0/16", "", 24, names("a", "b")), false)
	if err != nil || first.Revision == 0 {
		t.Fatalf("first plan: revision %d, %v", first.Revision, err)
	}
	same, _, _ := Update(path, definition(t, "10.200.0.0/16", "", 24, names("a", "b")), false)
	if same.Revision != first.Revision {
		t.Errorf("no change moved the revision: %d -> %d", first.Revision, same.Revision)
	}
	added, _, _ := Update(path, definition(t, "10.200.0.0/16", "", 24, names("a", "b", "c")), false)
	if added.Revision <= first.Revision {
		t.Errorf("adding c: revision %d, not above %d", added.Revision, first.Revision)
	}
	if stored, _ := ReadPlan(path); stored.Revision != added.Revision {
		t.Errorf("stored revision %d, want %d", stored.Revision, added.Revision)
	}
	if got := nextRevision(100, true, time.Unix(0, 50)); got != 101 {
		t.Errorf("clock behind: %d, want 101", got)
	}
	if got := nextRevision(100, false, time.Unix(0, 500)); got != 100 {
		t.Errorf("no change: %d, want 100", got)
	}
}
