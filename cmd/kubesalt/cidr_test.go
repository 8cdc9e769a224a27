package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// The plan's data carries the cluster's derived facts, which the ext_pillar
// hands to every minion: the formula reads them instead of deriving them.
func TestCIDRPlanCarriesClusterFacts(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.json")
	def := strings.Replace(pillar(t), "# vip: 192.168.170.5", "vip: 192.168.170.5", 1)
	r, code, stderr := call(t, def, "cidr", "plan", "--plan", plan, "--test")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var data struct {
		Cluster cluster.Facts `json:"cluster"`
	}
	if err := json.Unmarshal(r.Data, &data); err != nil {
		t.Fatal(err)
	}
	f := data.Cluster
	if f.APIURL != "https://192.168.170.5:6443" || len(f.Masters) != 3 || f.Masters[0].Name != "master-0" {
		t.Errorf("facts %+v: want the VIP's URL and the three masters in order", f)
	}
	if len(f.EtcdEndpoints) != 3 || f.EtcdEndpoints[0] != "https://192.168.170.10:2379" ||
		!strings.HasPrefix(f.EtcdInitialCluster, "master-0=https://192.168.170.10:2380,master-1=") {
		t.Errorf("etcd facts %v %q", f.EtcdEndpoints, f.EtcdInitialCluster)
	}
}
