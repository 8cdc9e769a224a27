package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubesalt/kubesalt/internal/nodes"
)

// The Kubernetes part of the lab (Options.K8S): the components the formula
// runs, the images the workers import, and the checks made through the API.

// K8SComponents are the binaries `make k8s-binaries` builds into
// bin/k8s/<version>.
var K8SComponents = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"}

// debianBinaries are the API load balancing's (haproxy, keepalived), from
// Debian's packages, by the name the formula installs them under. The
// container runtime (containerd, runc) is built (mk/runtime.mk): Debian's is
// older than what Kubernetes v1.36 supports.
var debianBinaries = map[string][]string{
	"haproxy":    {"/usr/sbin/haproxy"},
	"keepalived": {"/usr/sbin/keepalived"},
}

// k8sVersion is the Kubernetes release this lab runs.
func (l *Lab) k8sVersion() string {
	if v := l.st.Options.K8SVersion; v != "" {
		return v
	}
	return DefaultK8SVersion
}

// k8sBin is a Kubernetes binary of the lab's release.
func (l *Lab) k8sBin(name string) string { return K8SBin(l.Repo, l.k8sVersion(), name) }

// K8SBin is where `make k8s-binaries K8S_VERSION=<version>` puts a
// component: one directory per release.
func K8SBin(repo, version, name string) string {
	return filepath.Join(repo, "bin/k8s", version, name)
}

// corednsBin is the CoreDNS binary `make coredns` builds.
func (l *Lab) corednsBin() string { return filepath.Join(l.Repo, "bin/k8s/coredns") }

// preflightK8S checks the binaries the Kubernetes lab needs.
func (l *Lab) preflightK8S() error {
	if err := CheckK8SBinaries(l.Repo, l.k8sVersion()); err != nil {
		return err
	}
	for _, c := range []string{"containerd", "runc"} {
		for _, name := range runtimeComponents[c] {
			if _, err := os.Stat(l.builtBin(name)); err != nil {
				return fmt.Errorf("%s not found: run `make %s` (builds %s %s from the Go module proxy)", l.builtBin(name), c, c, l.versions()[c])
			}
		}
	}
	for name, candidates := range debianBinaries {
		if firstExisting(candidates) == "" {
			return fmt.Errorf("%s not found (%s): `make lab K8S=1` installs Debian's haproxy and keepalived", name, strings.Join(candidates, ", "))
		}
	}
	if _, err := os.Stat(l.corednsBin()); err != nil {
		return fmt.Errorf("bin/k8s/coredns not found (the cluster DNS image is made of it): run `make coredns` (builds CoreDNS from the Go module proxy)")
	}
	if _, err := os.Stat(filepath.Join(l.Repo, "bin/kubesalt-pod")); err != nil {
		return fmt.Errorf("bin/kubesalt-pod not found (the pause and test images are made of it): run `make build`")
	}
	return nil
}

// CheckK8SBinaries says which component of a release is not built, and
// the command that builds it.
func CheckK8SBinaries(repo, version string) error {
	for _, c := range K8SComponents {
		if _, err := os.Stat(K8SBin(repo, version, c)); err != nil {
			return fmt.Errorf("bin/k8s/%s/%s not found: run `make k8s-binaries K8S_VERSION=%s` (builds Kubernetes %s from the Go module proxy)", version, c, version, version)
		}
	}
	return nil
}

