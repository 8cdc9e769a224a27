package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"gopkg.in/yaml.v3"
)

const apiVIP = "  api: {vip: 192.168.170.5, name: k8s-api.example.org, port: 8443}\n"

// want is what one certificate must hold.
type want struct {
	cn    string
	orgs  []string
	dns   []string
	ips   []string
	usage []x509.ExtKeyUsage
}

var (
	client = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	server = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	both   = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

func expectedSet() map[string]want {
	w := map[string]want{
		"admin":                         {cn: "admin", orgs: []string{"system:masters"}, usage: client},
		"kube-controller-manager":       {cn: "system:kube-controller-manager", orgs: []string{"system:kube-controller-manager"}, usage: client},
		"kube-scheduler":                {cn: "system:kube-scheduler", orgs: []string{"system:kube-scheduler"}, usage: client},
		"kube-proxy":                    {cn: "system:kube-proxy", orgs: []string{"system:node-proxier"}, usage: client},
		"kube-apiserver-kubelet-client": {cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, usage: client},
		"kube-apiserver-etcd-client":    {cn: "kube-apiserver-etcd-client", orgs: []string{"system:masters"}, usage: client},
		"front-proxy-client":            {cn: "front-proxy-client", usage: client},
		"kube-apiserver": {cn: "kubernetes", orgs: []string{"kubernetes"}, usage: server,
			dns: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "k8s-api.example.org"},
			ips: []string{"10.32.0.1", "127.0.0.1", "192.168.170.10", "192.168.170.11", "192.168.170.12", "192.168.170.5"}},
	}
	for i, ip := range []string{"192.168.170.10", "192.168.170.11", "192.168.170.12"} {
		m := "master-" + string(rune('0'+i))
		w[m+"/kubelet"] = want{cn: "system:node:" + m, orgs: []string{"system:nodes"}, dns: []string{m}, ips: []string{ip}, usage: both}
		w[m+"/etcd-server"] = want{cn: m, orgs: []string{"etcd"}, dns: []string{m, "localhost"}, ips: []string{ip, "::1", "127.0.0.1"}, usage: both}
		w[m+"/etcd-peer"] = want{cn: m, orgs: []string{"etcd"}, dns: []string{m}, ips: []string{ip}, usage: both}
	}
	for i, ip := range []string{"192.168.171.1", "192.168.171.2"} {
		n := "worker-" + string(rune('0'+i))
		w[n+"/kubelet"] = want{cn: "system:node:" + n, orgs: []string{"system:nodes"}, dns: []string{n}, ips: []string{ip}, usage: both}
	}
	return w
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

// TestIssueFullSet issues the whole set and checks every certificate
// against the CA (Go and openssl), with its subject, SANs, key usages,
// validity, file modes, and the kubeconfigs, encryption config and
// service-account pair; a second run changes nothing.
func TestIssueFullSet(t *testing.T) {
	d := definition(t, 3, 2, apiVIP)
	dir := filepath.Join(t.TempDir(), "pki")
	start := time.Now()
	res := issue(t, d, Options{Dir: dir})

	exp := expectedSet()
	if len(res.Issued) != len(exp)+3 { // + ca, service-account, encryption-config
		t.Errorf("issued %d, want %d: %v", len(res.Issued), len(exp)+3, res.Issued)
	}
	for name, reason := range res.Issued {
		if reason != "new" {
			t.Errorf("issued[%s] = %q, want new", name, reason)
		}
	}

	ca := readCert(t, dir, "ca")
	if !ca.IsCA || ca.Subject.CommonName != "testcluster-ca" || !ca.MaxPathLenZero {
		t.Errorf("CA: IsCA=%v subject=%v pathlenzero=%v", ca.IsCA, ca.Subject, ca.MaxPathLenZero)
	}
	if got := ca.NotAfter.Sub(start); got < cluster.DefaultCAValidity-10*time.Minute || got > cluster.DefaultCAValidity+time.Minute {
		t.Errorf("CA valid for %v, want %v", got, cluster.DefaultCAValidity)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	for name, w := range exp {
		c := readCert(t, dir, name)
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: w.usage}); err != nil {
			t.Errorf("%s does not verify against the CA for %v: %v", name, w.usage, err)
		}
		if c.Subject.CommonName != w.cn || !slices.Equal(c.Subject.Organization, w.orgs) {
			t.Errorf("%s subject = %v, want CN=%s O=%v", name, c.Subject, w.cn, w.orgs)
		}
		if !slices.Equal(sorted(c.DNSNames), sorted(w.dns)) || !slices.Equal(sorted(ipStrings(c.IPAddresses)), sorted(w.ips)) {
			t.Errorf("%s SANs = %v %v, want %v %v", name, c.DNSNames, c.IPAddresses, w.dns, w.ips)
		}
		if !slices.Equal(c.ExtKeyUsage, w.usage) || c.KeyUsage != x509.KeyUsageDigitalSignature || c.IsCA {
			t.Errorf("%s usages = %v / %v / CA %v, want %v / digital signature", name, c.ExtKeyUsage, c.KeyUsage, c.IsCA, w.usage)
		}
		if got := c.NotAfter.Sub(start); got < cluster.DefaultValidity-time.Minute || got > cluster.DefaultValidity+time.Minute {
			t.Errorf("%s valid for %v, want %v", name, got, cluster.DefaultValidity)
		}
		if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok {
			t.Errorf("%s key is %T, want ECDSA", name, c.PublicKey)
		}
		wantMode(t, dir, certPath(name), 0o644)
		wantMode(t, dir, keyPath(name), 0o600)
		if err := matchingPair(readFileT(t, dir, certPath(name)), readFileT(t, dir, keyPath(name))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	wantMode(t, dir, caKeyFile, 0o600)
	wantMode(t, dir, ".", 0o700)
	wantMode(t, dir, "nodes", 0o700)
	wantMode(t, dir, "nodes/worker-1", 0o700)

	checkKubeconfigs(t, dir, exp)
	checkSecrets(t, dir)

	before := snapshot(t, dir)
	res = issue(t, d, Options{Dir: dir})
	if res.Changed() {
		t.Errorf("second run changed %+v", res)
	}
	if ch := changedFiles(before, snapshot(t, dir)); len(ch) > 0 {
		t.Errorf("second run touched %v", ch)
	}
}

func readFileT(t testing.TB, dir, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantMode(t testing.TB, dir, rel string, mode os.FileMode) {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, rel))
	if err != nil {
		t.Error(err)
		return
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s mode %04o, want %04o", rel, st.Mode().Perm(), mode)
	}
}

// TestOpenSSLVerifiesEveryCertificate: `openssl verify` accepts every
// certificate for the purpose its usage allows, and refuses the others.
func TestOpenSSLVerifiesEveryCertificate(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed (apt-get install openssl)")
	}
	dir := t.TempDir()
	issue(t, definition(t, 3, 2, apiVIP), Options{Dir: dir})
	exp := expectedSet()
	for name, w := range exp {
		purposes := map[x509.ExtKeyUsage]string{x509.ExtKeyUsageClientAuth: "sslclient", x509.ExtKeyUsageServerAuth: "sslserver"}
		for _, u := range w.usage {
			out, err := exec.Command(openssl, "verify", "-x509_strict", "-purpose", purposes[u], "-CAfile", filepath.Join(dir, caCertFile), filepath.Join(dir, certPath(name))).CombinedOutput()
			if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), ": OK") {
				t.Errorf("openssl verify -purpose %s %s: %v\n%s", purposes[u], name, err, out)
			}
		}
	}
	// And openssl refuses a purpose the certificate does not have.
	out, err := exec.Command(openssl, "verify", "-purpose", "sslserver", "-CAfile", filepath.Join(dir, caCertFile), filepath.Join(dir, certPath("admin"))).CombinedOutput()
	if err == nil && strings.Contains(string(out), ": OK") {
		t.Errorf("openssl accepted the admin client certificate as a server certificate:\n%s", out)
	}
}

