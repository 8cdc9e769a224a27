package pki

import (
	"crypto/x509"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/saltio"
)

// CertificateStatus is one certificate as `kubesalt pki check` shows it.
type CertificateStatus struct {
	Name     string    `json:"name"`
	Subject  string    `json:"subject"`
	SANs     []string  `json:"sans"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	// Problem is why it needs attention: expired, expiring within the
	// window, or not issued by the directory's CA.
	Problem string `json:"problem,omitempty"`
}

// CheckReport is every certificate of a directory, the CA first.
type CheckReport struct {
	Certificates []CertificateStatus `json:"certificates"`
	// Problems are files that cannot be read as certificates.
	Problems []string `json:"problems,omitempty"`
}

// Failing counts the certificates and files that need attention.
func (c *CheckReport) Failing() int {
	n := len(c.Problems)
	for _, s := range c.Certificates {
		if s.Problem != "" {
			n++
		}
	}
	return n
}

// Check reads every certificate under dir (the analogue of `kubeadm certs
// check-expiration`): subject, SANs, expiry, and whether it expires within
// renewBefore of now.
func Check(dir string, renewBefore time.Duration, now time.Time) (*CheckReport, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, saltio.BadInputf("--dir %s: no such PKI directory; create it with `kubesalt pki issue`", dir)
	}
	var rels []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".pem") || strings.HasSuffix(name, "-key.pem") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rels = append(rels, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, err
	}
	report := &CheckReport{Certificates: make([]CertificateStatus, 0, len(rels))}
	var ca *x509.Certificate
	if f, err := readFile(dir, caCertFile); err == nil && f.exists {
		ca, _ = parseCertPEM(f.data)
	}
	for _, rel := range rels {
		f, err := readFile(dir, rel)
		if err != nil {
			report.Problems = append(report.Problems, err.Error())
			continue
		}
		cert, err := parseCertPEM(f.data)
		if err != nil {
			report.Problems = append(report.Problems, fmt.Sprintf("%s: %v", rel, err))
			continue
		}
		s := CertificateStatus{
			Name:     certName(rel),
			Subject:  cert.Subject.String(),
			SANs:     append([]string{}, cert.DNSNames...),
			NotAfter: cert.NotAfter.UTC(),
			DaysLeft: daysLeft(cert.NotAfter, now),
		}
		for _, ip := range cert.IPAddresses {
			s.SANs = append(s.SANs, ip.String())
		}
		switch {
		case !cert.NotAfter.After(now):
			s.Problem = "expired"
		case !cert.NotAfter.After(now.Add(renewBefore)):
			s.Problem = "expires within " + fmtHours(renewBefore)
		case ca != nil && s.Name != NameCA && cert.CheckSignatureFrom(ca) != nil:
			s.Problem = "not issued by this directory's CA"
		}
		report.Certificates = append(report.Certificates, s)
	}
	if ca == nil {
		report.Problems = append(report.Problems, caCertFile+": missing or not a certificate; there is no CA to check against")
	}
	sort.Slice(report.Certificates, func(i, j int) bool {
		a, b := report.Certificates[i].Name, report.Certificates[j].Name
		if a == NameCA || b == NameCA {
			return a == NameCA && b != NameCA
		}
		return a < b
	})
	return report, nil
}

// certName is the name of the certificate at rel ("nodes/w/kubelet.pem" ->
// "w/kubelet").
func certName(rel string) string {
	return strings.TrimSuffix(strings.TrimPrefix(rel, nodesDir+"/"), path.Ext(rel))
}

func fmtHours(d time.Duration) string {
	return strings.TrimSuffix(d.Round(time.Hour).String(), "0m0s")
}
