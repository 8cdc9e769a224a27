package etcdmembers

import (
	"reflect"
	"strings"
	"testing"
)

// etcd 3.5's `etcdctl member list -w json` for three masters, IDs beyond
// 2^53 as etcd makes them, and one member added but not started.
const list = `{"header":{"cluster_id":17237436991929493444,"member_id":9372538179322589801,"raft_term":2},
"members":[
 {"ID":9372538179322589801,"name":"master-0","peerURLs":["https://192.168.170.10:2380"],"clientURLs":["https://192.168.170.10:2379"]},
 {"ID":10501334649042878790,"name":"master-2","peerURLs":["https://192.168.170.12:2380"],"clientURLs":["https://192.168.170.12:2379"]},
 {"ID":18249187646912138824,"name":"master-1","peerURLs":["https://192.168.170.11:2380"],"clientURLs":["https://192.168.170.11:2379"]},
 {"ID":5,"peerURLs":["https://192.168.170.13:2380"]}]}`

func TestParse(t *testing.T) {
	got, err := Parse([]byte(list))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[3].Name != "master-2" || got[3].HexID() != "91bc3c398fb3c146" || got[0].Name != "" {
		t.Errorf("members %+v", got)
	}
	if _, err := Parse([]byte("Error: context deadline exceeded")); err == nil {
		t.Error("etcdctl's error text parsed as a member list")
	}
}

// A master that left is removed; a member not started yet is kept; a
// --keep that names no member removes nothing.
func TestPrune(t *testing.T) {
	members, _ := Parse([]byte(list))
	remove, err := Prune(members, []string{"master-0", "master-1"})
	if err != nil || len(remove) != 1 || remove[0].Name != "master-2" {
		t.Errorf("remove %+v %v, want master-2", remove, err)
	}
	remove, err = Prune(members, []string{"master-0", "master-1", "master-2"})
	if err != nil || len(remove) != 0 {
		t.Errorf("every master kept: remove %+v %v", remove, err)
	}
	for _, keep := range [][]string{nil, {"node-a", "node-b"}} {
		remove, err = Prune(members, keep)
		if err == nil || remove != nil || !strings.Contains(err.Error(), "--keep") {
			t.Errorf("keep %v: remove %+v %v, want an error naming --keep and nothing removed", keep, remove, err)
		}
	}
	if !reflect.DeepEqual(members[1].PeerURLs, []string{"https://192.168.170.10:2380"}) {
		t.Errorf("peer URLs %v", members[1].PeerURLs)
	}
}
