package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vmJourney is make e2e-vm's lab: 1 master and 1 worker in namespaces, two
// hypervisors (libvirtd and a minion in a namespace each, on a bridge the
// hosts share) and a worker added as a VM on each by orch.kubernetes.vms
// (the node image booted, its minion pre-accepted, add_node run by the
// created event), routed both ways and reaching a namespace pod without
// NAT; then a namespace worker added for comparison, the VMs removed, and
// the lab taken down with nothing left.
func vmJourney(tb testing.TB, l *Lab) (vms []VMTiming, ns AddTiming) {
	tb.Helper()
	if err := l.Up(SmallNodes(1, 1), Options{}); err != nil {
		tb.Fatal(err)
	}
	if err := l.Converge(); err != nil {
		tb.Fatal(err)
	}
	added, vms, err := l.AddVMs(2)
	if err != nil {
		tb.Fatal(err)
	}
	if added[0].Hypervisor == added[1].Hypervisor {
		tb.Errorf("both VMs on %s", added[0].Hypervisor)
	}
	plan, err := l.Plan()
	if err != nil {
		tb.Fatal(err)
	}
	// Every node routes every other's CIDR via its address, VMs included.
	for _, m := range l.st.Nodes {
		routes := l.Routes(m.Name)
		for _, o := range l.st.Nodes {
			if o.Name == m.Name {
				continue
			}
			if len(plan[o.Name]) == 0 || !strings.Contains(routes, fmt.Sprintf("%s nhid", plan[o.Name][0])) || !strings.Contains(routes, "via "+o.IP.String()) {
				tb.Errorf("%s has no route to %s's %v via %s:\n%s", m.Name, o.Name, plan[o.Name], o.IP, routes)
			}
		}
	}
	if _, _, err := l.AddNode(); err != nil {
		tb.Fatal(err)
	}
	ns = l.LastAdd
	for _, n := range added {
		if err := l.RemoveVM(n.Name); err != nil {
			tb.Fatal(err)
		}
		for _, m := range l.st.Nodes {
			if r := l.Routes(m.Name); strings.Contains(r, "via "+n.IP.String()) || strings.Contains(r, plan[n.Name][0].String()) {
				tb.Errorf("%s still routes to the removed VM %s:\n%s", m.Name, n.Name, r)
			}
		}
	}
	return vms, ns
}

// TestLabVM: make e2e-vm. Opt-in: it builds the node image (minutes, once)
// and boots a VM under software emulation.
func TestLabVM(t *testing.T) {
	if os.Getenv("KUBESALT_E2E_VM") == "" {
		t.Skip("opt-in: run `make e2e-vm` (KUBESALT_E2E_VM=1)")
	}
	locks := func() map[string]bool {
		m := map[string]bool{}
		found, _ := filepath.Glob(filepath.Join(os.TempDir(), "kubesalt-virt-*.lock"))
		for _, f := range found {
			m[f] = true
		}
		return m
	}
	before := locks()
	l := openTestLab(t)
	vms, ns := vmJourney(t, l)
	for i, vm := range vms {
		t.Logf("VM %d from orch.kubernetes.vms: running %s, static IP %s, minion %s, routed %s, pod-to-pod %s", i,
			vm.Running.Round(time.Second), vm.Pinged.Round(time.Second), vm.Minion.Round(time.Second), vm.Routed.Round(time.Second), vm.Pods.Round(time.Second))
	}
	t.Logf("namespace node from its minion's start: minion %s, routed %s", ns.Floor.Round(time.Millisecond), ns.Took.Round(time.Millisecond))
	checkDown(t, l)
	for f := range locks() {
		if !before[f] {
			t.Errorf("the lab left %s (kubesalt-virt's lock: the hypervisor minions' TMPDIR is the lab's)", f)
		}
	}
}

// BenchmarkLabVM (make bench-vm) prints the VM's times from node ensure
// beside a namespace node's in the same lab (from its minion's start; a
// namespace has no boot), with the ratio.
func BenchmarkLabVM(b *testing.B) {
	for i := 0; i < b.N; i++ {
		l := openTestLab(b)
		vms, ns := vmJourney(b, l)
		// On stdout: go test keeps only a benchmark's first log lines,
		// and the lab's progress fills them.
		for i, vm := range vms {
			fmt.Printf("bench-vm: VM on %s %-22s %10s %14s %s\n", hypervisorName(i), "from node ensure to", "VM", "namespace node", "VM / namespace")
			fmt.Printf("bench-vm: VM on %s %-22s %9.1fs %13s\n", hypervisorName(i), "domain running", vm.Running.Seconds(), "-")
			fmt.Printf("bench-vm: VM on %s %-22s %9.1fs %13s\n", hypervisorName(i), "static IP answering", vm.Pinged.Seconds(), "-")
			fmt.Printf("bench-vm: VM on %s %-22s %9.1fs %12.1fs %s\n", hypervisorName(i), "minion answering", vm.Minion.Seconds(), ns.Floor.Seconds(), ratio(vm.Minion, ns.Floor))
			fmt.Printf("bench-vm: VM on %s %-22s %9.1fs %12.1fs %s\n", hypervisorName(i), "routed on every node", vm.Routed.Seconds(), ns.Took.Seconds(), ratio(vm.Routed, ns.Took))
			fmt.Printf("bench-vm: VM on %s %-22s %9.1fs %13s\n", hypervisorName(i), "pod-to-pod", vm.Pods.Seconds(), "-")
		}
		fmt.Println("bench-vm: the namespace node's times are from its minion's start (a namespace has no boot)")
		b.ReportMetric(vms[0].Routed.Seconds(), "vm-routed-s")
		b.ReportMetric(ns.Took.Seconds(), "ns-routed-s")
		checkDown(b, l)
	}
}

func ratio(vm, ns time.Duration) string {
	if ns <= 0 {
		return ""
	}
	return fmt.Sprintf("%.1fx", vm.Seconds()/ns.Seconds())
}
