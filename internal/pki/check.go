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
	Serial   string    `json:"serial"` // hexadecimal
	SANs     []string  `json:"sans"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	// Problem is why it needs attention: expired, expiring within the
	// window, or not issued by the directory's CA.
	Problem string `json:"problem,omitempty"`
	// Fix is what to run about the problem.
	Fix string `json:"fix,omitempty"`
}

// Fixes of the problems Check reports.
const (
	FixRenew   = "renew and distribute: salt-run state.orchestrate orch.kubernetes.rotate (the CA minion's kubesalt-pki-rotate schedule runs it when kubernetes:ca:rotation:enabled)"
	fixForeign = "reissue it from this CA: kubesalt pki issue --reissue %s, then salt-run state.orchestrate orch.kubernetes.rotate"
)

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
		isCert := strings.HasSuffix(name, ".pem") && !strings.HasSuffix(name, "-key.pem")
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !(isCert || strings.HasSuffix(name, ".kubeconfig")) {
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
	// A kubeconfig's certificate is shown when no .pem of its name holds
	// the same one (a node's kube-proxy.kubeconfig; a stale copy).
	seen := map[string]string{} // name -> serial of its .pem
	sort.Slice(rels, func(i, j int) bool {
		ki, kj := strings.HasSuffix(rels[i], ".kubeconfig"), strings.HasSuffix(rels[j], ".kubeconfig")
		return !ki && kj || ki == kj && rels[i] < rels[j]
	})
	for _, rel := range rels {
		f, err := readFile(dir, rel)
		if err != nil {
			report.Problems = append(report.Problems, err.Error())
			continue
		}
		name := certName(rel)
		var cert *x509.Certificate
		if strings.HasSuffix(rel, ".kubeconfig") {
			kc, ok := parseKubeconfig(f.data)
			if !ok {
				report.Problems = append(report.Problems, fmt.Sprintf("%s: not a kubeconfig with one cluster and one user", rel))
				continue
			}
			if len(kc.Users[0].User.ClientCertificateData) == 0 {
				continue // no client certificate: nothing expires
			}
			cert, err = parseCertPEM(kc.Users[0].User.ClientCertificateData)
			if err != nil {
				report.Problems = append(report.Problems, fmt.Sprintf("%s: client-certificate-data: %v", rel, err))
				continue
			}
			serial, ok := seen[name]
			if ok && serial == cert.SerialNumber.String() {
				continue
			}
			if ok {
				name += ".kubeconfig"
			}
		} else {
			cert, err = parseCertPEM(f.data)
			if err != nil {
				report.Problems = append(report.Problems, fmt.Sprintf("%s: %v", rel, err))
				continue
			}
			seen[name] = cert.SerialNumber.String()
		}
		s := CertificateStatus{
			Name:     name,
			Subject:  cert.Subject.String(),
			SANs:     append([]string{}, cert.DNSNames...),
			Serial:   cert.SerialNumber.Text(16),
			NotAfter: cert.NotAfter.UTC(),
			DaysLeft: daysLeft(cert.NotAfter, now),
		}
		for _, ip := range cert.IPAddresses {
			s.SANs = append(s.SANs, ip.String())
		}
		switch {
		case !cert.NotAfter.After(now):
			s.Problem, s.Fix = "expired", FixRenew
		case !cert.NotAfter.After(now.Add(renewBefore)):
			s.Problem, s.Fix = "expires within "+fmtWindow(renewBefore), FixRenew
		case ca != nil && s.Name != NameCA && cert.CheckSignatureFrom(ca) != nil:
			s.Problem, s.Fix = "not issued by this directory's CA", fmt.Sprintf(fixForeign, strings.TrimSuffix(s.Name, ".kubeconfig"))
		}
		if s.Name == NameCA && s.Fix != "" {
			s.Fix = "renew the CA on purpose: kubesalt pki issue --reissue ca (every certificate is then reissued and every node needs its new bundle: salt-run state.orchestrate orch.kubernetes.rotate)"
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

// fmtWindow writes a window as the pillar does: whole hours as "720h",
// shorter ones as Go writes them ("18m").
func fmtWindow(d time.Duration) string {
	if d >= time.Hour {
		return strings.TrimSuffix(d.Round(time.Hour).String(), "0m0s")
	}
	if s, ok := strings.CutSuffix(d.String(), "m0s"); ok {
		return s + "m"
	}
	return d.String()
}
