// Package lab builds kubesalt's lab on one machine: network namespaces on
// one bridge as the cluster's nodes, a real salt-master and one real
// salt-minion per node, and the checks that show the result (routes,
// pod-to-pod traffic, etcd, status). Everything it makes is recorded in a
// state file, so that Down removes exactly that, also after a failure.
package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
	"github.com/kubesalt/kubesalt/internal/cluster"
)

// Roles and pod CIDR modes, as the cluster definition names them.
const (
	RoleMaster     = cluster.RoleMaster
	RoleWorker     = cluster.RoleWorker
	ModePlanned    = cluster.ModePlanned
	ModeController = cluster.ModeController
	// roleCA is the CA minion's grain: beside the salt-master, no cluster node.
	roleCA = "ca"
)

// Node is one lab node.
type Node struct {
	Name string     `json:"name"`
	Role string     `json:"role"`
	IP   netip.Addr `json:"ip"`
	// VM: a libvirt guest (AddVMs), not a namespace, on Hypervisor.
	VM         bool   `json:"vm,omitempty"`
	Hypervisor string `json:"hypervisor,omitempty"`
}

// Options choose what the lab runs.
type Options struct {
	// K8S runs the real Kubernetes components the formula configures
	// (bin/k8s, `make k8s-binaries`); without it the lab stops at the
	// network: Salt, etcd, routes and namespace pods.
	K8S bool `json:"k8s"`
	// Mode is the cluster's pod CIDR mode: planned (kubesalt plans,
	// --allocate-node-cidrs=false) or controller (the controller manager
	// allocates, kubesalt discovers); controller needs K8S.
	Mode string `json:"mode"`
	// K8SVersion is the Kubernetes release the lab runs: bin/k8s/<version>
	// (`make k8s-binaries K8S_VERSION=<version>`), the formula's
	// versions:kubernetes.
	K8SVersion string `json:"k8s_version"`
	// PKIValidity and PKIRenewBefore, when set, are kubernetes:pki's
	// validity and renew_before: short lifetimes fast-forward the
	// certificates' rotation, whose schedule is then off until
	// RotationInterval is set (Rotation does).
	PKIValidity    string `json:"pki_validity,omitempty"`
	PKIRenewBefore string `json:"pki_renew_before,omitempty"`
	// RotationInterval (seconds), when set, turns kubernetes:ca:rotation on.
	RotationInterval int `json:"rotation_interval,omitempty"`
}

// DefaultK8SVersion is the release the lab runs unless told otherwise: the
// Makefile's K8S_VERSION (a test keeps the two the same).
const DefaultK8SVersion = "v1.36.3"

var releaseRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)

// Validate names a bad option and its fix.
func (o Options) Validate() error {
	switch o.Mode {
	case "", ModePlanned:
	case ModeController:
		if !o.K8S {
			return fmt.Errorf("mode controller needs Kubernetes: the controller manager allocates the CIDRs; add K8S=1 (--k8s)")
		}
	default:
		return fmt.Errorf("mode %q: use %s or %s", o.Mode, ModePlanned, ModeController)
	}
	if o.K8SVersion != "" && !releaseRE.MatchString(o.K8SVersion) {
		return fmt.Errorf("k8s version %q: give a release as v1.36.3 (bin/k8s/<version>, `make k8s-binaries K8S_VERSION=<version>`)", o.K8SVersion)
	}
	return nil
}

// Controller reports whether the controller manager allocates the pod
// CIDRs (kubesalt discovers them) rather than kubesalt's plan.
func (o Options) Controller() bool { return o.Mode == ModeController }

// State is what a lab made, kept in <dir>/state.json.
type State struct {
	ID         string          `json:"id"`         // prefix of every namespace and link
	Namespaces []string        `json:"namespaces"` // in creation order
	Pids       map[string]int  `json:"pids"`       // daemon name -> pid
	Nodes      []Node          `json:"nodes"`      // sorted by name
	HostDirs   []string        `json:"host_dirs"`  // mount points the lab had to create on the host
	Pods       map[string]bool `json:"pods"`       // pod namespaces
	Options    Options         `json:"options"`
	// Images are image tarballs added after the lab came up (make
	// conformance's), which the workers import beside the lab's own.
	Images []ExtraImage `json:"images,omitempty"`
	// Hypervisors: how many of hv-0, hv-1, ... run (AddVMs starts them).
	Hypervisors int `json:"hypervisors,omitempty"`
	path        string
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// LoadState reads the lab's state; a missing file is an empty state.
func LoadState(dir string) (*State, error) {
	s := &State{Pids: map[string]int{}, Pods: map[string]bool{}, path: statePath(dir)}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("lab state %s is corrupt (%v); remove what it made by hand (ip netns list) and delete it", s.path, err)
	}
	if s.Pids == nil {
		s.Pids = map[string]int{}
	}
	if s.Pods == nil {
		s.Pods = map[string]bool{}
	}
	return s, nil
}

// Save writes the state atomically: a crash never loses what was made.
func (s *State) Save() error {
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Name < s.Nodes[j].Name })
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(s.path, b, 0o600)
}

// ExtraImage is an image tarball the workers import (worker:images).
type ExtraImage struct {
	Ref     string `json:"ref"`
	Tarball string `json:"tarball"`
}

// Node returns the lab node called name.
func (s *State) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}
