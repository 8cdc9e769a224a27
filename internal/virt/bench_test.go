package virt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

const benchNodes = 50

func benchDefinition(b *testing.B) *cluster.Definition {
	var sb strings.Builder
	sb.WriteString(`kubernetes:
  cluster_name: ksbench
  network: {node_cidr: 192.168.170.0/24, cluster_cidr: 10.200.0.0/16, service_cidr: 10.32.0.0/24}
  libvirt:
    uri: test:///default
    network: {name: ksbench, bridge: br-ksbench}
    pool: default-pool
    base_image: base.qcow2
    roles: {worker: {vcpu: 1, memory_mib: 512, disk_gib: 1}}
  nodes:
`)
	for i := 0; i < benchNodes; i++ {
		fmt.Fprintf(&sb, "    node-%02d: {role: worker, ip: 192.168.170.%d}\n", i, 100+i)
	}
	d, err := cluster.Load([]byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkDefineStart50 defines and starts 50 domains on test:///default,
// then runs `node ensure` again (a no-op), against the same through virsh
// with one process per domain, as a shell script over an XML template
// does it. The test driver's state lives in one process, so the virsh
// second run asks each domain's state from a test driver file holding that
// domain (a daemon would hold all 50, but answer for one): the per-process
// cost a script pays, without charging it for loading the others.
func BenchmarkDefineStart50(b *testing.B) {
	if _, err := exec.LookPath("virsh"); err != nil {
		b.Skip("virsh not installed (Debian package libvirt-clients); `make bench` installs it")
	}
	d := benchDefinition(b)
	specs, err := Specs(d, nil)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	iso, err := (Seed{MetaData: []byte("instance-id: x\n"), UserData: []byte("#cloud-config\n"), NetworkConfig: []byte("version: 2\n")}).ISO()
	if err != nil {
		b.Fatal(err)
	}
	in := func(s NodeSpec) domainInputs {
		return domainInputs{Type: "test", Network: "ksbench", DiskPath: "/default-pool/" + s.DiskVolume(), SeedPath: "/default-pool/" + s.SeedVolume()}
	}
	// The template-rendered XML files the script would feed virsh, and the
	// state files of its second run.
	for _, s := range specs {
		dom, err := DomainXML(s, in(s))
		if err != nil {
			b.Fatal(err)
		}
		x, err := dom.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.Name+".xml"), []byte(x), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.Name+".state.xml"), []byte("<node>\n"+x+"\n</node>\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}

	var oursFirst, oursNoop, virshFirst, virshNoop time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := openTestDriver(b, 1)
		if _, err := h.EnsureNetwork(d, Options{}); err != nil {
			b.Fatal(err)
		}
		pool, err := h.lookupPool("default-pool")
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range specs {
			if _, err := createDisk(pool, s, baseImage{Path: "/default-pool/base.qcow2", Format: "qcow2"}); err != nil {
				b.Fatal(err)
			}
			if _, _, err := h.createSeed(pool, s, iso); err != nil {
				b.Fatal(err)
			}
		}
		pool.Free()
		b.StartTimer()

		t0 := time.Now()
		for _, s := range specs {
			want, err := DomainXML(s, in(s))
			if err != nil {
				b.Fatal(err)
			}
			dom, err := h.defineDomain(want)
			if err != nil {
				b.Fatal(err)
			}
			if err := dom.Create(); err != nil {
				b.Fatal(err)
			}
			dom.Free()
		}
		oursFirst += time.Since(t0)

		t0 = time.Now()
		rep, err := h.EnsureNodes(d, nil, "", Options{})
		if err != nil || rep.Failure != nil || len(rep.Changes) != 0 || len(rep.Nodes) != benchNodes {
			b.Fatalf("second run is not a no-op: %v %v %+v", err, rep.Failure, rep.Changes)
		}
		oursNoop += time.Since(t0)
		h.Close()

		t0 = time.Now()
		for _, s := range specs {
			cmd := fmt.Sprintf("define %s; autostart %s; start %s", filepath.Join(dir, s.Name+".xml"), s.Name, s.Name)
			if out, err := exec.Command("virsh", "-q", "-c", "test:///default", cmd).CombinedOutput(); err != nil {
				b.Fatalf("virsh %s: %v %s", cmd, err, out)
			}
		}
		virshFirst += time.Since(t0)

		t0 = time.Now()
		for _, s := range specs {
			out, err := exec.Command("virsh", "-q", "-c", "test://"+filepath.Join(dir, s.Name+".state.xml"), "domstate", s.Name).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "running") {
				b.Fatalf("virsh domstate %s: %v %s", s.Name, err, out)
			}
		}
		virshNoop += time.Since(t0)
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(oursFirst), "kubesalt-first-ms")
	b.ReportMetric(ms(virshFirst), "virsh-first-ms")
	b.ReportMetric(ms(oursNoop), "kubesalt-noop-ms")
	b.ReportMetric(ms(virshNoop), "virsh-noop-ms")
	b.ReportMetric(float64(virshFirst)/float64(oursFirst), "x-faster-than-virsh-first-run")
	b.ReportMetric(float64(virshNoop)/float64(oursNoop), "x-faster-than-virsh-noop-run")
}
