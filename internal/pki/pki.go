// Package pki issues and keeps the cluster's whole PKI in one directory: the
// CA, every certificate Kubernetes "the hard way" needs (made in process with
// the cfssl library), the kubeconfigs, the service-account key pair and the
// encryption config for Secrets. It reissues only what the definition or the
// clock asks for, checks expiry, and cuts per-node bundles for the pillar.
//
// Layout of the directory (mode 0700):
//
//	ca.pem ca-key.pem
//	admin.pem admin-key.pem admin.kubeconfig          (also kube-controller-manager,
//	                                                   kube-scheduler, kube-proxy)
//	kube-apiserver.pem kube-apiserver-key.pem         (also -kubelet-client, -etcd-client)
//	service-account-key.pem service-account.pub
//	encryption-config.yaml
//	nodes/<node>/kubelet{.pem,-key.pem,.kubeconfig}
//	nodes/<master>/etcd-server{.pem,-key.pem} etcd-peer{.pem,-key.pem}
package pki

import (
	"fmt"
	"sort"
	"strings"
	"time"

	cflog "github.com/cloudflare/cfssl/log"
)

func init() {
	// cfssl logs every signature at info level on stderr; ours is JSON on stdout.
	cflog.Level = cflog.LevelError
}

// Names of the material that is not a leaf certificate.
const (
	NameCA               = "ca"
	NameServiceAccount   = "service-account"
	NameEncryptionConfig = "encryption-config"
)

// Files of the directory, relative to it.
const (
	lockFile       = ".lock"
	nodesDir       = "nodes"
	caCertFile     = "ca.pem"
	caKeyFile      = "ca-key.pem"
	saKeyFile      = "service-account-key.pem"
	saPubFile      = "service-account.pub"
	encryptionFile = "encryption-config.yaml"
)

// File modes: secrets are for the owner alone.
const (
	modeDir    = 0o700
	modeSecret = 0o600
	modePublic = 0o644
)

// Options of Issue.
type Options struct {
	Dir  string
	Test bool // report what would be issued, write nothing
	// RenewBefore overrides kubernetes:pki:renew_before when non-zero.
	RenewBefore time.Duration
	// Reissue names material to replace although it is fine ("admin",
	// "worker-0/kubelet", "ca", "service-account", "encryption-config").
	Reissue []string
	// Now is the clock; zero means time.Now.
	Now time.Time
}

// Result says what Issue did (or, in test mode, would do): for each thing
// written, why.
type Result struct {
	Issued      map[string]string `json:"issued,omitempty"`      // certificate/key name -> reason
	Kubeconfigs map[string]string `json:"kubeconfigs,omitempty"` // kubeconfig name -> reason
	Removed     map[string]string `json:"removed,omitempty"`     // certificate name -> reason
	Modes       map[string]string `json:"modes,omitempty"`       // path -> "0644 -> 0600"
	// Certificates is how many certificates the definition asks for (CA included).
	Certificates int `json:"-"`
	// Warnings are things that need a person (a CA close to expiry).
	Warnings []string `json:"-"`
}

// Changed reports whether anything was (or would be) written or removed.
func (r *Result) Changed() bool {
	return len(r.Issued)+len(r.Kubeconfigs)+len(r.Removed)+len(r.Modes) > 0
}

// StateError lists files in the PKI directory that kubesalt will not
// replace on its own: corrupt, foreign (not from this CA) or half missing.
type StateError struct {
	Dir      string
	Problems []string
}

func (e *StateError) Error() string {
	sort.Strings(e.Problems)
	if len(e.Problems) == 1 {
		return fmt.Sprintf("PKI directory %s: %s", e.Dir, e.Problems[0])
	}
	return fmt.Sprintf("PKI directory %s has %d problems:\n  %s", e.Dir, len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// daysLeft is the whole number of days until t (negative once past).
func daysLeft(t, now time.Time) int {
	d := t.Sub(now)
	days := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		days-- // floor, so an hour past expiry is day -1
	}
	return days
}

func expiryReason(notAfter, now time.Time) string {
	// Short-lived certificates (a fast-forward lab) in minutes.
	if left := notAfter.Sub(now).Round(time.Second); left > -24*time.Hour && left < 24*time.Hour {
		if left <= 0 {
			return "expired " + fmtWindow(-left) + " ago"
		}
		return "expires in " + fmtWindow(left)
	}
	switch n := daysLeft(notAfter, now); {
	case !notAfter.After(now):
		return fmt.Sprintf("expired %d days ago", -n)
	case n == 1:
		return "expires in 1 day"
	default:
		return fmt.Sprintf("expires in %d days", n)
	}
}