func firstExisting(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// stageK8S adds what the workers and masters run to the formula's local
// binaries: the Kubernetes components, containerd and runc, and the image
// tarballs.
func (l *Lab) stageK8S() error {
	bins := l.binariesDir()
	if err := os.MkdirAll(bins, 0o755); err != nil {
		return err
	}
	if err := l.StageK8S(l.k8sVersion()); err != nil {
		return err
	}
	for _, c := range []string{"containerd", "runc"} {
		if err := l.stageRuntime(c); err != nil {
			return err
		}
	}
	for name, candidates := range debianBinaries {
		if err := copyFile(firstExisting(candidates), l.localBin(name), 0o755); err != nil {
			return err
		}
	}
	return l.buildImages()
}

// StageK8S puts a Kubernetes release's binaries where the formula's local
// mode takes them from when versions:kubernetes names it
// (<local_dir>/kubernetes/<version>/): several releases can be staged side
// by side, and the pillar picks one.
func (l *Lab) StageK8S(version string) error {
	if err := CheckK8SBinaries(l.Repo, version); err != nil {
		return err
	}
	dir := filepath.Join(l.binariesDir(), "kubernetes", version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range K8SComponents {
		if err := copyFile(K8SBin(l.Repo, version, c), filepath.Join(dir, c), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// k8sPillar is what the Kubernetes lab adds to the cluster definition.
func (l *Lab) k8sPillar() map[string]any {
	var images []any
	for _, img := range l.images() {
		images = append(images, map[string]any{"ref": img.Ref, "tarball": img.tarball})
	}
	for _, img := range l.st.Images {
		images = append(images, map[string]any{"ref": img.Ref, "tarball": img.Tarball})
	}
	kubelet := map[string]any{
		// Every kubelet shares the host's cgroup tree: each gets its own
		// root, named by the lab's id, which Down removes.
		"cgroup_root": "/" + l.st.ID + "/{node}",
	}
	config := map[string]any{
		// Every kubelet sees the host's one disk, which the lab does not
		// own: its free share is no node's pressure (kind does the same).
		"evictionHard": map[string]any{"nodefs.available": "0%", "nodefs.inodesFree": "0%", "imagefs.available": "0%"},
	}
	if !cgroupV2() {
		// From v1.35 the kubelet refuses a cgroup v1 host unless told
		// otherwise (failCgroupV1 defaults to true); this host is one.
		config["failCgroupV1"] = false
	}
	kubelet["config"] = config
	return map[string]any{
		"images":  images,
		"kubelet": kubelet,
		// The sandbox this lab runs in has no CAP_SYS_RESOURCE: runc may not
		// lower a container's oom_score_adj (the pod sandbox's -998).
		"containerd": map[string]any{"restrict_oom_score_adj": true},
		// conntrack's table size is the host's (init namespace's) to set.
		"kube_proxy": map[string]any{"config": map[string]any{"conntrack": map[string]any{"maxPerCore": 0, "min": 0}}},
	}
}

// cgroupV2 reports whether the host runs the unified cgroup hierarchy only.
func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// kubectl runs bin/k8s/<version>/kubectl as the cluster's admin, from the salt-master's
// namespace, through the VIP (the admin kubeconfig's server).
func (l *Lab) kubectl(args ...string) (string, error) {
	return l.kubectlWithin(20*time.Second, args...)
}

// kubectlWithin is kubectl giving up after limit: the failover's watchers
// poll with short requests, so one stuck on a frozen API server does not
// hide the moment the API answers again.
func (l *Lab) kubectlWithin(limit time.Duration, args ...string) (string, error) {
	argv := append([]string{l.k8sBin("kubectl"), "--kubeconfig", filepath.Join(l.PKIDir(), "admin.kubeconfig"), "--request-timeout", limit.String()}, args...)
	return l.in(l.masterNS(), argv...)
}

// kubeNode is what the checks read of a Node.
type kubeNode struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR  string   `json:"podCIDR"`
		PodCIDRs []string `json:"podCIDRs"`
	} `json:"spec"`
	Status struct {
		Conditions []struct {
			Type, Status, Message string
		} `json:"conditions"`
	} `json:"status"`
}

func (n kubeNode) ready() (bool, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True", c.Message
		}
	}
	return false, "no Ready condition yet"
}

// KubeNodes returns the API's nodes by name.
func (l *Lab) KubeNodes() (map[string]kubeNode, error) { return l.kubeNodesWithin(20 * time.Second) }

func (l *Lab) kubeNodesWithin(limit time.Duration) (map[string]kubeNode, error) {
	out, err := l.kubectlWithin(limit, "get", "nodes", "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct{ Items []kubeNode }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("kubectl get nodes: %v", err)
	}
	nodes := map[string]kubeNode{}
	for _, n := range list.Items {
		nodes[n.Metadata.Name] = n
	}
	return nodes, nil
}

// podCIDRs is each node's pod CIDR as the cluster uses it: kubesalt's plan
// (planned mode) or the controller manager's allocation (controller mode).
func (l *Lab) podCIDRs() (map[string][]netip.Prefix, error) {
	if !l.st.Options.Controller() {
		return l.Plan()
	}
	out, err := l.kubectl("get", "nodes", "-o", "json")
	if err != nil {
		return nil, err
	}
	found, _, err := nodes.Parse([]byte(out))
	if err != nil {
		return nil, err
	}
	cidrs := map[string][]netip.Prefix{}
	for _, n := range found {
		cidrs[n.Name] = n.PodCIDRs
	}
	return cidrs, nil
}

// CheckControlPlane asks every master's API server for /readyz and the
// API for who holds the controller manager's and the scheduler's leader
// leases; it prints both.
func (l *Lab) CheckControlPlane() error {
	var problems []string
	for _, n := range l.withRole(RoleMaster) {
		out, err := l.kubectl("--server", fmt.Sprintf("https://%s:6443", n.IP), "get", "--raw", "/readyz")
		l.say("    kube-apiserver on %-10s /readyz: %s", n.Name, strings.TrimSpace(out))
		if err != nil || strings.TrimSpace(out) != "ok" {
			problems = append(problems, fmt.Sprintf("the API server on %s is not ready: %s", n.Name, strings.TrimSpace(out)))
		}
	}
	for _, lease := range []string{"kube-controller-manager", "kube-scheduler"} {
		holder, err := l.kubectl("-n", "kube-system", "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}")
		l.say("    %-24s leader: %s", lease, strings.TrimSpace(holder))
		if err != nil || strings.TrimSpace(holder) == "" {
			problems = append(problems, lease+" has no leader")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// discover writes what `kubesalt nodes discover` makes of the API's
// nodes (controller mode's pod CIDRs) to a file and returns its path.
func (l *Lab) discover() (string, error) {
	out, err := l.kubectl("get", "nodes", "-o", "json")
	if err != nil {
		return "", err
	}
	raw, found := filepath.Join(l.Dir, "nodes.json"), filepath.Join(l.Dir, "discovered.json")
	if err := os.WriteFile(raw, []byte(out), 0o600); err != nil {
		return "", err
	}
	res, err := exec.Command(filepath.Join(l.Repo, "bin/kubesalt"), "nodes", "discover", "--file", raw).Output()
	if err != nil {
		return "", fmt.Errorf("kubesalt nodes discover: %v: %s", err, res)
	}
	return found, os.WriteFile(found, res, 0o600)
}

// WaitNodesReady waits until every worker is a Ready node whose
// spec.podCIDRs is its CIDR: the plan's in planned mode, any in controller
// mode. It prints the nodes.
func (l *Lab) WaitNodesReady(limit time.Duration) error {
	plan, err := l.Plan()
	if err != nil && !l.st.Options.Controller() {
		return err
	}
	var nodes map[string]kubeNode
	err = poll(limit, 2*time.Second, func() (string, error) {
		var problems []string
		var kerr error
		if nodes, kerr = l.KubeNodes(); kerr != nil {
			problems = append(problems, kerr.Error())
		}
		for _, w := range l.workers() {
			n, ok := nodes[w.Name]
			if !ok {
				problems = append(problems, w.Name+" has not registered")
				continue
			}
			if ok, msg := n.ready(); !ok {
				problems = append(problems, fmt.Sprintf("%s is not Ready: %s", w.Name, msg))
			}
			switch want := prefixStrings(plan[w.Name]); {
			case len(n.Spec.PodCIDRs) == 0:
				problems = append(problems, w.Name+" has no spec.podCIDRs")
			case !l.st.Options.Controller() && strings.Join(n.Spec.PodCIDRs, ",") != strings.Join(want, ","):
				problems = append(problems, fmt.Sprintf("%s has spec.podCIDRs %v, the plan says %v", w.Name, n.Spec.PodCIDRs, want))
			}
		}
		return strings.Join(problems, "; "), nil
	})
	for _, w := range l.workers() {
		n := nodes[w.Name]
		ready, _ := n.ready()
		l.say("    node %-10s Ready=%-5v spec.podCIDR %-16s plan %v", w.Name, ready, n.Spec.PodCIDR, plan[w.Name])
	}
	if err != nil {
		return fmt.Errorf("%w (logs: %s/nodes/<node>/root/var/log/kubernetes)", err, l.Dir)
	}
	return nil
}

func prefixStrings(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func (l *Lab) workers() []Node { return l.withRole(RoleWorker) }

// withRole lists the lab's nodes with role, by name.
func (l *Lab) withRole(role string) []Node {
	var out []Node
	for _, n := range l.st.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// Down's part: the processes in the kubelets' cgroups (the containers) and
// the cgroups themselves, every one under the lab's id.
func (l *Lab) removeCgroups() {
	if l.st.ID == "" {
		return
	}
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + l.st.ID)
	if _, err := os.Stat("/sys/fs/cgroup/" + l.st.ID); err == nil {
		roots = append(roots, "/sys/fs/cgroup/"+l.st.ID)
	}
	// Killed processes leave their cgroups a moment later.
	poll(5*time.Second, 100*time.Millisecond, func() (string, error) {
		var left []string
		for _, root := range roots {
			var dirs []string
			filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for _, d := range dirs {
				procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
				for _, f := range strings.Fields(string(procs)) {
					if pid, err := strconv.Atoi(f); err == nil {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // children first
			for _, d := range dirs {
				os.Remove(d)
			}
			if _, err := os.Stat(root); err == nil {
				left = append(left, root)
			}
		}
		roots = left
		return strings.Join(left, ", "), nil
	})
}
