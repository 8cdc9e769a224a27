package routes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"golang.org/x/sys/unix"
)

func TestRecordRoundTripAndErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "routes.json")
	if _, err := ReadRecord(path); !errors.Is(err, ErrNoRecord) || !strings.Contains(err.Error(), "routes sync --record") {
		t.Errorf("missing record: %v", err)
	}
	in := Record{Self: "a", Protocol: 201, Table: 254, Plain: true, Nodes: []cluster.Member{member("b", []string{"192.168.170.20"}, "10.200.1.0/24")}}
	if changed, err := WriteRecord(path, in); err != nil || !changed {
		t.Fatalf("write: %v %v", changed, err)
	}
	if changed, err := WriteRecord(path, in); err != nil || changed {
		t.Errorf("an unchanged record rewritten: %v %v", changed, err)
	}
	out, err := ReadRecord(path)
	if err != nil || out.Self != "a" || !out.Plain || out.Table != 254 || len(out.Nodes) != 1 || out.Nodes[0].PodCIDRs[0].String() != "10.200.1.0/24" {
		t.Errorf("read back %+v %v", out, err)
	}
	for content, want := range map[string]string{
		`{"protocol": 3, "table": 254, "nodes": []}`:                 "protocol 3 is not one kubesalt owns",
		`{"protocol": 201, "nodes": [{"name": "x", "ips": ["no"]}]}`: `"no" is not an IP address`,
		`{"protocol": "x"}`: "remove it and run `kubesalt routes sync --record",
	} {
		os.WriteFile(path, []byte(content), 0o644)
		if _, err := ReadRecord(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", content, err, want)
		}
	}
}

// Only events after which kubesalt's routes may be wrong wake the watcher.
func TestWatchRelevantEvents(t *testing.T) {
	w := &watcher{}
	w.proto.Store(DefaultProtocol)
	msg := func(typ uint16, table, proto uint8, flags uint32) []byte {
		m := newMessage(typ, 0, []byte{2, 24, 0, 0, table, proto, 0, 1, 0, 0, 0, 0})
		native.PutUint32(m[unix.NLMSG_HDRLEN+8:], flags)
		return m.seal(1, 0)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"our own route added", msg(unix.RTM_NEWROUTE, 254, DefaultProtocol, 0), false},
		{"our route deleted", msg(unix.RTM_DELROUTE, 254, DefaultProtocol, 0), true},
		{"a foreign route added", msg(unix.RTM_NEWROUTE, 254, unix.RTPROT_STATIC, 0), true},
		{"a local-table route", msg(unix.RTM_NEWROUTE, unix.RT_TABLE_LOCAL, unix.RTPROT_KERNEL, 0), false},
		{"a cached clone", msg(unix.RTM_DELROUTE, 254, unix.RTPROT_STATIC, unix.RTM_F_CLONED), false},
		{"a link event", newMessage(unix.RTM_NEWLINK, 0, make([]byte, 16)).seal(1, 0), true},
		{"a nexthop deleted", newMessage(unix.RTM_DELNEXTHOP, 0, make([]byte, 8)).seal(1, 0), true},
		{"a nexthop added", newMessage(unix.RTM_NEWNEXTHOP, 0, make([]byte, 8)).seal(1, 0), false},
		{"ours, then a foreign one", append(msg(unix.RTM_NEWROUTE, 254, DefaultProtocol, 0), msg(unix.RTM_NEWROUTE, 254, unix.RTPROT_BOOT, 0)...), true},
	} {
		if got := w.relevant(tc.b); got != tc.want {
			t.Errorf("%s: relevant %v, want %v", tc.name, got, tc.want)
		}
	}
}
