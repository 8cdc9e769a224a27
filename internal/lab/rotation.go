package lab

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kubesalt/kubesalt/internal/nodes"
	"github.com/kubesalt/kubesalt/internal/pki"
	"github.com/kubesalt/kubesalt/internal/probe"
)

// RotationReport is the fast-forward of the certificates' rotation.
type RotationReport struct {
	Certificates int // node files and served certificates watched
	// Issued: from the schedule's start to the CA host's new set;
	// Rotated: from the schedule's start to every node file and every
	// daemon's served certificate new (the whole set rotated).
	Issued, Rotated time.Duration
	// Margin is the least time left on an old certificate when it was
	// replaced.
	Margin                    time.Duration
	LocalTries, LocalFailed   int
	LocalGap                  time.Duration
	NotReady                  []string
	PodsOK, ServiceOK, NodeOK bool
}

// certSeen is one certificate as the lab reads it: a node's file or what
// a daemon serves.
type certSeen struct {
	serial   string
	notAfter time.Time
}

// nodeCerts reads every certificate of every node's PKI directory (its
// files and the client certificates in its kubeconfigs, as `kubesalt pki
// check` does) and the certificates the daemons serve: each API server
// and etcd member, each kubelet.
func (l *Lab) nodeCerts() (map[string]certSeen, error) {
	out := map[string]certSeen{}
	for _, n := range l.st.Nodes {
		rep, err := pki.Check(filepath.Join(l.nodeDir(n.Name), "root/etc/kubernetes/pki"), 0, time.Now())
		if err != nil {
			return nil, err
		}
		for _, c := range rep.Certificates {
			if c.Name != pki.NameCA {
				out[n.Name+":"+c.Name] = certSeen{c.Serial, c.NotAfter}
			}
		}
		ports := map[string]int{"kubelet": 10250}
		if n.Role == RoleMaster {
			ports = map[string]int{"kube-apiserver": 6443, "etcd": 2379}
		}
		for what, port := range ports {
			c, err := l.servedCert(n.IP.String(), port)
			if err != nil {
				return nil, fmt.Errorf("%s's %s: %w", n.Name, what, err)
			}
			out[n.Name+":served "+what] = c
		}
	}
	return out, nil
}

// servedCert is the certificate a TLS server presents, from the master's
// namespace (no client certificate: the handshake's first half is enough).
func (l *Lab) servedCert(host string, port int) (certSeen, error) {
	var seen certSeen
	err := probe.InNetns(l.masterNS(), func() error {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, fmt.Sprint(port)), 3*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the certificate, trusts nothing
		err = tc.Handshake()
		if st := tc.ConnectionState(); len(st.PeerCertificates) > 0 {
			c := st.PeerCertificates[0]
			seen = certSeen{c.SerialNumber.Text(16), c.NotAfter}
			return nil
		}
		return err
	})
	return seen, err
}

