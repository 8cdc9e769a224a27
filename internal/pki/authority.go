package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/cloudflare/cfssl/config"
	"github.com/cloudflare/cfssl/csr"
	"github.com/cloudflare/cfssl/helpers"
	"github.com/cloudflare/cfssl/initca"
	"github.com/cloudflare/cfssl/signer"
	"github.com/cloudflare/cfssl/signer/local"

	"github.com/kubesalt/kubesalt/internal/cluster"
)

// authority is the cluster CA and the cfssl signer over it.
type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
	signer  *local.Signer
}

// keyRequest is the cfssl key request of a kubernetes:pki:algorithm.
func keyRequest(alg string) *csr.KeyRequest {
	switch alg {
	case cluster.AlgorithmRSA2048:
		return &csr.KeyRequest{A: "rsa", S: 2048}
	case cluster.AlgorithmRSA4096:
		return &csr.KeyRequest{A: "rsa", S: 4096}
	}
	return &csr.KeyRequest{A: "ecdsa", S: 256}
}

// keyAlgorithm names the algorithm of a public key as the definition does.
func keyAlgorithm(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return cluster.AlgorithmECDSAP256
		}
		return "ecdsa-" + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

// newAuthority makes a new self-signed CA with cfssl's initca.
func newAuthority(d *cluster.Definition) (*authority, error) {
	req := &csr.CertificateRequest{
		CN:         d.Name + "-ca",
		Names:      []csr.Name{{O: d.Name}},
		KeyRequest: keyRequest(d.PKI.Algorithm),
		CA:         &csr.CAConfig{Expiry: d.PKI.CAValidity.String(), PathLenZero: true},
	}
	certPEM, _, keyPEM, err := initca.New(req)
	if err != nil {
		return nil, fmt.Errorf("creating the CA: %w", err)
	}
	return openAuthority(certPEM, keyPEM, d)
}

// openAuthority parses a CA's files and builds the signer; the error says
// what is wrong with them.
func openAuthority(certPEM, keyPEM []byte, d *cluster.Definition) (*authority, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", caCertFile, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s: %q is not a CA certificate", caCertFile, cert.Subject)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", caKeyFile, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s does not belong to %s", caKeyFile, caCertFile)
	}
	s, err := local.NewSigner(key, cert, signer.DefaultSigAlgo(key), signingPolicy(d))
	if err != nil {
		return nil, fmt.Errorf("loading the CA into cfssl: %w", err)
	}
	return &authority{cert: cert, certPEM: certPEM, keyPEM: keyPEM, signer: s}, nil
}

// signingPolicy has one cfssl profile per usage, with the definition's
// validity. RSA keys also encipher; ECDSA keys only sign.
func signingPolicy(d *cluster.Definition) *config.Signing {
	base := []string{"digital signature"}
	if d.PKI.Algorithm != cluster.AlgorithmECDSAP256 {
		base = append(base, "key encipherment")
	}
	profile := func(extra ...string) *config.SigningProfile {
		return &config.SigningProfile{
			Usage:        append(append([]string{}, base...), extra...),
			Expiry:       d.PKI.Validity,
			ExpiryString: d.PKI.Validity.String(),
		}
	}
	return &config.Signing{
		Default: profile("client auth"),
		Profiles: map[string]*config.SigningProfile{
			usageClient.profile():       profile("client auth"),
			usageServer.profile():       profile("server auth"),
			usageClientServer.profile(): profile("server auth", "client auth"),
		},
	}
}

// wantKeyUsage is the key usage signingPolicy gives a leaf.
func wantKeyUsage(alg string) x509.KeyUsage {
	if alg == cluster.AlgorithmECDSAP256 {
		return x509.KeyUsageDigitalSignature
	}
	return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
}

// issue makes a fresh key and has the CA sign it for spec, the way
// `cfssl gencert` does: key and CSR from the request, then a signature
// under the usage's profile.
func (a *authority) issue(spec *certSpec, alg string, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	req := &csr.CertificateRequest{CN: spec.cn, KeyRequest: keyRequest(alg), Hosts: spec.hosts()}
	for _, o := range spec.orgs {
		req.Names = append(req.Names, csr.Name{O: o})
	}
	csrPEM, keyPEM, err := csr.ParseRequest(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: making key and CSR: %w", spec.name, err)
	}
	notAfter := now.Add(validity)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter // a certificate cannot outlive its CA
	}
	certPEM, err = a.signer.Sign(signer.SignRequest{
		Hosts:    spec.hosts(),
		Request:  string(csrPEM),
		Profile:  spec.usage.profile(),
		NotAfter: notAfter.UTC(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: signing: %w", spec.name, err)
	}
	return certPEM, keyPEM, nil
}

// parseCertPEM parses a file holding exactly one PEM certificate.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("not a PEM certificate")
	}
	if len(trimSpace(rest)) != 0 {
		return nil, fmt.Errorf("holds more than one PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("corrupt certificate: %v", err)
	}
	return cert, nil
}

// parseKeyPEM parses a PEM private key (EC, PKCS#1 or PKCS#8).
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil || !isKeyBlock(block.Type) {
		return nil, fmt.Errorf("not a PEM private key")
	}
	key, err := helpers.ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("corrupt private key: %v", err)
	}
	return key, nil
}

func isKeyBlock(t string) bool {
	return t == "EC PRIVATE KEY" || t == "RSA PRIVATE KEY" || t == "PRIVATE KEY"
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
