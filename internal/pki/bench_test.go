package pki

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// cfsslBinEnv names the directory holding the cfssl and cfssljson CLIs
// for the baseline (`make bench` builds them; they are never committed).
const cfsslBinEnv = "KUBESALT_CFSSL_BIN"

// BenchmarkIssue: the full set for 3 masters + 100 workers, in process,
// with ECDSA and RSA 2048; a no-op second run; and the baseline, the cfssl
// CLI run once per certificate as Kubernetes The Hard Way does, for the
// same set. The baseline sub-benchmarks time kubesalt again in the same
// iterations, interleaved, so the ratio compares runs under the same load
// (the machine is shared); their ns/op is the CLI's alone.
func BenchmarkIssue(b *testing.B) {
	for _, alg := range []string{cluster.AlgorithmECDSAP256, cluster.AlgorithmRSA2048} {
		d := definition(b, 3, 100, "  pki: {algorithm: "+alg+"}\n")
		b.Run("kubesalt/"+alg, func(b *testing.B) {
			var certs int
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				res := issue(b, d, Options{Dir: filepath.Join(b.TempDir(), "pki")})
				certs = len(res.Issued)
			}
			b.ReportMetric(float64(certs), "certs/op")
			// CPU time over wall time: 2 when key generation keeps both
			// cores busy (less when the machine is shared).
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.Elapsed()), "cores-used")
		})
	}

	d := definition(b, 3, 100, "")
	b.Run("kubesalt/noop", func(b *testing.B) {
		dir := b.TempDir()
		issue(b, d, Options{Dir: dir})
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if res := issue(b, d, Options{Dir: dir}); res.Changed() {
				b.Fatalf("second run changed %+v", res)
			}
		}
	})

	bin := os.Getenv(cfsslBinEnv)
	for _, alg := range []string{cluster.AlgorithmECDSAP256, cluster.AlgorithmRSA2048} {
		d := definition(b, 3, 100, "  pki: {algorithm: "+alg+"}\n")
		b.Run("cfssl-cli/"+alg, func(b *testing.B) {
			if bin == "" {
				b.Skipf("%s is not set: build the baseline with `make bench` (go install github.com/cloudflare/cfssl/cmd/{cfssl,cfssljson}@v1.6.5 into a temp GOBIN)", cfsslBinEnv)
			}
			var certs int
			var ks time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				start := time.Now()
				issue(b, d, Options{Dir: filepath.Join(b.TempDir(), "pki")})
				ks += time.Since(start)
				b.StartTimer()
				certs = cfsslCLISet(b, filepath.Join(bin, "cfssl"), filepath.Join(bin, "cfssljson"), d, b.TempDir())
			}
			cli := b.Elapsed()
			b.ReportMetric(float64(certs), "certs/op")
			b.ReportMetric(float64(ks.Milliseconds())/float64(b.N), "kubesalt-ms/op")
			b.ReportMetric(float64(cli.Milliseconds())/float64(b.N), "cfssl-cli-ms/op")
			b.ReportMetric(float64(cli)/float64(ks), "x-faster-than-cfssl-cli")
		})
	}
}

// cfsslCLISet makes the set the way Kubernetes The Hard Way does: a CSR
// JSON per certificate and `cfssl gencert ... | cfssljson -bare NAME` per
// certificate, the CA with `-initca`, the service-account pair as a
// certificate. It returns how many certificates it made.
func cfsslCLISet(b *testing.B, cfssl, cfssljson string, d *cluster.Definition, dir string) int {
	b.Helper()
	specs, err := certificateSet(d)
	if err != nil {
		b.Fatal(err)
	}
	key := map[string]any{"algo": "ecdsa", "size": 256}
	if d.PKI.Algorithm == cluster.AlgorithmRSA2048 {
		key = map[string]any{"algo": "rsa", "size": 2048}
	}
	config := `{"signing": {"default": {"expiry": "8760h"}, "profiles": {"kubernetes": {"usages": ["signing", "key encipherment", "server auth", "client auth"], "expiry": "8760h"}}}}`
	writeJSON := func(name string, v any) string {
		p := filepath.Join(dir, name)
		data, _ := json.Marshal(v)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			b.Fatal(err)
		}
		return p
	}
	// gencert runs `cfssl gencert ARGS | cfssljson -bare NAME`.
	gencert := func(name string, args ...string) {
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		gen := exec.Command(cfssl, append([]string{"gencert"}, args...)...)
		bare := exec.Command(cfssljson, "-bare", name)
		var genErr, bareErr strings.Builder
		gen.Dir, gen.Stdout, gen.Stderr = dir, w, &genErr
		bare.Dir, bare.Stdin, bare.Stderr = dir, r, &bareErr
		if err := bare.Start(); err != nil {
			b.Fatal(err)
		}
		if err := gen.Start(); err != nil {
			b.Fatal(err)
		}
		r.Close()
		w.Close()
		if err := gen.Wait(); err != nil {
			b.Fatalf("cfssl gencert %s: %v\n%s", name, err, genErr.String())
		}
		if err := bare.Wait(); err != nil {
			b.Fatalf("cfssljson -bare %s: %v\n%s", name, err, bareErr.String())
		}
	}
	cfg := filepath.Join(dir, "ca-config.json")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		b.Fatal(err)
	}
	gencert("ca", "-initca", writeJSON("ca-csr.json", map[string]any{"CN": "Kubernetes", "key": key, "names": []map[string]string{{"O": "Kubernetes"}}}))
	ca := []string{"-ca=ca.pem", "-ca-key=ca-key.pem", "-config=" + cfg, "-profile=kubernetes"}
	n := 1
	for _, s := range append(specs, certSpec{name: "service-account", cn: "service-accounts", orgs: []string{"Kubernetes"}}) {
		file := strings.ReplaceAll(s.name, "/", "-")
		var names []map[string]string
		for _, o := range s.orgs {
			names = append(names, map[string]string{"O": o})
		}
		csr := writeJSON(file+"-csr.json", map[string]any{"CN": s.cn, "key": key, "names": names})
		args := append([]string{}, ca...)
		if h := s.hosts(); len(h) > 0 {
			args = append(args, "-hostname="+strings.Join(h, ","))
		}
		gencert(file, append(args, csr)...)
		n++
	}
	if _, err := os.Stat(filepath.Join(dir, "worker-99-kubelet.pem")); err != nil {
		b.Fatalf("the CLI did not write the set: %v", err)
	}
	return n
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
