package nodes

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPEMs are a CA and a client certificate and key it signed.
type testPEMs struct{ ca, cert, key []byte }

func makePEMs(t *testing.T) testPEMs {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return testPEMs{
		ca:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// kubeconfigYAML is a kubeconfig as kubectl and kubesalt write them;
// cluster and user are the inner fields, indented by the caller.
func kubeconfigYAML(server, cluster, user string) string {
	return `apiVersion: v1
kind: Config
clusters:
- name: other
  cluster: {server: "https://wrong:1"}
- name: kubesalt
  cluster:
    server: ` + server + `
` + cluster + `
users:
- name: admin
  user:
` + user + `
contexts:
- name: default
  context: {cluster: kubesalt, user: admin}
current-context: default
`
}

func TestParseKubeconfigEmbeddedAndFiles(t *testing.T) {
	p := makePEMs(t)
	embedded := kubeconfigYAML("https://127.0.0.1:6443/",
		"    certificate-authority-data: "+b64(p.ca),
		"    client-certificate-data: "+b64(p.cert)+"\n    client-key-data: "+b64(p.key))
	c, err := ParseKubeconfig([]byte(embedded), "/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != "https://127.0.0.1:6443" || len(c.TLS.Certificates) != 1 || c.TLS.RootCAs == nil || c.Token != "" {
		t.Errorf("embedded: %+v", c)
	}

	// Files: relative names are relative to the kubeconfig's directory.
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "pki"), 0o700)
	for name, b := range map[string][]byte{"pki/ca.pem": p.ca, "pki/admin.pem": p.cert, "pki/admin-key.pem": p.key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files := kubeconfigYAML("https://[fd00::1]:6443",
		"    certificate-authority: pki/ca.pem\n    tls-server-name: kubernetes",
		"    client-certificate: "+filepath.Join(dir, "pki/admin.pem")+"\n    client-key: pki/admin-key.pem")
	kc := filepath.Join(dir, "admin.kubeconfig")
	os.WriteFile(kc, []byte(files), 0o600)
	c, err = LoadKubeconfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != "https://[fd00::1]:6443" || len(c.TLS.Certificates) != 1 || c.TLS.ServerName != "kubernetes" {
		t.Errorf("files: %+v", c)
	}

	// A token instead of a certificate.
	c, err = ParseKubeconfig([]byte(kubeconfigYAML("https://h:6443", "    certificate-authority-data: "+b64(p.ca), "    token: abc")), dir)
	if err != nil || c.Token != "abc" || len(c.TLS.Certificates) != 0 {
		t.Errorf("token: %+v %v", c, err)
	}
}

// An unusable kubeconfig is refused with the field to fix named.
func TestParseKubeconfigErrorsNameTheField(t *testing.T) {
	p := makePEMs(t)
	ca := "    certificate-authority-data: " + b64(p.ca)
	user := "    client-certificate-data: " + b64(p.cert) + "\n    client-key-data: " + b64(p.key)
	other := makePEMs(t)
	for _, c := range []struct{ name, doc, want string }{
		{"not yaml", "kind: [", "not YAML"},
		{"not a kubeconfig", "kind: Pod", `kind is "Pod", not Config`},
		{"no context", strings.Replace(kubeconfigYAML("https://h:1", ca, user), "current-context: default", "current-context: nope", 1),
			`current-context "nope": no such entry in contexts`},
		{"no server", kubeconfigYAML(`""`, ca, user), "clusters[kubesalt].cluster.server is empty"},
		{"http server", kubeconfigYAML("http://h:8080", ca, user), `clusters[kubesalt].cluster.server "http://h:8080": give an https://`},
		{"no CA", kubeconfigYAML("https://h:1", "    tls-server-name: x", user), "clusters[kubesalt].cluster.certificate-authority-data and certificate-authority are both empty"},
		{"insecure", kubeconfigYAML("https://h:1", "    insecure-skip-tls-verify: true", user), "clusters[kubesalt].cluster.insecure-skip-tls-verify is set"},
		{"CA not base64", kubeconfigYAML("https://h:1", "    certificate-authority-data: '%%%'", user), "clusters[kubesalt].cluster.certificate-authority-data is not base64"},
		{"CA not PEM", kubeconfigYAML("https://h:1", "    certificate-authority-data: "+b64([]byte("junk")), user), "holds no PEM certificate"},
		{"CA file missing", kubeconfigYAML("https://h:1", "    certificate-authority: /nonexistent/ca.pem", user), "clusters[kubesalt].cluster.certificate-authority: open /nonexistent/ca.pem"},
		{"key without cert", kubeconfigYAML("https://h:1", ca, "    client-key-data: "+b64(p.key)), "users[admin].user: a client certificate needs both"},
		{"key of another cert", kubeconfigYAML("https://h:1", ca, "    client-certificate-data: "+b64(p.cert)+"\n    client-key-data: "+b64(other.key)),
			"users[admin].user.client-certificate(-data) and client-key(-data): tls: private key does not match"},
		{"no credentials", kubeconfigYAML("https://h:1", ca, "    username: x"), "users[admin].user has no credentials"},
		{"exec", kubeconfigYAML("https://h:1", ca, "    exec: {command: aws}"), "users[admin].user.exec and auth-provider are not supported"},
	} {
		_, err := ParseKubeconfig([]byte(c.doc), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := LoadKubeconfig("/nonexistent/admin.kubeconfig"); err == nil || !strings.Contains(err.Error(), "give --kubeconfig") {
		t.Errorf("missing file: %v", err)
	}
}
