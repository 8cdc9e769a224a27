package pki

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/saltio"
)

// Rotation: the scheduled half of hands-off certificates. Rotate runs
// Issue (which reissues what is due) and then decides which nodes must
// get their bundle again: those whose bundle differs from the one they
// were last given. A node handed a bundle stays pending until the
// distribution reports it done (Distributed), and is handed it again
// after RetryAfter if that report never comes: a failed distribution is
// retried, a running one is not started twice.

// Files of the rotation record, in the PKI directory.
const (
	rotationFile     = "rotation.json"
	rotationLockFile = ".rotation.lock" // not .lock: Issue takes that one
)

// DefaultRetryAfter is how long a distribution may run before Rotate
// hands the same bundle out again.
const DefaultRetryAfter = time.Hour

// rotationRecord is what each node was given, by its bundle's digest.
type rotationRecord struct {
	// Distributed is the digest of the bundle each node last confirmed.
	Distributed map[string]string `json:"distributed"`
	// Dispatched are the bundles handed out and not yet confirmed.
	Dispatched map[string]dispatch `json:"dispatched,omitempty"`
}

type dispatch struct {
	Digest string    `json:"digest"`
	At     time.Time `json:"at"`
}

// RotateOptions are Issue's options and the retry window.
type RotateOptions struct {
	Options
	// RetryAfter: a node dispatched longer ago and not confirmed is
	// dispatched again (zero: DefaultRetryAfter).
	RetryAfter time.Duration
}

// RotateResult says what was issued and which nodes must take their new
// bundle now.
type RotateResult struct {
	*Result
	// Due are the nodes whose bundle differs from the one they confirmed,
	// with why; Dispatch the ones to distribute to now (masters first),
	// Waiting the ones already dispatched within the retry window.
	Due      map[string]string `json:"due"`
	Dispatch []string          `json:"dispatch"`
	Waiting  []string          `json:"waiting"`
	// Check is the directory's certificates after the run.
	Check *CheckReport `json:"check"`
}

