package routes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The watcher: routes heal between state runs. It listens to the
// namespace's route, link, address and nexthop events and, once they
// settle, runs the reconcile a route sync runs (Conn.Sync) with the node
// list the last sync recorded. It never adopts: a foreign route at a
// wanted destination is reported and left alone, as a sync without
// --adopt leaves it.

// WatchOptions says where to watch and how often to reconcile.
type WatchOptions struct {
	Netns  string // named network namespace; "" = this one
	Record string // the record `routes sync --record` writes
	// Debounce is the quiet time after an event before reconciling;
	// a burst of events is reconciled at most MaxDelay after its first.
	Debounce time.Duration
	MaxDelay time.Duration
	// Resync reconciles this often without any event (0: never).
	Resync time.Duration
	Log    io.Writer
	// Reconciled, when set, is called after each reconcile (tests and the
	// benchmark watch it).
	Reconciled func(*Report, error)
}

// Default timings of the watcher.
const (
	DefaultDebounce = 100 * time.Millisecond
	DefaultMaxDelay = time.Second
	DefaultResync   = 10 * time.Minute
	retryMin        = time.Second
	retryMax        = 30 * time.Second
)

// The multicast groups the watcher joins: links, addresses and routes of
// both families; nexthop objects (group 32) are joined by setsockopt.
const (
	watchGroups = unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR |
		unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE
	rtnlgrpNexthop = 32
)

// Watch reconciles on events until ctx ends, then returns nil. It returns
// an error only when it cannot listen at all.
func Watch(ctx context.Context, o WatchOptions) error {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.MaxDelay < o.Debounce {
		o.MaxDelay = max(DefaultMaxDelay, o.Debounce)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	fd, err := socketIn(o.Netns, watchGroups)
	if err != nil {
		return fmt.Errorf("listening to route events in %s: %w", nsLabel(o.Netns), err)
	}
	// Deleting a nexthop object deletes its routes without a route event.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, rtnlgrpNexthop)
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	// Non-blocking, so that the runtime's poller waits for it and Close
	// ends a pending read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	f := os.NewFile(uintptr(fd), "rtnetlink")
	w := &watcher{o: o, events: make(chan struct{}, 1)}
	w.proto.Store(DefaultProtocol)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.listen(f) }()
	defer func() { f.Close(); wg.Wait() }()
	fmt.Fprintf(o.Log, "routes watch: watching %s; node list from %s\n", nsLabel(o.Netns), o.Record)
	return w.loop(ctx)
}

func nsLabel(ns string) string {
	if ns == "" {
		return "this network namespace"
	}
	return "network namespace " + ns
}

type watcher struct {
	o      WatchOptions
	events chan struct{} // one pending wake-up at most
	proto  atomic.Int32  // the record's protocol: our own route additions are no news
	// What was last logged, so that a standing problem is said once.
	conflicts, failed string
	noRecord          bool
}

// listen reads event datagrams until f is closed, waking the loop for each
// one that may concern kubesalt's routes.
func (w *watcher) listen(f *os.File) {
	buf := make([]byte, 256<<10)
	for {
		n, err := f.Read(buf)
		if errors.Is(err, unix.ENOBUFS) {
			w.wake() // events were lost: reconcile anyway
			continue
		}
		if err != nil {
			return
		}
		if w.relevant(buf[:n]) {
			w.wake()
		}
	}
}

func (w *watcher) wake() {
	select {
	case w.events <- struct{}{}:
	default:
	}
}

// relevant says whether a datagram holds an event after which the owned
// routes may differ from the desired ones: a deleted route, a route of
// another protocol (a possible conflict), a link or address change, a
// deleted nexthop object. The watcher's own additions are not.
func (w *watcher) relevant(b []byte) bool {
	proto := uint8(w.proto.Load())
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(native.Uint32(b))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return true // malformed: reconcile rather than miss something
		}
		typ, p := native.Uint16(b[4:]), b[unix.NLMSG_HDRLEN:l]
		switch typ {
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			if len(p) < 12 {
				return true
			}
			cloned := native.Uint32(p[8:])&unix.RTM_F_CLONED != 0
			local := p[4] == unix.RT_TABLE_LOCAL
			ours := typ == unix.RTM_NEWROUTE && p[5] == proto
			if !cloned && !local && !ours {
				return true
			}
		case unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_NEWADDR, unix.RTM_DELADDR, unix.RTM_DELNEXTHOP:
			return true
		}
		b = b[min(nlmAlign(l), len(b)):]
	}
	return false
}

