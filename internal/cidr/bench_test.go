package cidr

import (
	"fmt"
	"math/big"
	"net/netip"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// bigDefinition is 10.0.0.0/8 in /24s with n nodes, built directly (the
// loader's cost is not the planner's).
func bigDefinition(n int) *cluster.Definition {
	d := &cluster.Definition{Network: cluster.Network{
		NodeCIDRs:    []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/24")},
		NodeMaskV4:   24,
	}}
	d.Nodes = make([]cluster.Node, n)
	for i := range d.Nodes {
		d.Nodes[i] = cluster.Node{Name: fmt.Sprintf("node-%05d", i), Role: cluster.RoleWorker,
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)})}}
	}
	return d
}

// cidrSet is kube-controller-manager's allocator (pkg/controller/nodeipam/
// ipam/cidrset), reduced to what planning needs: a big.Int bitmap and a
// next-candidate cursor, scanning from the cursor for a free bit.
type cidrSet struct {
	used          big.Int
	maxCIDRs      int
	nextCandidate int
}

func (s *cidrSet) occupy(i int) { s.used.SetBit(&s.used, i, 1) }

func (s *cidrSet) allocateNext() (int, bool) {
	for i := 0; i < s.maxCIDRs; i++ {
		c := (s.nextCandidate + i) % s.maxCIDRs
		if s.used.Bit(c) == 0 {
			s.nextCandidate = (c + 1) % s.maxCIDRs
			s.used.SetBit(&s.used, c, 1)
			return c, true
		}
	}
	return 0, false
}

// BenchmarkPlan measures a full plan of 65,536 nodes and adding one node to
// a 65,535-node plan, each beside kube-controller-manager's cidrset doing the
// same, and reports the ratio.
func BenchmarkPlan(b *testing.B) {
	const n = 65536
	full := bigDefinition(n)
	b.Run("full-65536", func(b *testing.B) {
		var plan Plan
		for i := 0; i < b.N; i++ {
			var err error
			if plan, _, err = Compute(full, Plan{}); err != nil {
				b.Fatal(err)
			}
		}
		if len(plan.Nodes) != n {
			b.Fatalf("planned %d", len(plan.Nodes))
		}
		ours := b.Elapsed() / time.Duration(b.N)
		start := time.Now()
		s := &cidrSet{maxCIDRs: n}
		for i := 0; i < n; i++ {
			s.allocateNext()
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "cidrset-ms")
		b.ReportMetric(float64(ours.Microseconds())/1000, "kubesalt-ms")
	})

	// The node added is the lowest name, so the free block is found after
	// every other node took its own: the worst case for a cursor scan.
	prev, _, _ := Compute(bigDefinition(n), Plan{})
	delete(prev.Nodes, "node-00000")
	b.Run("add-one-to-65535", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			p, ch, err := Compute(full, prev)
			if err != nil || len(ch.Assigned) != 1 || p.Nodes["node-00000"][0].String() != "10.0.0.0/24" {
				b.Fatalf("%v %v", ch.Assigned, err)
			}
		}
		ours := b.Elapsed() / time.Duration(b.N)
		// cidrset after a controller restart: occupy every existing node's
		// block, then allocate from the cursor at 0.
		start := time.Now()
		s := &cidrSet{maxCIDRs: n}
		for i := 1; i < n; i++ {
			s.occupy(i)
		}
		if c, _ := s.allocateNext(); c != 0 {
			b.Fatal(c)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "cidrset-ms")
		b.ReportMetric(float64(ours.Microseconds())/1000, "kubesalt-ms")
	})

	// The allocation step alone, on a set with 65,535 blocks taken: ours
	// reads the summary words; cidrset scans from its cursor.
	b.Run("allocate-one-in-65535", func(b *testing.B) {
		set := newBlocks(netip.MustParsePrefix("10.0.0.0/8"), 24)
		for i := 1; i < n; i++ {
			set.take(i)
		}
		cs := &cidrSet{maxCIDRs: n, nextCandidate: 1}
		for i := 1; i < n; i++ {
			cs.occupy(i)
		}
		var oursNs, baseNs time.Duration
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			j, ok := set.lowestFree()
			oursNs += time.Since(t0)
			if !ok || j != 0 {
				b.Fatal(j)
			}
			t1 := time.Now()
			k, ok := cs.allocateNext()
			baseNs += time.Since(t1)
			if !ok || k != 0 {
				b.Fatal(k)
			}
			cs.used.SetBit(&cs.used, 0, 0)
			cs.nextCandidate = 1
		}
		b.ReportMetric(float64(oursNs.Nanoseconds())/float64(b.N), "kubesalt-ns/alloc")
		b.ReportMetric(float64(baseNs.Nanoseconds())/float64(b.N), "cidrset-ns/alloc")
		b.ReportMetric(float64(baseNs)/float64(oursNs), "x-faster-than-cidrset")
	})
}