// Rotate reissues what is due (Issue) and decides which nodes get their
// bundle again. A node the record does not know yet is taken to hold the
// bundle from before this run: the orchestration that added it delivered
// that one.
func Rotate(d *cluster.Definition, o RotateOptions) (*RotateResult, error) {
	if o.Dir == "" {
		return nil, saltio.BadInputf("no PKI directory given; pass --dir, e.g. /srv/kubesalt/pki")
	}
	if o.RetryAfter == 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if !o.Test {
		if err := ensureDir(o.Dir); err != nil {
			return nil, err
		}
		unlock, err := atomicfile.Lock(filepath.Join(o.Dir, rotationLockFile))
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	rec, err := readRotation(o.Dir)
	if err != nil {
		return nil, err
	}
	before := bundleDigests(d, o.Dir)
	res, err := Issue(d, o.Options)
	if err != nil {
		return nil, err
	}
	after := before
	if !o.Test {
		after = bundleDigests(d, o.Dir)
	}
	out := &RotateResult{Result: res, Due: map[string]string{}, Dispatch: []string{}, Waiting: []string{}}
	next := rotationRecord{Distributed: map[string]string{}, Dispatched: map[string]dispatch{}}
	for _, n := range nodesMastersFirst(d) {
		known, ok := rec.Distributed[n.Name]
		if !ok {
			known = before[n.Name]
		}
		next.Distributed[n.Name] = known
		now := after[n.Name]
		issued := issuedFor(n, res)
		if o.Test && len(issued) > 0 {
			now = "would change"
		}
		if now == known {
			continue
		}
		out.Due[n.Name] = dueReason(known, issued)
		if p, ok := rec.Dispatched[n.Name]; ok && p.Digest == now && o.Now.Sub(p.At) < o.RetryAfter {
			next.Dispatched[n.Name] = p
			out.Waiting = append(out.Waiting, n.Name)
			continue
		}
		next.Dispatched[n.Name] = dispatch{Digest: now, At: o.Now}
		out.Dispatch = append(out.Dispatch, n.Name)
	}
	if !o.Test {
		if err := writeRotation(o.Dir, &next); err != nil {
			return nil, err
		}
		out.Check, err = Check(o.Dir, renewWindow(d, o.Options), o.Now)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Distributed records that nodes have taken the bundle they were
// dispatched; it returns the nodes that had none pending.
func Distributed(dir string, nodes []string) (unknown []string, err error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, saltio.BadInputf("--dir %s: no such PKI directory; create it with `kubesalt pki issue`", dir)
	}
	unlock, err := atomicfile.Lock(filepath.Join(dir, rotationLockFile))
	if err != nil {
		return nil, err
	}
	defer unlock()
	rec, err := readRotation(dir)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		p, ok := rec.Dispatched[n]
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		rec.Distributed[n] = p.Digest
		delete(rec.Dispatched, n)
	}
	return unknown, writeRotation(dir, &rec)
}

func renewWindow(d *cluster.Definition, o Options) time.Duration {
	if o.RenewBefore != 0 {
		return o.RenewBefore
	}
	return d.PKI.RenewBefore
}

// issuedFor is what this run (re)wrote of n's bundle, by name.
func issuedFor(n cluster.Node, res *Result) []string {
	written := map[string]string{caCertFile: NameCA}
	for name := range res.Issued {
		written[certPath(name)] = name
	}
	for name := range res.Kubeconfigs {
		written[kubeconfigPath(name)] = name + " kubeconfig"
	}
	var names []string
	for _, src := range bundleFiles(n) {
		name, ok := written[src.inDir]
		_, caIssued := res.Issued[NameCA]
		if ok && (src.inDir != caCertFile || caIssued) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// dueReason says why a node's bundle changed: what this run issued for
// it, or an earlier change it has not confirmed.
func dueReason(known string, issued []string) string {
	switch {
	case len(issued) > 0:
		return "issued now: " + strings.Join(issued, ", ")
	case known == "":
		return "no bundle recorded before"
	}
	return "its bundle changed since it last took one"
}

// nodesMastersFirst is the definition's nodes, masters first, by name.
func nodesMastersFirst(d *cluster.Definition) []cluster.Node {
	ns := append([]cluster.Node{}, d.Nodes...)
	sort.SliceStable(ns, func(i, j int) bool {
		mi, mj := ns[i].Role == cluster.RoleMaster, ns[j].Role == cluster.RoleMaster
		if mi != mj {
			return mi
		}
		return ns[i].Name < ns[j].Name
	})
	return ns
}

// bundleDigests is the digest of each node's bundle as the directory
// holds it now ("" when none of its files exist).
func bundleDigests(d *cluster.Definition, dir string) map[string]string {
	out := map[string]string{}
	for _, n := range d.Nodes {
		h := sha256.New()
		any := false
		for _, src := range bundleFiles(n) {
			data, err := os.ReadFile(filepath.Join(dir, src.inDir))
			if err == nil {
				any = true
			}
			fmt.Fprintf(h, "%s %d\n", src.onNode, len(data))
			h.Write(data)
		}
		if any {
			out[n.Name] = hex.EncodeToString(h.Sum(nil))[:16]
		}
	}
	return out
}

func readRotation(dir string) (rotationRecord, error) {
	rec := rotationRecord{Distributed: map[string]string{}, Dispatched: map[string]dispatch{}}
	data, err := os.ReadFile(filepath.Join(dir, rotationFile))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, &StateError{Dir: dir, Problems: []string{fmt.Sprintf("%s: %v; remove it (every node is then taken to hold its current bundle)", rotationFile, err)}}
	}
	if rec.Distributed == nil {
		rec.Distributed = map[string]string{}
	}
	if rec.Dispatched == nil {
		rec.Dispatched = map[string]dispatch{}
	}
	return rec, nil
}

func writeRotation(dir string, rec *rotationRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, rotationFile), append(data, '\n'), modeSecret)
}
