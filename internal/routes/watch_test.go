package routes

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/nstest"
)

// syncBuffer is a log the watcher writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond every 20 ms up to limit and returns how long it took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// The watcher in a route lab of three nodes: it makes master-0's routes
// from the record at start, puts back a route deleted by hand and the
// routes a link flap lost, each within seconds, reports a foreign route
// at a wanted destination and leaves it alone, and stops with its context
// leaving the routes in place.
func TestWatchHealsRoutes(t *testing.T) {
	l := nstest.New(t)
	var nodes []labNode
	for i, name := range []string{"master-0", "worker-0", "worker-1"} {
		n := l.AddNode(mp("192.168.170."+[]string{"10", "20", "21"}[i]+"/24"), mp("10.200."+[]string{"0", "1", "2"}[i]+".0/24"))
		nodes = append(nodes, labNode{Node: n, name: name, pod: l.AddPod(n, 2)})
	}
	// The other nodes' routes by a plain sync, so pods can answer master-0's.
	for _, n := range nodes[1:] {
		syncNode(t, n, members(nodes), Options{})
	}
	me := nodes[0]
	record := filepath.Join(t.TempDir(), "routes.json")
	if _, err := WriteRecord(record, Record{Self: me.name, Protocol: DefaultProtocol, Table: 254, Nodes: members(nodes)}); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	var mu sync.Mutex
	var last *Report
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, WatchOptions{Netns: me.NS, Record: record, Log: &log, Reconciled: func(r *Report, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				last = r
			}
		}})
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Watch: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	routed := func(dst string) func() bool {
		return func() bool { return strings.Contains(kernelRoutes(l, me), dst+" ") }
	}
	both := func() bool { return routed("10.200.1.0/24")() && routed("10.200.2.0/24")() }
	waitFor(t, 5*time.Second, "the routes made from the record at start", both)
	if !l.Ping(me.pod, nodes[1].pod.IP) {
		t.Fatal("master-0's pod does not reach worker-0's through the watcher's route")
	}

	l.In(me.NS, "ip", "route", "del", "10.200.1.0/24")
	took := waitFor(t, 2*time.Second, "an owned route deleted by hand back", routed("10.200.1.0/24"))
	t.Logf("a deleted route was back after %s", took.Round(time.Millisecond))

	l.In(me.NS, "ip", "link", "set", "eth0", "down")
	waitFor(t, 2*time.Second, "the link going down takes the routes away", func() bool { return kernelRoutes(l, me) == "" })
	l.In(me.NS, "ip", "link", "set", "eth0", "up")
	took = waitFor(t, 5*time.Second, "the routes back after the link came up", both)
	t.Logf("a flapped link's routes were back %s after it came up", took.Round(time.Millisecond))
	if !l.Ping(me.pod, nodes[2].pod.IP) {
		t.Error("pods do not reach each other after the link flap")
	}

	// Someone routes worker-1's CIDR elsewhere, replacing kubesalt's route
	// in one step: a conflict, reported, and the foreign route stays.
	l.In(me.NS, "ip", "route", "replace", "10.200.2.0/24", "via", "192.168.170.99", "proto", "static")
	waitFor(t, 2*time.Second, "the conflict reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return last != nil && len(last.Conflicts) == 1 && last.Conflicts[0].Route.Node == "worker-1"
	})
	time.Sleep(300 * time.Millisecond) // past another debounce: still left alone
	if got := l.In(me.NS, "ip", "route", "show", "10.200.2.0/24"); !strings.Contains(got, "via 192.168.170.99") || !strings.Contains(got, "proto static") || strings.Count(got, "\n") != 1 {
		t.Fatalf("the foreign route was touched:\n%s", got)
	}
	if !strings.Contains(log.String(), "CONFLICT, left alone") || !strings.Contains(log.String(), "via 192.168.170.99") {
		t.Errorf("the conflict is not in the log:\n%s", log.String())
	}
	// Its owner removes it: kubesalt's route comes back.
	l.In(me.NS, "ip", "route", "del", "10.200.2.0/24", "proto", "static")
	waitFor(t, 2*time.Second, "the route back once the foreign one left", routed("10.200.2.0/24"))

	stop()
	if got := kernelRoutes(l, me); strings.Count(got, "\n") != 2 {
		t.Errorf("stopping the watcher changed the routes:\n%s", got)
	}
	if n := strings.Count(log.String(), "routes watch: added 10.200.1.0/24"); n < 2 {
		t.Errorf("the log says the route to worker-0 was added %d times, want at start and after the deletion:\n%s", n, log.String())
	}
}

// Without a record the watcher waits and says so once; the record's first
// appearance is picked up at the next event.
func TestWatchWaitsForRecord(t *testing.T) {
	l := nstest.New(t)
	a := l.AddNode(mp("192.168.170.10/24"), mp("10.200.0.0/24"))
	b := l.AddNode(mp("192.168.170.20/24"), mp("10.200.1.0/24"))
	nodes := []labNode{{Node: a, name: "a"}, {Node: b, name: "b"}}
	record := filepath.Join(t.TempDir(), "sub", "routes.json")
	var log syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, WatchOptions{Netns: a.NS, Record: record, Log: &log}) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 2*time.Second, "the watcher saying it waits", func() bool { return strings.Contains(log.String(), "waiting for it") })
	l.In(a.NS, "ip", "route", "add", "10.9.9.0/24", "via", "192.168.170.99")
	time.Sleep(300 * time.Millisecond)
	if n := strings.Count(log.String(), "waiting for it"); n != 1 {
		t.Errorf("said %d times that it waits, want once:\n%s", n, log.String())
	}
	if _, err := WriteRecord(record, Record{Self: "a", Protocol: DefaultProtocol, Table: 254, Nodes: members(nodes)}); err != nil {
		t.Fatal(err)
	}
	l.In(a.NS, "ip", "route", "del", "10.9.9.0/24")
	waitFor(t, 2*time.Second, "the route from the new record", func() bool { return strings.Contains(kernelRoutes(l, nodes[0]), "10.200.1.0/24") })
}