// loop reconciles at start, after each burst of events, on failure with a
// back-off, and every Resync.
func (w *watcher) loop(ctx context.Context) error {
	o := w.o
	var first time.Time // of the burst waiting to be reconciled
	settle := time.NewTimer(0)
	var resync <-chan time.Time
	if o.Resync > 0 {
		t := time.NewTicker(o.Resync)
		defer t.Stop()
		resync = t.C
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := retryMin
	reconcile := func() {
		first = time.Time{}
		rep, err := w.reconcile()
		if o.Reconciled != nil {
			o.Reconciled(rep, err)
		}
		if err != nil || len(rep.Failed) > 0 {
			retry.Reset(backoff)
			backoff = min(2*backoff, retryMax)
		} else {
			backoff = retryMin
		}
	}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(o.Log, "routes watch: stopping; the routes stay as they are")
			return nil
		case <-w.events:
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			settle.Reset(min(o.Debounce, max(0, first.Add(o.MaxDelay).Sub(now))))
		case <-settle.C:
			reconcile()
		case <-retry.C:
			reconcile()
		case <-resync:
			reconcile()
		}
	}
}

// reconcile runs one sync from the record, under the record's lock, and
// logs what it changed and what stands in its way.
func (w *watcher) reconcile() (*Report, error) {
	o := w.o
	unlock, err := LockRecord(o.Record)
	if err != nil {
		fmt.Fprintf(o.Log, "routes watch: %v\n", err)
		return nil, err
	}
	defer unlock()
	rec, err := ReadRecord(o.Record)
	if errors.Is(err, ErrNoRecord) {
		if !w.noRecord {
			fmt.Fprintf(o.Log, "routes watch: %v; waiting for it\n", err)
		}
		w.noRecord = true
		return nil, err
	}
	w.noRecord = false
	if err != nil {
		fmt.Fprintf(o.Log, "routes watch: %v\n", err)
		return nil, err
	}
	w.proto.Store(int32(rec.Protocol))
	rep, err := syncRecord(o.Netns, rec)
	if err != nil {
		fmt.Fprintf(o.Log, "routes watch: %v\n", err)
		return nil, err
	}
	w.log(rep)
	return rep, nil
}

// syncRecord is `routes sync` with the record's node list and options.
func syncRecord(netns string, rec Record) (*Report, error) {
	c, err := Open(Options{Netns: netns, Protocol: rec.Protocol, Table: rec.Table, Plain: rec.Plain})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	local, err := c.LocalAddrs()
	if err != nil {
		return nil, err
	}
	desired, err := Desired(rec.Nodes, rec.Self, local)
	if err != nil {
		return nil, err
	}
	return c.Sync(desired)
}

func (w *watcher) log(rep *Report) {
	out := w.o.Log
	for _, x := range []struct {
		verb string
		rs   []Route
	}{{"added", rep.Added}, {"replaced", rep.Replaced}, {"removed", rep.Removed}} {
		for _, r := range x.rs {
			fmt.Fprintf(out, "routes watch: %s %s%s\n", x.verb, r, nodeSuffix(r))
		}
	}
	var cs []string
	for _, c := range rep.Conflicts {
		cs = append(cs, fmt.Sprintf("%s%s (existing: %s)", c.Route, nodeSuffix(c.Route), c.Existing))
	}
	sort.Strings(cs)
	if s := strings.Join(cs, "; "); s != w.conflicts {
		if s != "" {
			fmt.Fprintf(out, "routes watch: CONFLICT, left alone (remove the foreign route, or sync with --adopt): %s\n", s)
		} else if w.conflicts != "" {
			fmt.Fprintln(out, "routes watch: no conflict any more")
		}
		w.conflicts = s
	}
	var fs []string
	for _, f := range rep.Failed {
		fs = append(fs, fmt.Sprintf("%s%s: %s", f.Route, nodeSuffix(f.Route), f.Error))
	}
	if s := strings.Join(fs, "; "); s != w.failed {
		if s != "" {
			fmt.Fprintf(out, "routes watch: FAILED, retrying: %s\n", s)
		}
		w.failed = s
	}
}

func nodeSuffix(r Route) string {
	if r.Node == "" {
		return ""
	}
	return " (" + r.Node + ")"
}
