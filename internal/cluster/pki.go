package cluster

import (
	"strings"
	"time"
)

// Key algorithms of the cluster's certificates (kubernetes:pki:algorithm).
const (
	AlgorithmECDSAP256 = "ecdsa-p256"
	AlgorithmRSA2048   = "rsa-2048"
	AlgorithmRSA4096   = "rsa-4096"
)

// Defaults of the kubernetes:pki section.
const (
	DefaultAlgorithm   = AlgorithmECDSAP256
	DefaultCAValidity  = 10 * 365 * 24 * time.Hour // 87600h
	DefaultValidity    = 365 * 24 * time.Hour      // 8760h
	DefaultRenewBefore = 30 * 24 * time.Hour       // 720h
)

// PKI is how the cluster's certificates are made.
type PKI struct {
	Algorithm   string
	CAValidity  time.Duration
	Validity    time.Duration // of every leaf certificate
	RenewBefore time.Duration // reissue a leaf this long before it expires
}

type rawPKI struct {
	Algorithm   string `yaml:"algorithm"`
	CAValidity  string `yaml:"ca_validity"`
	Validity    string `yaml:"validity"`
	RenewBefore string `yaml:"renew_before"`
}

// Unknown keys under kubernetes:pki are reported with the others (load.go).
func init() {
	knownFields["rawPKI"] = "algorithm, ca_validity, validity, renew_before"
	sectionOf["rawPKI"] = "kubernetes:pki"
}

func (c *checker) pki(r *rawPKI, p *PKI) {
	const f = "kubernetes:pki:"
	p.Algorithm = r.Algorithm
	switch p.Algorithm {
	case "":
		p.Algorithm = DefaultAlgorithm
	case AlgorithmECDSAP256, AlgorithmRSA2048, AlgorithmRSA4096:
	default:
		c.add(f+"algorithm", "%q is not a key algorithm; use %s (default), %s or %s",
			r.Algorithm, AlgorithmECDSAP256, AlgorithmRSA2048, AlgorithmRSA4096)
	}
	p.CAValidity = c.duration(f+"ca_validity", r.CAValidity, DefaultCAValidity)
	p.Validity = c.duration(f+"validity", r.Validity, DefaultValidity)
	p.RenewBefore = c.duration(f+"renew_before", r.RenewBefore, DefaultRenewBefore)
	if p.CAValidity > 0 && p.Validity > p.CAValidity {
		c.add(f+"validity", "%s is longer than ca_validity %s; a certificate cannot outlive its CA: shorten it or lengthen ca_validity", r.Validity, fmtDuration(p.CAValidity))
	}
	if p.Validity > 0 && p.RenewBefore >= p.Validity {
		c.add(f+"renew_before", "%s is not shorter than validity %s, so every run would reissue every certificate; use e.g. %s", fmtDuration(p.RenewBefore), fmtDuration(p.Validity), fmtDuration(p.Validity/12))
	}
}

// duration parses a Go duration ("8760h"); days ("365d") are accepted too.
func (c *checker) duration(field, s string, def time.Duration) time.Duration {
	s = strings.TrimSpace(s)
	if s == "" {
		return def
	}
	d, err := ParseDuration(s)
	if err != nil || d <= 0 {
		c.add(field, "%q is not a positive duration; write hours like %s (or days like %dd)", s, fmtDuration(def), int(def.Hours()/24))
		return 0
	}
	return d
}

// ParseDuration parses a Go duration, or a whole number of days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		d, err := time.ParseDuration(n + "h")
		return d * 24, err
	}
	return time.ParseDuration(s)
}

func fmtDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return strings.TrimSuffix(d.String(), "0m0s")
	}
	return d.String()
}
