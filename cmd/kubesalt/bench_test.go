package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/nstest"
)

// benchLab is a namespace whose eth0 (a veth with its peer in a second
// namespace, so it has carrier) holds 172.16.0.1/12: every other node's
// next hop, 172.17.0.0 + i, is on-link.
func benchLab(b *testing.B) (*nstest.Lab, string) {
	l := nstest.New(b)
	ns := l.ID + "-bench"
	peer := l.ID + "-peer"
	l.IP("netns", "add", ns)
	l.IP("netns", "add", peer)
	l.IP("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "eth0", "netns", peer)
	l.In(ns, "ip", "addr", "add", "172.16.0.1/12", "dev", "eth0")
	l.In(ns, "ip", "link", "set", "eth0", "up")
	l.In(peer, "ip", "link", "set", "eth0", "up")
	return l, ns
}

func benchNodes(n int) ([]cluster.Member, []string) {
	nodes := []cluster.Member{{Name: "self", IPs: []netip.Addr{netip.MustParseAddr("172.16.0.1")}, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.255.255.0/24")}}}
	var batch []string
	for i := 0; i < n; i++ {
		via := netip.AddrFrom4([4]byte{172, 17, byte(i >> 8), byte(i)})
		dst := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		nodes = append(nodes, cluster.Member{Name: fmt.Sprintf("node-%05d", i), IPs: []netip.Addr{via}, PodCIDRs: []netip.Prefix{dst}})
		batch = append(batch, fmt.Sprintf("route add %s via %s proto static", dst, via))
	}
	return nodes, batch
}

func timed(b *testing.B, cmd *exec.Cmd) (time.Duration, *syscall.Rusage) {
	b.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s: %v\n%.2000s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return time.Since(start), cmd.ProcessState.SysUsage().(*syscall.Rusage)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkRoutesSync prints, per N other nodes: the sync from an empty
// table, a no-op sync, `ip -batch` adding the same routes, one `ip route
// add` process per route (sampled, then scaled to N), the ratios, and the
// sync's peak memory.
func BenchmarkRoutesSync(b *testing.B) {
	nstest.RequireRoot(b)
	bin := filepath.Join(b.TempDir(), "kubesalt")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	for _, n := range []int{1000, 5000, 20000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			l, ns := benchLab(b)
			nodes, batch := benchNodes(n)
			dir := b.TempDir()
			list, _ := json.Marshal(map[string]any{"nodes": nodes})
			listFile := filepath.Join(dir, "nodes.json")
			batchFile := filepath.Join(dir, "batch")
			os.WriteFile(listFile, list, 0o600)
			os.WriteFile(batchFile, []byte(strings.Join(batch, "\n")+"\n"), 0o600)
			sync := func() (time.Duration, *syscall.Rusage) {
				return timed(b, exec.Command(bin, "routes", "sync", "--netns", ns, "--self", "self", "--nodes", listFile, "--rt-protos-dir", ""))
			}
			flush := func(proto string) { l.In(ns, "ip", "route", "flush", "proto", proto) }

			var empty, noop, ipBatch, perRoute time.Duration
			var peakKiB int64
			sample := min(n, 200)
			for i := 0; i < b.N; i++ {
				d, ru := sync()
				empty += d
				peakKiB = max(peakKiB, ru.Maxrss)
				d, ru = sync()
				noop += d
				peakKiB = max(peakKiB, ru.Maxrss)
				if got := strings.Count(l.In(ns, "ip", "route", "show", "proto", "201"), "\n"); got != n {
					b.Fatalf("sync left %d routes, want %d", got, n)
				}
				// Removing the nexthop objects removes the routes via them
				// (`ip route flush` cannot flush routes via nexthop ids).
				l.In(ns, "ip", "nexthop", "flush", "proto", "201")
				if got := l.In(ns, "ip", "route", "show", "proto", "201"); got != "" {
					b.Fatalf("routes left after the flush: %.200s", got)
				}

				d, _ = timed(b, exec.Command("ip", "-n", ns, "-batch", batchFile))
				ipBatch += d
				flush("static")

				start := time.Now()
				for _, line := range batch[:sample] {
					if out, err := exec.Command("ip", append([]string{"-n", ns}, strings.Fields(line)...)...).CombinedOutput(); err != nil {
						b.Fatalf("%s: %v %s", line, err, out)
					}
				}
				perRoute += time.Since(start) * time.Duration(n) / time.Duration(sample)
				flush("static")
			}
			k := time.Duration(b.N)
			empty, noop, ipBatch, perRoute = empty/k, noop/k, ipBatch/k, perRoute/k
			b.ReportMetric(ms(empty), "sync-empty-ms")
			b.ReportMetric(ms(noop), "sync-noop-ms")
			b.ReportMetric(ms(ipBatch), "ip-batch-ms")
			b.ReportMetric(ms(perRoute), "ip-route-add-each-ms")
			b.ReportMetric(float64(empty)/float64(ipBatch), "sync/ip-batch")
			b.ReportMetric(float64(perRoute)/float64(empty), "x-faster-than-ip-route-add-each")
			b.ReportMetric(float64(peakKiB)/1024, "peak-MiB")
		})
	}
}
