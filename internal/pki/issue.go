package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
	"github.com/kubesalt/kubesalt/internal/workers"
)

// ReissueAll, given to Options.Reissue, reissues every leaf certificate.
const ReissueAll = "all"

// leaf is one certificate of the set: what is on disk and what to do.
type leaf struct {
	spec   *certSpec
	cert   file
	key    file
	reason string // why it is (re)issued; "" keeps it
	// The material the kubeconfig embeds: found, or new once issued.
	certPEM, keyPEM []byte
}

// run is one Issue call.
type run struct {
	d         *cluster.Definition
	o         Options
	now       time.Time
	renew     time.Duration
	requested map[string]bool
	result    *Result

	mu       sync.Mutex
	problems []string
}

func (r *run) problem(format string, args ...any) {
	r.mu.Lock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// Issue brings the directory in line with the definition: it creates what
// is missing and reissues what no longer matches, is close to expiry or is
// requested, and nothing else. Every file is checked before anything is
// written; a corrupt or foreign one stops the run with a *StateError.
func Issue(d *cluster.Definition, o Options) (*Result, error) {
	specs, err := certificateSet(d)
	if err != nil {
		return nil, saltio.BadInput(err)
	}
	if o.Dir == "" {
		return nil, saltio.BadInputf("no PKI directory given; pass --dir, e.g. /srv/kubesalt/pki")
	}
	r := &run{d: d, o: o, now: o.Now, renew: o.RenewBefore, result: &Result{
		Issued: map[string]string{}, Kubeconfigs: map[string]string{},
		Removed: map[string]string{}, Modes: map[string]string{},
		Certificates: len(specs) + 1,
	}}
	if r.now.IsZero() {
		r.now = time.Now()
	}
	if r.renew == 0 {
		r.renew = d.PKI.RenewBefore
	}
	if r.requested, err = requestedNames(specs, o.Reissue); err != nil {
		return nil, err
	}

	if !o.Test {
		if err := ensureDir(o.Dir); err != nil {
			return nil, err
		}
	}
	// Test mode takes the lock only when it need not create the lock file.
	if _, err := os.Stat(filepath.Join(o.Dir, lockFile)); err == nil || !o.Test {
		unlock, err := atomicfile.Lock(filepath.Join(o.Dir, lockFile))
		if err != nil {
			return nil, err
		}
		defer unlock()
	}

	ca, caNew, err := r.authority()
	if err != nil {
		return nil, err
	}
	leaves := make([]*leaf, len(specs))
	workers.ForEach(len(specs), runtime.GOMAXPROCS(0), func(i int) {
		leaves[i] = r.inspectLeaf(&specs[i], ca, caNew)
	})
	sa := r.inspectServiceAccount()
	enc := r.inspectEncryption()
	kcs := r.inspectKubeconfigs(leaves, ca)
	stale := r.staleNodeFiles()
	chmods := r.modeDrift(leaves, kcs, sa, enc)
	if len(r.problems) > 0 {
		return nil, &StateError{Dir: o.Dir, Problems: r.problems}
	}
	if o.Test {
		return r.result, nil
	}

	// Everything checked: now act.
	if err := r.apply(ca, caNew, leaves, sa, enc, kcs, chmods, stale); err != nil {
		return nil, err
	}
	return r.result, nil
}

// apply makes and writes what inspection decided, then fixes modes and
// removes the files of departed nodes.
func (r *run) apply(ca *authority, caNew string, leaves []*leaf, sa *serviceAccount, enc *encryption,
	kcs []*kubeconfigFile, chmods map[string]fs.FileMode, stale []string) error {
	var writes []write
	if caNew != "" {
		writes = append(writes, write{caKeyFile, ca.keyPEM, modeSecret}, write{caCertFile, ca.certPEM, modePublic})
	}
	var todo []*leaf
	for _, l := range leaves {
		if l.reason != "" {
			todo = append(todo, l)
		}
	}
	// Key generation is the cost (RSA): one worker per core, and the
	// service-account key alongside.
	var saWrites []write
	var saErr error
	saDone := make(chan struct{})
	go func() {
		defer close(saDone)
		if sa.reason != "" {
			saWrites, saErr = sa.material(r.d.PKI.Algorithm)
		}
	}()
	errs := make([]error, len(todo))
	workers.ForEach(len(todo), runtime.GOMAXPROCS(0), func(i int) {
		l := todo[i]
		l.certPEM, l.keyPEM, errs[i] = ca.issue(l.spec, r.d.PKI.Algorithm, r.d.PKI.Validity, r.now)
	})
	<-saDone
	if err := errors.Join(append(errs, saErr)...); err != nil {
		return err
	}
	for _, l := range todo {
		writes = append(writes, write{keyPath(l.spec.name), l.keyPEM, modeSecret}, write{certPath(l.spec.name), l.certPEM, modePublic})
	}
	writes = append(writes, saWrites...)
	if enc.reason != "" {
		data, err := enc.next()
		if err != nil {
			return err
		}
		writes = append(writes, write{encryptionFile, data, modeSecret})
	}
	kcWrites := make([]write, len(kcs))
	workers.ForEach(len(kcs), runtime.GOMAXPROCS(0), func(i int) {
		if kc := kcs[i]; kc.reason != "" {
			kcWrites[i] = write{kubeconfigPath(kc.leaf.spec.name), kc.render(r.d.Name, ca.certPEM), modeSecret}
		}
	})
	for _, w := range kcWrites {
		if w.rel != "" {
			writes = append(writes, w)
		}
	}
	if err := writeAll(r.o.Dir, writes); err != nil {
		return err
	}
	for rel, mode := range chmods {
		if err := os.Chmod(filepath.Join(r.o.Dir, rel), mode); err != nil {
			return err
		}
	}
	for _, rel := range stale {
		if err := os.Remove(filepath.Join(r.o.Dir, rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		// A node's directory goes once empty; anything else in it stays.
		_ = os.Remove(filepath.Join(r.o.Dir, path.Dir(rel)))
	}
	return nil
}

// requestedNames validates Options.Reissue against the set.
func requestedNames(specs []certSpec, names []string) (map[string]bool, error) {
	known := map[string]bool{NameCA: true, NameServiceAccount: true, NameEncryptionConfig: true}
	for _, s := range specs {
		known[s.name] = true
	}
	out := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		switch {
		case n == ReissueAll:
			for _, s := range specs {
				out[s.name] = true
			}
		case known[n]:
			out[n] = true
		default:
			return nil, saltio.BadInputf("--reissue %q: no such certificate in this cluster; use one of: %s, admin, kube-apiserver, <node>/kubelet, <master>/etcd-server, <master>/etcd-peer, %s, %s, or %s for every certificate (`kubesalt pki check` lists them)",
				n, NameCA, NameServiceAccount, NameEncryptionConfig, ReissueAll)
		}
	}
	return out, nil
}

// authority loads the CA, or makes a new one when there is none or one is
// requested; caNew is then the reason. An existing CA is never replaced
// unless asked.
func (r *run) authority() (ca *authority, caNew string, err error) {
	certF, err1 := readFile(r.o.Dir, caCertFile)
	keyF, err2 := readFile(r.o.Dir, caKeyFile)
	if err := errors.Join(err1, err2); err != nil {
		return nil, "", err
	}
	switch {
	case r.requested[NameCA]:
		caNew = "requested"
	case !certF.exists && !keyF.exists:
		caNew = "new"
	case !keyF.exists:
		return nil, "", &StateError{Dir: r.o.Dir, Problems: []string{fmt.Sprintf("%s is there but %s is missing; restore the key from a backup, or run with --reissue ca to start a new CA (every certificate is then reissued)", caCertFile, caKeyFile)}}
	case !certF.exists:
		return nil, "", &StateError{Dir: r.o.Dir, Problems: []string{fmt.Sprintf("%s is there but %s is missing; restore the certificate from a backup, or run with --reissue ca to start a new CA (every certificate is then reissued)", caKeyFile, caCertFile)}}
	}
	if caNew != "" {
		r.result.Issued[NameCA] = caNew
		if r.o.Test {
			// Nothing is signed in test mode; a placeholder CA keeps the
			// kubeconfig comparison honest (it changes with a new CA).
			return &authority{}, caNew, nil
		}
		ca, err = newAuthority(r.d)
		return ca, caNew, err
	}
	ca, err = openAuthority(certF.data, keyF.data, r.d)
	if err != nil {
		return nil, "", &StateError{Dir: r.o.Dir, Problems: []string{err.Error() + "; restore the CA from a backup, or run with --reissue ca to start a new CA (every certificate is then reissued)"}}
	}
	if !ca.cert.NotAfter.After(r.now.Add(r.renew)) {
		r.result.Warnings = append(r.result.Warnings, fmt.Sprintf("the CA %s; renew it with --reissue ca (every certificate is then reissued and every node needs its new bundle)", expiryReason(ca.cert.NotAfter, r.now)))
	}
	return ca, "", nil
}

// inspectLeaf decides whether spec's certificate is kept or (re)issued.
func (r *run) inspectLeaf(spec *certSpec, ca *authority, caNew string) *leaf {
	l := &leaf{spec: spec}
	var err1, err2 error
	l.cert, err1 = readFile(r.o.Dir, certPath(spec.name))
	l.key, err2 = readFile(r.o.Dir, keyPath(spec.name))
	if err := errors.Join(err1, err2); err != nil {
		r.problem("%v", err)
		return l
	}
	defer func() {
		if l.reason != "" {
			r.mu.Lock()
			r.result.Issued[spec.name] = l.reason
			r.mu.Unlock()
		}
	}()
	switch {
	case r.requested[spec.name]:
		l.reason = "requested"
		return l
	case !l.cert.exists && !l.key.exists:
		l.reason = "new"
		return l
	}
	fix := fmt.Sprintf("remove it or run with --reissue %s to replace it", spec.name)
	var cert *x509.Certificate
	if l.cert.exists {
		c, err := parseCertPEM(l.cert.data)
		if err != nil {
			r.problem("%s: %v; %s", l.cert.rel, err, fix)
			return l
		}
		cert = c
	}
	var key crypto.Signer
	if l.key.exists {
		k, err := parseKeyPEM(l.key.data)
		if err != nil {
			r.problem("%s: %v; %s", l.key.rel, err, fix)
			return l
		}
		key = k
	}
	if caNew != "" {
		l.reason = "ca replaced"
		return l
	}
	if cert != nil && cert.CheckSignatureFrom(ca.cert) != nil {
		r.problem("%s: %q was not issued by this directory's CA (%q); %s", l.cert.rel, cert.Subject, ca.cert.Subject, fix)
		return l
	}
	switch {
	case !l.cert.exists:
		l.reason = "certificate missing"
		return l
	case !l.key.exists:
		l.reason = "key missing"
		return l
	}
	var why []string
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		why = append(why, "key does not match certificate")
	}
	if got := keyAlgorithm(cert.PublicKey); got != r.d.PKI.Algorithm {
		why = append(why, fmt.Sprintf("key algorithm changed (%s -> %s)", got, r.d.PKI.Algorithm))
	}
	if !sameSubject(cert, spec) {
		why = append(why, "subject changed")
	}
	if !sameSANs(cert, spec) {
		why = append(why, "sans changed")
	}
	if !sameUsages(cert, spec, r.d.PKI.Algorithm) {
		why = append(why, "usages changed")
	}
	if !cert.NotAfter.After(r.now.Add(r.renew)) {
		why = append(why, expiryReason(cert.NotAfter, r.now))
	}
	l.reason = strings.Join(why, ", ")
	l.certPEM, l.keyPEM = l.cert.data, l.key.data
	return l
}

func sameSubject(c *x509.Certificate, s *certSpec) bool {
	return c.Subject.CommonName == s.cn && sameSet(c.Subject.Organization, s.orgs) &&
		len(c.Subject.OrganizationalUnit)+len(c.Subject.Country)+len(c.Subject.Locality)+len(c.Subject.Province) == 0
}

func sameSANs(c *x509.Certificate, s *certSpec) bool {
	var ips, want []string
	for _, ip := range c.IPAddresses {
		a, _ := netip.AddrFromSlice(ip)
		ips = append(ips, a.Unmap().String())
	}
	for _, ip := range s.ips {
		want = append(want, ip.String())
	}
	return sameSet(ips, want) && sameSet(c.DNSNames, s.dns) && len(c.EmailAddresses)+len(c.URIs) == 0
}

func sameUsages(c *x509.Certificate, s *certSpec, alg string) bool {
	if c.KeyUsage != wantKeyUsage(alg) || c.IsCA {
		return false
	}
	got := slices.Clone(c.ExtKeyUsage)
	want := s.usage.extKeyUsages()
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// staleNodeFiles finds the material of nodes that left the definition, and
// etcd material of nodes that are no longer masters. Only kubesalt's own
// files are removed; anything else stays.
func (r *run) staleNodeFiles() []string {
	entries, err := os.ReadDir(filepath.Join(r.o.Dir, nodesDir))
	if err != nil {
		return nil // no nodes/ yet
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		node, inDefinition := r.d.Node(e.Name())
		whats := []string{whatKubelet, whatEtcdServer, whatEtcdPeer}
		reason := "node no longer in the definition"
		switch {
		case inDefinition && node.Role == cluster.RoleMaster:
			continue
		case inDefinition:
			whats, reason = whats[1:], "node is no longer a master"
		}
		for _, what := range whats {
			name := nodeName(e.Name(), what)
			found := false
			for _, rel := range []string{certPath(name), keyPath(name), kubeconfigPath(name)} {
				if _, err := os.Lstat(filepath.Join(r.o.Dir, rel)); err == nil {
					out, found = append(out, rel), true
				}
			}
			if found {
				r.result.Removed[name] = reason
			}
		}
	}
	return out
}

// modeDrift finds files and directories whose mode is looser or other than
// it should be (keys 0600, certificates 0644, directories 0700).
func (r *run) modeDrift(leaves []*leaf, kcs []*kubeconfigFile, sa *serviceAccount, enc *encryption) map[string]fs.FileMode {
	out := map[string]fs.FileMode{}
	check := func(f file, want fs.FileMode, rewritten bool) {
		if f.exists && !rewritten && f.mode != want {
			out[f.rel] = want
			r.result.Modes[f.rel] = fmt.Sprintf("%04o -> %04o", f.mode, want)
		}
	}
	for _, l := range leaves {
		check(l.cert, modePublic, l.reason != "")
		check(l.key, modeSecret, l.reason != "")
	}
	for _, kc := range kcs {
		check(kc.file, modeSecret, kc.reason != "")
	}
	check(sa.key, modeSecret, sa.reason != "")
	check(sa.pub, modePublic, sa.reason != "")
	check(enc.file, modeSecret, enc.reason != "")
	caCert, _ := readFile(r.o.Dir, caCertFile)
	caKey, _ := readFile(r.o.Dir, caKeyFile)
	_, caNew := r.result.Issued[NameCA]
	check(caCert, modePublic, caNew)
	check(caKey, modeSecret, caNew)

	dirs := []string{".", nodesDir}
	for _, n := range r.d.Nodes {
		dirs = append(dirs, path.Join(nodesDir, n.Name))
	}
	for _, d := range dirs {
		if st, err := os.Stat(filepath.Join(r.o.Dir, d)); err == nil && st.IsDir() && st.Mode().Perm() != modeDir {
			out[d] = modeDir
			shown := d + "/"
			if d == "." {
				shown = "./ (the PKI directory)"
			}
			r.result.Modes[shown] = fmt.Sprintf("%04o -> %04o", st.Mode().Perm(), modeDir)
		}
	}
	return out
}
