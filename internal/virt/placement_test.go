package virt

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

func hvDefinition(t *testing.T, nodes, hypervisors string) *cluster.Definition {
	t.Helper()
	d, err := cluster.Load([]byte(`
kubernetes:
  network: {node_cidr: 192.168.170.0/24, cluster_cidr: 10.200.0.0/16, service_cidr: 10.32.0.0/24}
  nodes:
` + nodes + `
  libvirt:
    base_image: base.qcow2
    network: {forward: bridge, bridge: br0}
    hypervisors: {` + hypervisors + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func nodeLines(masters, workers int, pins map[string]string) string {
	var b strings.Builder
	for i := 0; i < masters; i++ {
		name := fmt.Sprintf("master-%d", i)
		fmt.Fprintf(&b, "    %s: {role: master, ip: 192.168.170.%d%s}\n", name, 10+i, pin(pins[name]))
	}
	for i := 0; i < workers; i++ {
		name := fmt.Sprintf("worker-%d", i)
		fmt.Fprintf(&b, "    %s: {role: worker, ip: 192.168.170.%d%s}\n", name, 20+i, pin(pins[name]))
	}
	return b.String()
}

func pin(hv string) string {
	if hv == "" {
		return ""
	}
	return ", hypervisor: " + hv
}

const twoHypervisors = "hv-0: {uri: 'qemu:///system'}, hv-1: {uri: 'qemu+ssh://root@hv-1/system'}"

// The masters are spread over the hypervisors, a pinned one counting;
// every node is placed on one of them.
func TestPlacementSpreadsMasters(t *testing.T) {
	for _, tc := range []struct {
		hvs  string
		pins map[string]string
		want map[string]int // masters per hypervisor
	}{
		{twoHypervisors, nil, map[string]int{"hv-0": 2, "hv-1": 1}},
		{twoHypervisors + ", hv-2: {uri: 'qemu:///system'}", nil, map[string]int{"hv-0": 1, "hv-1": 1, "hv-2": 1}},
		{twoHypervisors, map[string]string{"master-2": "hv-1"}, map[string]int{"hv-0": 2, "hv-1": 1}},
		{twoHypervisors, map[string]string{"master-0": "hv-1", "master-1": "hv-1"}, map[string]int{"hv-0": 1, "hv-1": 2}},
	} {
		d := hvDefinition(t, nodeLines(3, 4, tc.pins), tc.hvs)
		placed := Placement(d)
		got := map[string]int{}
		for _, n := range d.Nodes {
			hv := placed[n.Name]
			if _, ok := d.Libvirt.Hypervisors[hv]; !ok {
				t.Errorf("%s placed on %q", n.Name, hv)
			}
			if n.Role == cluster.RoleMaster {
				got[hv]++
			}
			if p := tc.pins[n.Name]; p != "" && hv != p {
				t.Errorf("%s is pinned to %s but placed on %s", n.Name, p, hv)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s %v: masters per hypervisor %v, want %v", tc.hvs, tc.pins, got, tc.want)
		}
	}
}

// A worker keeps its hypervisor while other workers come and go.
func TestPlacementKeepsWorkers(t *testing.T) {
	before := Placement(hvDefinition(t, nodeLines(1, 6, nil), twoHypervisors))
	after := Placement(hvDefinition(t, nodeLines(1, 12, nil), twoHypervisors))
	fewer := Placement(hvDefinition(t, nodeLines(1, 3, nil), twoHypervisors))
	used := map[string]bool{}
	for i := 0; i < 6; i++ {
		w := fmt.Sprintf("worker-%d", i)
		used[before[w]] = true
		if after[w] != before[w] || (i < 3 && fewer[w] != before[w]) {
			t.Errorf("%s moved: %s with 6 workers, %s with 12, %s with 3", w, before[w], after[w], fewer[w])
		}
	}
	if len(used) != 2 {
		t.Errorf("6 workers all on %v", used)
	}
}

// A hypervisor's nodes; bad --hypervisor and --node name the fix; one
// hypervisor (no list) keeps every node.
func TestOnHypervisor(t *testing.T) {
	d := hvDefinition(t, nodeLines(1, 2, map[string]string{"worker-0": "hv-1", "worker-1": "hv-1"}), twoHypervisors)
	if got, err := OnHypervisor(d, "hv-1", nil); err != nil || strings.Join(got, ",") != "worker-0,worker-1" {
		t.Errorf("hv-1: %v %v", got, err)
	}
	if got, err := OnHypervisor(d, "hv-0", nil); err != nil || strings.Join(got, ",") != "master-0" {
		t.Errorf("hv-0: %v %v", got, err)
	}
	for _, tc := range []struct {
		hv    string
		names []string
		want  string
	}{
		{"", nil, "--hypervisor: missing"},
		{"hv-9", nil, `--hypervisor "hv-9": not under kubernetes:libvirt:hypervisors`},
		{"hv-0", []string{"worker-0"}, "--node worker-0: its VM goes on hypervisor hv-1, not hv-0"},
	} {
		if _, err := OnHypervisor(d, tc.hv, tc.names); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: %v, want %q", tc.hv, tc.names, err, tc.want)
		}
	}
	single := hvDefinition(t, nodeLines(1, 1, nil), "")
	if got, err := OnHypervisor(single, "anything", nil); err != nil || got != nil {
		t.Errorf("one hypervisor: %v %v", got, err)
	}
	if URIOf(d, "hv-1") != "qemu+ssh://root@hv-1/system" || URIOf(single, "x") != single.Libvirt.URI {
		t.Error("URIOf")
	}
}

// Bridge mode: the network only names the host's bridge.
func TestNetworkXMLBridgeMode(t *testing.T) {
	x, err := NetworkXML(hvDefinition(t, nodeLines(1, 1, nil), twoHypervisors))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(x, `<forward mode="bridge"></forward>`) || !strings.Contains(x, `<bridge name="br0"></bridge>`) || strings.Contains(x, "<ip") {
		t.Errorf("bridge-mode network:\n%s", x)
	}
}

// A node marked hypervisor: none is a machine of its own: never placed,
// never made, and named as such when asked for.
func TestNoHypervisorIsNoVM(t *testing.T) {
	d := hvDefinition(t, nodeLines(1, 2, map[string]string{"master-0": "none", "worker-0": "none"}), twoHypervisors)
	placed := Placement(d)
	if _, ok := placed["master-0"]; ok || placed["worker-1"] == "" {
		t.Errorf("placement %v", placed)
	}
	var here []string
	for _, hv := range []string{"hv-0", "hv-1"} {
		got, err := OnHypervisor(d, hv, nil)
		if err != nil {
			t.Fatal(err)
		}
		here = append(here, got...)
	}
	if strings.Join(here, ",") != "worker-1" {
		t.Errorf("VMs on the hypervisors: %v", here)
	}
	if _, err := Specs(d, []string{"worker-0"}); err == nil || !strings.Contains(err.Error(), `hypervisor is "none"`) {
		t.Errorf("Specs of a none node: %v", err)
	}
	specs, err := Specs(d, nil)
	if err != nil || len(specs) != 1 || specs[0].Name != "worker-1" {
		t.Errorf("every VM: %v %v", specs, err)
	}
}