// Rotation runs the cluster past its first certificate renewal: a lab
// brought up with short lifetimes (Options.PKI) and the schedule off is
// bootstrapped, a Deployment and Service made; then the schedule goes on
// (kubernetes:ca:rotation) while a worker's node-local endpoint is asked
// every 100 ms. It waits until every node's files and every daemon's
// served certificate are new, and checks each was replaced before it
// expired, the nodes Ready, pod-to-pod and the Service.
func (l *Lab) Rotation(interval time.Duration) (RotationReport, error) {
	var rep RotationReport
	if !l.st.Options.K8S || l.st.Options.PKIValidity == "" {
		return rep, fmt.Errorf("the rotation needs a Kubernetes lab with short certificate lifetimes (Options.PKIValidity)")
	}
	var pods []KubePod
	err := l.runActions([]action{
		{"bootstrap: salt-run state.orchestrate orch.kubernetes.bootstrap (certificates of " + l.st.Options.PKIValidity + ", renewed in their last " + l.st.Options.PKIRenewBefore + ")",
			func() error { return l.orchestrate("orch.kubernetes.bootstrap", nil) }},
		{"Kubernetes: every node Ready, every haproxy with every master UP", func() error {
			if err := l.WaitNodesReady(5 * time.Minute); err != nil {
				return err
			}
			return l.CheckLoadBalancers(2 * time.Minute)
		}},
		{fmt.Sprintf("Deployment %s and its Service", smokeName), func() (err error) {
			pods, err = l.DeploySmoke(5 * time.Minute)
			return err
		}},
	})
	if err != nil {
		return rep, err
	}
	before, err := l.nodeCerts()
	if err != nil {
		return rep, err
	}
	rep.Certificates = len(before)
	expires := time.Time{}
	for _, c := range before {
		if expires.IsZero() || c.notAfter.Before(expires) {
			expires = c.notAfter
		}
	}
	caBefore := l.caSerials()

	worker := l.workers()[0].Name
	kubelet, err := nodes.LoadKubeconfig(filepath.Join(l.nodeDir(worker), "root/etc/kubernetes/pki/kubelet.kubeconfig"))
	if err != nil {
		return rep, err
	}
	stop := make(chan struct{})
	var prober sync.WaitGroup
	var local probeStats
	prober.Add(1)
	go func() {
		defer prober.Done()
		local.run(stop, l.NodeNS(worker), localAPIURL+"/api/v1/nodes/"+worker, kubelet.TLS)
	}()
	stopProbe := sync.OnceFunc(func() { close(stop); prober.Wait() })
	defer stopProbe()

	replaced := map[string]time.Time{}
	err = l.phase(fmt.Sprintf("rotation: schedule kubesalt-pki-rotate on (every %s); %d certificates (node files, served by the API servers, etcd, the kubelets) replaced, the first expires at %s",
		interval, len(before), expires.Format("15:04:05")), func() error {
		l.st.Options.RotationInterval = int(interval.Seconds())
		if err := l.st.Save(); err != nil {
			return err
		}
		if err := l.writePillar(); err != nil {
			return err
		}
		start := time.Now()
		if _, out, err := l.Salt(5*time.Minute, CAMinion, "state.apply", "kubernetes.ca", "queue=True"); err != nil {
			return fmt.Errorf("kubernetes.ca on %s: %v\n%s", CAMinion, err, out)
		}
		return poll(time.Until(expires), time.Second, func() (string, error) {
			if rep.Issued == 0 && l.caSerials() != caBefore {
				rep.Issued = time.Since(start)
				l.say("    the CA host's set reissued %.1fs after the schedule went on", rep.Issued.Seconds())
			}
			now, err := l.nodeCerts()
			if err != nil {
				return err.Error(), nil
			}
			var left []string
			for name, old := range before {
				if c, ok := now[name]; ok && c.serial != old.serial {
					if _, seen := replaced[name]; !seen {
						replaced[name] = time.Now()
					}
					continue
				}
				left = append(left, name)
			}
			if len(left) > 0 {
				sort.Strings(left)
				return fmt.Sprintf("%d of %d not replaced yet: %s", len(left), len(before), strings.Join(left, ", ")), nil
			}
			rep.Rotated = time.Since(start)
			return "", nil
		})
	})
	stopProbe()
	rep.LocalTries, rep.LocalFailed, rep.LocalGap = local.tries, local.failed, local.gap
	if err != nil {
		return rep, err
	}
	rep.Margin = -1
	var late []string
	for name, at := range replaced {
		m := before[name].notAfter.Sub(at)
		if m <= 0 {
			late = append(late, fmt.Sprintf("%s replaced %s after it expired", name, -m))
		}
		if rep.Margin < 0 || m < rep.Margin {
			rep.Margin = m
		}
	}
	if len(late) > 0 {
		sort.Strings(late)
		return rep, fmt.Errorf("replaced too late: %s", strings.Join(late, "; "))
	}
	l.say("    every certificate replaced %.1fs after the schedule went on (the CA host's set after %.1fs); the least time left on an old one %s",
		rep.Rotated.Seconds(), rep.Issued.Seconds(), rep.Margin.Round(time.Second))
	l.say("    requests through %s's node-local endpoint: %d sent, %d failed, longest failing run %.1fs",
		worker, rep.LocalTries, rep.LocalFailed, rep.LocalGap.Seconds())
	err = l.runActions([]action{
		{"after the rotation: every node Ready", func() error {
			err := l.WaitNodesReady(time.Minute)
			rep.NodeOK = err == nil
			return err
		}},
		{"after the rotation: every pod reaches every pod on another node", func() error {
			ok, err := l.CheckKubePods(pods)
			rep.PodsOK = ok && err == nil
			if err == nil && !ok {
				err = fmt.Errorf("some pods failed (above)")
			}
			return err
		}},
		{"after the rotation: the Service answers every pod", func() error {
			err := l.CheckService(pods)
			rep.ServiceOK = err == nil
			return err
		}},
	})
	return rep, err
}

// caSerials is the serials of the CA host's leaf certificates, joined.
func (l *Lab) caSerials() string {
	rep, err := pki.Check(l.PKIDir(), 0, time.Now())
	if err != nil {
		return ""
	}
	var s []string
	for _, c := range rep.Certificates {
		if c.Name != pki.NameCA {
			s = append(s, c.Serial)
		}
	}
	return strings.Join(s, ",")
}