func checkKubeconfigs(t *testing.T, dir string, exp map[string]want) {
	servers := map[string]string{
		// The admin through the VIP; the controller manager and the
		// scheduler to the API server beside them; the kubelet and
		// kube-proxy to the node's own load balancer (api:local_port).
		"admin":                   "https://192.168.170.5:8443",
		"kube-proxy":              "https://127.0.0.1:6444",
		"kube-controller-manager": "https://127.0.0.1:8443",
		"kube-scheduler":          "https://127.0.0.1:8443",
		"worker-1/kubelet":        "https://127.0.0.1:6444",
		"master-2/kubelet":        "https://127.0.0.1:6444",
	}
	caPEM := readFileT(t, dir, caCertFile)
	for name, server := range servers {
		data := readFileT(t, dir, kubeconfigPath(name))
		wantMode(t, dir, kubeconfigPath(name), 0o600)
		// Decode as plain YAML, the way kubectl sees it: base64 strings.
		var kc struct {
			Clusters []struct {
				Name    string
				Cluster map[string]string
			}
			Users []struct {
				Name string
				User map[string]string
			}
			Contexts []struct {
				Name    string
				Context map[string]string
			}
			Current string `yaml:"current-context"`
		}
		if err := yaml.Unmarshal(data, &kc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dec := func(s string) []byte { b, _ := base64.StdEncoding.DecodeString(s); return b }
		cl, u := kc.Clusters[0].Cluster, kc.Users[0].User
		if cl["server"] != server || !bytes.Equal(dec(cl["certificate-authority-data"]), caPEM) {
			t.Errorf("%s: server %q (want %q) or CA data wrong", name, cl["server"], server)
		}
		if !bytes.Equal(dec(u["client-certificate-data"]), readFileT(t, dir, certPath(name))) ||
			!bytes.Equal(dec(u["client-key-data"]), readFileT(t, dir, keyPath(name))) {
			t.Errorf("%s: embedded certificate or key is not the issued one", name)
		}
		if kc.Users[0].Name != exp[name].cn || kc.Current != "default" || kc.Contexts[0].Context["user"] != exp[name].cn {
			t.Errorf("%s: user %q context %v current %q", name, kc.Users[0].Name, kc.Contexts[0], kc.Current)
		}
	}
}

func checkSecrets(t *testing.T, dir string) {
	keys, err := parseEncryptionConfig(readFileT(t, dir, encryptionFile))
	if err != nil || len(keys) != 1 {
		t.Fatalf("encryption config: %v %v", keys, err)
	}
	wantMode(t, dir, encryptionFile, 0o600)
	var c encryptionConfig
	_ = yaml.Unmarshal(readFileT(t, dir, encryptionFile), &c)
	p := c.Resources[0].Providers
	if c.APIVersion != "apiserver.config.k8s.io/v1" || c.Resources[0].Resources[0] != "secrets" || len(p) != 2 || p[0].AESCBC == nil || p[1].Identity == nil {
		t.Errorf("encryption config: %+v", c)
	}
	key, err := parseKeyPEM(readFileT(t, dir, saKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := parsePublicKeyPEM(readFileT(t, dir, saPubFile))
	if err != nil || !publicKeysEqual(pub, key.Public()) {
		t.Errorf("service-account pair does not match: %v", err)
	}
	wantMode(t, dir, saKeyFile, 0o600)
	wantMode(t, dir, saPubFile, 0o644)
}

// TestReissueOnlyWhatChanged: a node's new IP reissues that node's
// certificates (for a master also the API server's and its etcd ones),
// nothing else; an unchanged definition issues nothing.
func TestReissueOnlyWhatChanged(t *testing.T) {
	dir := t.TempDir()
	src := definitionYAML(3, 2, "")
	issue(t, load(t, src), Options{Dir: dir})
	before := snapshot(t, dir)

	res := issue(t, load(t, src), Options{Dir: dir})
	if res.Changed() {
		t.Fatalf("unchanged definition changed %+v", res)
	}

	// A worker's IP changes.
	src = strings.Replace(src, "192.168.171.2}", "192.168.171.99}", 1)
	res = issue(t, load(t, src), Options{Dir: dir})
	wantMap(t, "issued", res.Issued, map[string]string{"worker-1/kubelet": "sans changed"})
	wantMap(t, "kubeconfigs", res.Kubeconfigs, map[string]string{"worker-1/kubelet": "certificate reissued"})
	if c := readCert(t, dir, "worker-1/kubelet"); ipStrings(c.IPAddresses)[0] != "192.168.171.99" {
		t.Errorf("worker-1 kubelet IPs %v", c.IPAddresses)
	}
	ch := changedFiles(before, snapshot(t, dir))
	sort.Strings(ch)
	if want := []string{"nodes/worker-1/kubelet-key.pem", "nodes/worker-1/kubelet.kubeconfig", "nodes/worker-1/kubelet.pem"}; !slices.Equal(ch, want) {
		t.Errorf("files changed %v, want %v", ch, want)
	}

	// A master's IP changes.
	src = strings.Replace(src, "192.168.170.11}", "192.168.170.21}", 1)
	res = issue(t, load(t, src), Options{Dir: dir})
	wantMap(t, "issued", res.Issued, map[string]string{
		"master-1/kubelet": "sans changed", "master-1/etcd-server": "sans changed",
		"master-1/etcd-peer": "sans changed", "kube-apiserver": "sans changed"})
	wantMap(t, "kubeconfigs", res.Kubeconfigs, map[string]string{"master-1/kubelet": "certificate reissued"})

	// A master joins: its certificates are new, the API server's SANs grow.
	src = strings.Replace(src, "  nodes:\n", "  nodes:\n    master-3: {role: master, ip: 192.168.170.13}\n", 1)
	res = issue(t, load(t, src), Options{Dir: dir})
	wantMap(t, "issued", res.Issued, map[string]string{
		"master-3/kubelet": "new", "master-3/etcd-server": "new", "master-3/etcd-peer": "new", "kube-apiserver": "sans changed"})

	// The API gets a VIP: the API server certificate, and the admin's
	// kubeconfig (the kubelets and kube-proxy use their node's load
	// balancer, the controller manager and the scheduler the API server
	// beside them).
	src = strings.Replace(src, "  nodes:\n", "  api: {vip: 192.168.170.5}\n  nodes:\n", 1)
	res = issue(t, load(t, src), Options{Dir: dir})
	wantMap(t, "issued", res.Issued, map[string]string{"kube-apiserver": "sans changed"})
	wantMap(t, "kubeconfigs", res.Kubeconfigs, map[string]string{"admin": "server changed"})

	// The node-local load balancer's port changes: the kubelets' and
	// kube-proxy's kubeconfigs follow, no certificate is issued.
	src = strings.Replace(src, "  api: {vip: 192.168.170.5}\n", "  api: {vip: 192.168.170.5, local_port: 7444}\n", 1)
	res = issue(t, load(t, src), Options{Dir: dir})
	if len(res.Issued) != 0 {
		t.Errorf("local_port changed: issued %v, want nothing", res.Issued)
	}
	wantKC := map[string]string{"kube-proxy": "server changed"}
	for _, n := range []string{"master-0", "master-1", "master-2", "master-3", "worker-0", "worker-1"} {
		wantKC[n+"/kubelet"] = "server changed"
	}
	wantMap(t, "kubeconfigs", res.Kubeconfigs, wantKC)

	// A worker leaves: its files go, nothing is issued.
	src = strings.Replace(src, "    worker-1: {role: worker, ip: 192.168.171.99}\n", "", 1)
	res = issue(t, load(t, src), Options{Dir: dir})
	wantMap(t, "removed", res.Removed, map[string]string{"worker-1/kubelet": "node no longer in the definition"})
	if len(res.Issued) != 0 {
		t.Errorf("issued %v", res.Issued)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes/worker-1")); !os.IsNotExist(err) {
		t.Errorf("nodes/worker-1 still there: %v", err)
	}
	if res := issue(t, load(t, src), Options{Dir: dir}); res.Changed() {
		t.Errorf("not idempotent after the changes: %+v", res)
	}
}

// resign replaces name's certificate with one the CA signs that expires
// at notAfter, as an old certificate would.
func resign(t *testing.T, dir, name string, notAfter time.Time) {
	t.Helper()
	caCert := readCert(t, dir, "ca")
	caKey, err := parseKeyPEM(readFileT(t, dir, caKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	old := readCert(t, dir, name)
	old.NotBefore, old.NotAfter = notAfter.Add(-365*24*time.Hour), notAfter
	der, err := x509.CreateCertificate(nil, old, caCert, old.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, certPath(name)), pemCert(der), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRenewNearExpiry(t *testing.T) {
	dir := t.TempDir()
	d := definition(t, 1, 2, "")
	issue(t, d, Options{Dir: dir})
	resign(t, dir, "worker-0/kubelet", time.Now().Add(10*24*time.Hour+time.Hour))

	res := issue(t, d, Options{Dir: dir, Test: true})
	wantMap(t, "test issued", res.Issued, map[string]string{"worker-0/kubelet": "expires in 10 days"})
	// Outside a 1-day window it is kept; its kubeconfig, which still
	// embeds the replaced certificate, is brought in line.
	res = issue(t, d, Options{Dir: dir, RenewBefore: 24 * time.Hour})
	wantMap(t, "issued", res.Issued, nil)
	wantMap(t, "kubeconfigs", res.Kubeconfigs, map[string]string{"worker-0/kubelet": "certificate changed"})
	before := snapshot(t, dir)
	res = issue(t, d, Options{Dir: dir})
	wantMap(t, "issued", res.Issued, map[string]string{"worker-0/kubelet": "expires in 10 days"})
	wantMap(t, "kubeconfigs", res.Kubeconfigs, map[string]string{"worker-0/kubelet": "certificate reissued"})
	if c := readCert(t, dir, "worker-0/kubelet"); time.Until(c.NotAfter) < 364*24*time.Hour {
		t.Errorf("renewed certificate expires %v", c.NotAfter)
	}
	if ch := changedFiles(before, snapshot(t, dir)); len(ch) != 3 {
		t.Errorf("changed %v, want the kubelet's certificate, key and kubeconfig", ch)
	}

	// Later the whole set is due: Now moves the clock.
	res = issue(t, d, Options{Dir: dir, Now: time.Now().Add(350 * 24 * time.Hour)})
	if len(res.Issued) != 8+3+2 || res.Issued["admin"] != "expires in 14 days" {
		t.Errorf("after 350 days issued %v", res.Issued)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings %v", res.Warnings)
	}
	// The CA close to its end is a warning, never a silent replacement.
	res = issue(t, d, Options{Dir: dir, Now: time.Now().Add(3640 * 24 * time.Hour)})
	if _, ok := res.Issued["ca"]; ok || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "--reissue ca") {
		t.Errorf("CA near expiry: issued %v warnings %v", res.Issued, res.Warnings)
	}
}

func TestRequestedReissue(t *testing.T) {
	dir := t.TempDir()
	d := definition(t, 1, 1, "")
	issue(t, d, Options{Dir: dir})
	res := issue(t, d, Options{Dir: dir, Reissue: []string{"admin", "worker-0/kubelet"}})
	wantMap(t, "issued", res.Issued, map[string]string{"admin": "requested", "worker-0/kubelet": "requested"})

	oldKeys, _ := parseEncryptionConfig(readFileT(t, dir, encryptionFile))
	res = issue(t, d, Options{Dir: dir, Reissue: []string{"encryption-config"}})
	keys, _ := parseEncryptionConfig(readFileT(t, dir, encryptionFile))
	if len(keys) != 2 || keys[1] != oldKeys[0] || keys[0].Name != "key2" {
		t.Errorf("rotated keys %v (old %v), result %v", keys, oldKeys, res.Issued)
	}

	// A new CA reissues everything it signed.
	oldCA := readFileT(t, dir, caCertFile)
	res = issue(t, d, Options{Dir: dir, Reissue: []string{"ca"}})
	if res.Issued["ca"] != "requested" || res.Issued["admin"] != "ca replaced" || len(res.Issued) != 1+8+3+1 {
		t.Errorf("ca reissue: %v", res.Issued)
	}
	if bytes.Equal(oldCA, readFileT(t, dir, caCertFile)) {
		t.Error("CA not replaced")
	}
	if len(res.Kubeconfigs) != 6 {
		t.Errorf("kubeconfigs %v", res.Kubeconfigs)
	}
	res = issue(t, d, Options{Dir: dir, Reissue: []string{ReissueAll}})
	if len(res.Issued) != 8+3+1 {
		t.Errorf("all: %v", res.Issued)
	}

	_, err := Issue(d, Options{Dir: dir, Reissue: []string{"worker-7/kubelet"}})
	if err == nil || !strings.Contains(err.Error(), `--reissue "worker-7/kubelet": no such certificate`) {
		t.Errorf("unknown name: %v", err)
	}
}

func TestTestModeWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	d := definition(t, 1, 1, "")
	res := issue(t, d, Options{Dir: dir, Test: true})
	if len(res.Issued) != 1+8+3+1+2 || res.Issued["ca"] != "new" || len(res.Kubeconfigs) != 6 {
		t.Errorf("test mode on nothing: %+v", res)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("test mode created the directory: %v", err)
	}
	issue(t, d, Options{Dir: dir})
	before := snapshot(t, dir)
	d2 := definition(t, 1, 2, "")
	res = issue(t, d2, Options{Dir: dir, Test: true, Reissue: []string{"ca"}})
	if res.Issued["worker-1/kubelet"] != "new" || res.Issued["ca"] != "requested" || res.Issued["admin"] != "ca replaced" {
		t.Errorf("test mode: %v", res.Issued)
	}
	if ch := changedFiles(before, snapshot(t, dir)); len(ch) > 0 {
		t.Errorf("test mode wrote %v", ch)
	}
}

// TestCorruptOrForeignFilesStop: nothing is overwritten silently, and a
// run that finds a problem writes nothing at all.
func TestCorruptOrForeignFilesStop(t *testing.T) {
	dir := t.TempDir()
	d := definition(t, 1, 1, "")
	issue(t, d, Options{Dir: dir})

	other := t.TempDir()
	issue(t, d, Options{Dir: other})

	grow := definition(t, 1, 2, "") // a change that would be applied
	cases := []struct {
		name, rel, fix string
		data           []byte
		want           string
	}{
		{"garbage certificate", "admin.pem", "admin", []byte("hello\n"), "admin.pem: not a PEM certificate; remove it or run with --reissue admin"},
		{"garbage key", "nodes/worker-0/kubelet-key.pem", "worker-0/kubelet", []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), "kubelet-key.pem: corrupt private key"},
		{"foreign certificate", "nodes/worker-0/kubelet.pem", "worker-0/kubelet", readFileT(t, other, "nodes/worker-0/kubelet.pem"), "was not issued by this directory's CA"},
		{"foreign kubeconfig", "kube-proxy.kubeconfig", "kube-proxy", []byte("kind: Pod\n"), "kube-proxy.kubeconfig: not a kubeconfig kubesalt wrote"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.rel)
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			_, err := Issue(grow, Options{Dir: dir})
			var se *StateError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want a StateError with %q", err, c.want)
			}
			if ch := changedFiles(before, snapshot(t, dir)); len(ch) > 0 {
				t.Errorf("a failed run wrote %v", ch)
			}
			// The named fix works.
			res := issue(t, d, Options{Dir: dir, Reissue: []string{c.fix}})
			if res.Issued[c.fix] != "requested" && res.Kubeconfigs[c.fix] == "" {
				t.Errorf("--reissue %s: %+v", c.fix, res)
			}
		})
	}

	// A CA without its key is never replaced on its own.
	if err := os.Remove(filepath.Join(dir, caKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err := Issue(d, Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "ca-key.pem is missing; restore the key from a backup, or run with --reissue ca") {
		t.Errorf("missing CA key: %v", err)
	}
}

func TestModesRepaired(t *testing.T) {
	dir := t.TempDir()
	d := definition(t, 1, 0, "")
	issue(t, d, Options{Dir: dir})
	for rel, mode := range map[string]os.FileMode{"admin-key.pem": 0o644, "nodes/master-0": 0o755, "ca.pem": 0o600, ".": 0o755} {
		if err := os.Chmod(filepath.Join(dir, rel), mode); err != nil {
			t.Fatal(err)
		}
	}
	res := issue(t, d, Options{Dir: dir})
	wantMap(t, "modes", res.Modes, map[string]string{"admin-key.pem": "0644 -> 0600", "nodes/master-0/": "0755 -> 0700", "ca.pem": "0600 -> 0644",
		"./ (the PKI directory)": "0755 -> 0700"})
	wantMode(t, dir, "admin-key.pem", 0o600)
	wantMode(t, dir, "nodes/master-0", 0o700)
	wantMode(t, dir, ".", 0o700)
	if res := issue(t, d, Options{Dir: dir}); res.Changed() {
		t.Errorf("second run %+v", res)
	}
}

// TestAlgorithmChange: RSA on request, with key encipherment; switching
// algorithm reissues every leaf and keeps the CA.
func TestAlgorithmChange(t *testing.T) {
	dir := t.TempDir()
	issue(t, definition(t, 1, 0, ""), Options{Dir: dir})
	caBefore := readFileT(t, dir, caCertFile)
	rsaDef := definition(t, 1, 0, "  pki: {algorithm: rsa-2048, validity: 2160h}\n")
	res := issue(t, rsaDef, Options{Dir: dir})
	if len(res.Issued) != 8+3 || res.Issued["admin"] != "key algorithm changed (ecdsa-p256 -> rsa-2048), usages changed" {
		t.Errorf("issued %v", res.Issued)
	}
	if !bytes.Equal(caBefore, readFileT(t, dir, caCertFile)) {
		t.Error("the CA was replaced")
	}
	c := readCert(t, dir, "kube-apiserver")
	if k, ok := c.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
		t.Errorf("key %T", c.PublicKey)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("key usage %v", c.KeyUsage)
	}
	if got := time.Until(c.NotAfter); got < 2159*time.Hour || got > 2161*time.Hour {
		t.Errorf("validity %v, want 2160h", got)
	}
	if res := issue(t, rsaDef, Options{Dir: dir}); res.Changed() {
		t.Errorf("second RSA run %+v", res)
	}
}

// TestConcurrentRunsAreSerialised: the directory lock makes two runs at
// once behave like one after the other: one CA, one issuance.
func TestConcurrentRunsAreSerialised(t *testing.T) {
	dir := t.TempDir()
	d := definition(t, 1, 3, "")
	var wg sync.WaitGroup
	results := make([]*Result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if results[i], err = Issue(d, Options{Dir: dir}); err != nil {
				t.Error(err)
				results[i] = &Result{}
			}
		}()
	}
	wg.Wait()
	cas := 0
	for _, r := range results {
		if r.Issued["ca"] == "new" {
			cas++
			continue
		}
		if r.Changed() {
			t.Errorf("a later run changed %+v", r)
		}
	}
	if cas != 1 {
		t.Errorf("%d runs created a CA, want 1", cas)
	}
}

// TestDualStackAndIPv6Endpoint: the API server certificate has the first
// service address of each family, and an IPv6 endpoint is bracketed.
func TestDualStackAndIPv6Endpoint(t *testing.T) {
	d := load(t, `kubernetes:
  network:
    node_cidr: [fd00:170::/64, 192.168.170.0/24]
    cluster_cidr: [10.200.0.0/16, fd00:10:200::/56]
    service_cidr: [10.32.0.0/24, fd00:32::/112]
  nodes:
    master-0: {role: master, ip: [fd00:170::10, 192.168.170.10]}
`)
	s := apiServerSpec(d)
	var ips []string
	for _, ip := range s.ips {
		ips = append(ips, ip.String())
	}
	if want := []string{"10.32.0.1", "fd00:32::1", "127.0.0.1", "192.168.170.10", "fd00:170::10"}; !slices.Equal(ips, want) {
		t.Errorf("SANs %v, want %v", ips, want)
	}
	d.API.VIP = netip.MustParseAddr("fd00:170::5")
	if u, _ := APIServer(d); u != "https://[fd00:170::5]:6443" {
		t.Errorf("endpoint %s", u)
	}
	d.Nodes = nil
	d.API.VIP = netip.Addr{}
	if _, err := APIServer(d); err == nil || !strings.Contains(err.Error(), "no node has role master") {
		t.Errorf("no master: %v", err)
	}
}
