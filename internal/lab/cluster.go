package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kubesalt/kubesalt/internal/cluster"
	"github.com/kubesalt/kubesalt/internal/routes"
)

// CAMinion is the minion beside the salt-master that holds the CA (the
// formula's kubernetes:ca:minion).
const CAMinion = "salt"

// Paths on the master side, under the lab's directory.
func (l *Lab) varLib() string      { return filepath.Join(l.masterDir(), "var/lib/kubesalt") }
func (l *Lab) PlanFile() string    { return filepath.Join(l.varLib(), "plan.json") }
func (l *Lab) PKIDir() string      { return filepath.Join(l.varLib(), "pki") }
func (l *Lab) StatusDB() string    { return filepath.Join(l.varLib(), "status.db") }
func (l *Lab) binariesDir() string { return filepath.Join(l.Dir, "binaries") }

// The etcd, containerd and runc releases the lab runs: the Makefile's
// ETCD_VERSION, CONTAINERD_VERSION and RUNC_VERSION (mk/runtime.mk builds
// them into bin/<component>/<version>/; a test keeps them the same).
const (
	EtcdVersion       = "v3.6.16"
	ContainerdVersion = "2.2.9"
	RuncVersion       = "v1.4.4"
)

// runtimeComponents are the binaries mk/runtime.mk builds, by component.
var runtimeComponents = map[string][]string{
	"etcd":       {"etcd", "etcdctl", "etcdutl"},
	"containerd": {"containerd", "containerd-shim-runc-v2", "ctr"},
	"runc":       {"runc"},
}

// versions is the formula's versions: for the binaries the lab stages:
// the local directory of each is <component>/<version>/.
func (l *Lab) versions() map[string]string {
	return map[string]string{
		"kubernetes": l.k8sVersion(),
		"etcd":       EtcdVersion,
		"containerd": ContainerdVersion,
		"runc":       RuncVersion,
	}
}

// builtBin is a binary mk/runtime.mk built (etcd, containerd, runc).
func (l *Lab) builtBin(name string) string {
	c := componentOf(name)
	return filepath.Join(l.Repo, "bin", c, l.versions()[c], name)
}

// stageRuntime copies a component's built binaries to where the formula
// takes them from, or says which make target builds them.
func (l *Lab) stageRuntime(component string) error {
	for _, name := range runtimeComponents[component] {
		if err := copyFile(l.builtBin(name), l.localBin(name), 0o755); err != nil {
			return fmt.Errorf("%w: run `make %s` (builds %s %s from the Go module proxy)", err, component, component, l.versions()[component])
		}
	}
	return nil
}

// componentOf is the versions: key a binary belongs to, as the formula's
// map.jinja reads it ("" for kubesalt, haproxy, keepalived).
func componentOf(name string) string {
	switch {
	case strings.HasPrefix(name, "kube") && name != "kubesalt":
		return "kubernetes"
	case strings.HasPrefix(name, "etcd"):
		return "etcd"
	case strings.HasPrefix(name, "containerd"), name == "ctr":
		return "containerd"
	case name == "runc":
		return "runc"
	}
	return ""
}

// localBin is where the formula's local mode takes a binary from.
func (l *Lab) localBin(name string) string {
	if c := componentOf(name); c != "" {
		return filepath.Join(l.binariesDir(), c, l.versions()[c], name)
	}
	return filepath.Join(l.binariesDir(), name)
}

func (l *Lab) distDir() string { return filepath.Join(l.Dir, "dist") }

// masterConfig is the formula's salt/master.d/kubesalt.conf, as the README
// tells users to install it, with its paths moved into the lab.
func (l *Lab) masterConfig() (map[string]any, error) {
	raw, err := os.ReadFile(filepath.Join(l.Repo, "salt/master.d/kubesalt.conf"))
	if err != nil {
		return nil, fmt.Errorf("the formula's master config: %w", err)
	}
	text := strings.NewReplacer(
		"/srv/kubesalt/salt", filepath.Join(l.Repo, "salt"),
		"/srv/kubesalt/dist", l.distDir(),
		"/var/lib/kubesalt", l.varLib(),
		"/usr/local/bin", filepath.Join(l.Repo, "bin"),
	).Replace(string(raw))
	conf := map[string]any{}
	if err := yaml.Unmarshal([]byte(text), &conf); err != nil {
		return nil, fmt.Errorf("the formula's master config: %w", err)
	}
	root, err := l.saltRoot("master", l.masterDir())
	if err != nil {
		return nil, err
	}
	conf["root_dir"] = root
	// Many minions on a small machine answer slowly while they start:
	// wait for jobs longer than Salt's defaults (5 and 10 s).
	conf["timeout"] = 60
	conf["gather_job_timeout"] = 60
	conf["interface"] = MasterIP.String()
	conf["user"] = "root"
	conf["pillar_roots"] = map[string]any{"base": []string{filepath.Join(l.Dir, "pillar")}}
	// The binaries the lab's VMs install (salt://kubesalt-binaries/).
	if roots, ok := conf["file_roots"].(map[string]any); ok {
		if base, ok := roots["base"].([]any); ok {
			roots["base"] = append(base, l.fileServerDir())
		}
	}
	return conf, nil
}

// stageBinaries gathers what the formula installs from its local source:
// kubesalt through the Salt file server, etcd from Debian's packages, the
// CNI plugins. A K8S lab adds more (stageK8S).
func (l *Lab) stageBinaries() error {
	dist := filepath.Join(l.distDir(), "kubesalt-dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(l.Repo, "bin/kubesalt"), filepath.Join(dist, "kubesalt"), 0o755); err != nil {
		return err
	}
	bins := l.binariesDir()
	if err := os.MkdirAll(filepath.Join(bins, "cni"), 0o755); err != nil {
		return err
	}
	// kubesalt also into the local directory: binaries:source local installs
	// it from there onto each node, where the process manager runs every
	// daemon under `kubesalt supervise`.
	if err := copyFile(filepath.Join(l.Repo, "bin/kubesalt"), filepath.Join(bins, "kubesalt"), 0o755); err != nil {
		return err
	}
	if err := l.stageRuntime("etcd"); err != nil {
		return err
	}
	for _, dir := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			copyFile(filepath.Join(dir, e.Name()), filepath.Join(bins, "cni", e.Name()), 0o755)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// writePillar writes the cluster definition for the lab's nodes, with the
// formula's lab profile: binaries from the local directory, daemons run by
// the formula itself (no systemd), the CA on the master's own minion.
func (l *Lab) writePillar() error {
	nodes := map[string]any{}
	for _, n := range l.st.Nodes {
		nodes[n.Name] = map[string]any{"role": n.Role, "ip": n.IP.String()}
		switch {
		case n.Hypervisor != "":
			nodes[n.Name].(map[string]any)["hypervisor"] = n.Hypervisor
		case l.st.Hypervisors > 0:
			// A namespace node: no VM for the hypervisors to make.
			nodes[n.Name].(map[string]any)["hypervisor"] = cluster.NoHypervisor
		}
	}
	dir := filepath.Join(l.Dir, "pillar")
	top := map[string]any{"*": []string{"kubernetes"}}
	k := map[string]any{
		"cluster_name": "kubesalt-lab",
		"network": map[string]any{
			"node_cidr":    NodeNet.String(),
			"cluster_cidr": "10.200.0.0/16",
			"service_cidr": "10.32.0.0/24",
			"cluster_dns":  "10.32.0.10",
		},
		"nodes":    nodes,
		"binaries": map[string]any{"source": "local", "local_dir": l.binariesDir()},
		"versions": l.versions(),
		"services": map[string]any{"manager": "process"},
		"ca":       map[string]any{"minion": CAMinion, "dir": l.PKIDir()},
	}
	if l.st.Options.K8S {
		k["worker"] = l.k8sPillar()
		k["api"] = map[string]any{"vip": VIP.String()}
		// The lab's switch reaches nothing outside (net.go): its nodes have
		// no resolver to forward to, so CoreDNS answers the cluster's names
		// only.
		k["dns"] = map[string]any{"forward": []any{}}
	}
	if o := l.st.Options; o.PKIValidity != "" {
		k["pki"] = map[string]any{"validity": o.PKIValidity, "renew_before": o.PKIRenewBefore}
		k["ca"].(map[string]any)["rotation"] = map[string]any{"enabled": false}
	}
	if o := l.st.Options; o.RotationInterval > 0 {
		k["ca"].(map[string]any)["rotation"] = map[string]any{"enabled": true, "interval": o.RotationInterval, "retry_after": "10m"}
	}
	if l.st.Options.Controller() {
		k["mode"] = ModeController
		// The masters report the API's nodes through the mine (pillar.example).
		top["kubernetes:role:master"] = []any{map[string]any{"match": "grain"}, "mine"}
		if err := writeYAML(filepath.Join(dir, "mine.sls"), map[string]any{"mine_functions": map[string]any{
			"kubesalt_nodes": []any{
				map[string]any{"mine_function": "kubesalt_net.discover"},
				map[string]any{"kubeconfig": "/etc/kubernetes/pki/admin.kubeconfig"},
				map[string]any{"kubectl": "/usr/local/bin/kubectl"},
			},
		}}); err != nil {
			return err
		}
	}
	if l.st.Hypervisors > 0 {
		k["libvirt"] = l.libvirtPillar()
		var hvs []string
		for i := 0; i < l.st.Hypervisors; i++ {
			hvs = append(hvs, hypervisorName(i))
		}
		top[strings.Join(hvs, ",")] = []any{map[string]any{"match": "list"}, "hypervisor"}
		if err := writeYAML(filepath.Join(dir, "hypervisor.sls"), l.hypervisorPillar()); err != nil {
			return err
		}
	}
	if vms := l.vmNames(); len(vms) > 0 {
		top[strings.Join(vms, ",")] = []any{map[string]any{"match": "list"}, "vm"}
		if err := writeYAML(filepath.Join(dir, "vm.sls"), vmPillar()); err != nil {
			return err
		}
	}
	if err := writeYAML(filepath.Join(dir, "top.sls"), map[string]any{"base": top}); err != nil {
		return err
	}
	return writeYAML(filepath.Join(dir, "kubernetes.sls"), map[string]any{"kubernetes": k})
}

// startCAMinion starts the minion beside the master, in its namespace and
// with its filesystem: it issues the PKI into the master's directory.
func (l *Lab) startCAMinion() error {
	n := Node{Name: CAMinion, Role: roleCA, IP: MasterIP}
	if err := l.configureMinion(n, l.minionExtra()); err != nil {
		return err
	}
	return l.startDaemon("minion/"+CAMinion, l.masterNS(), filepath.Join(l.nodeDir(CAMinion), "minion.log"),
		filepath.Join(l.SaltBin, "salt-minion"), "-c", l.minionConf(CAMinion))
}

// applyAll runs `salt '*' state.apply kubernetes` and returns the number of
// states that changed, per minion; a failed state is an error naming the
// node and the state.
func (l *Lab) applyAll() (map[string]int, error) {
	// queue=True: the minion-start reactor's add_node may still be running
	// a node's highstate; wait for it instead of failing.
	res, out, err := l.Salt(15*time.Minute, "*", "state.apply", "kubernetes", "queue=True")
	runs := parseStateRuns(res)
	changed, problems := checkRuns(runs, append(l.nodeNames(), CAMinion))
	if len(problems) > 0 {
		return changed, fmt.Errorf("state.apply kubernetes failed:\n  %s", strings.Join(problems, "\n  "))
	}
	if err != nil && len(runs) == 0 {
		return changed, fmt.Errorf("%v\n%s", err, out)
	}
	return changed, nil
}

func (l *Lab) nodeNames() []string {
	var out []string
	for _, n := range l.st.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// orchestrate runs an orchestration and fails with what failed in it.
func (l *Lab) orchestrate(mods string, pillar map[string]any) error {
	args := []string{"state.orchestrate", mods}
	if pillar != nil {
		b, _ := json.Marshal(pillar)
		args = append(args, "pillar="+string(b))
	}
	out, err := l.SaltRun(args...)
	// Its whole output, for what the summary below leaves out.
	saved := filepath.Join(l.masterDir(), "orchestrate-"+mods+".json")
	os.WriteFile(saved, []byte(out), 0o600)
	if failures := failedStates(out); len(failures) > 0 {
		return fmt.Errorf("salt-run state.orchestrate %s failed (its output: %s):\n  %s\n%s", mods, saved, strings.Join(failures, "\n  "), l.masterView())
	}
	if err != nil {
		return fmt.Errorf("salt-run state.orchestrate %s: %v", mods, err)
	}
	return nil
}

// masterView is what the master knew when an orchestration failed: the
// role each minion's cached pillar gives it (what pillar targets match) and
// the errors of the master's log (the ext_pillar logs its failures there).
func (l *Lab) masterView() string {
	var b strings.Builder
	b.WriteString("  the master's cached pillar, kubesalt:role by minion (what I@ targets match):\n")
	out, _ := l.SaltRun("cache.pillar", "*")
	cached := map[string]struct {
		Kubesalt struct{ Role string } `json:"kubesalt"`
	}{}
	json.Unmarshal([]byte(out), &cached)
	for _, name := range append(l.nodeNames(), CAMinion) {
		p, ok := cached[name]
		switch {
		case !ok:
			fmt.Fprintf(&b, "    %s: no cached pillar\n", name)
		case p.Kubesalt.Role == "":
			fmt.Fprintf(&b, "    %s: no kubesalt:role\n", name)
		default:
			fmt.Fprintf(&b, "    %s: %s\n", name, p.Kubesalt.Role)
		}
	}
	log, _ := os.ReadFile(filepath.Join(l.masterDir(), "master.log"))
	var errs []string
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "[ERROR") || strings.Contains(line, "[CRITICAL") {
			errs = append(errs, "    "+line)
		}
	}
	if len(errs) > 20 {
		errs = errs[len(errs)-20:]
	}
	fmt.Fprintf(&b, "  the master log's last errors (%d):\n%s", len(errs), strings.Join(errs, "\n"))
	return b.String()
}

// Plan reads the pod CIDR plan the ext_pillar keeps on the master.
func (l *Lab) Plan() (map[string][]netip.Prefix, error) {
	b, err := os.ReadFile(l.PlanFile())
	if err != nil {
		return nil, err
	}
	var p struct {
		Nodes map[string][]netip.Prefix `json:"nodes"`
	}
	return p.Nodes, json.Unmarshal(b, &p)
}

// Routes returns node's routes owned by kubesalt, as `ip route` shows them.
// It asks by protocol number, the one the formula's `kubesalt routes sync`
// owns: the name "kubesalt" resolves only where something registered it,
// and the lab reads from the host's /etc, where nothing did.
func (l *Lab) Routes(node string) string {
	if n, _ := l.st.Node(node); n.VM {
		out, _ := l.inVM(node, "ip route show proto "+routeProto)
		return out
	}
	out, _ := l.in(l.NodeNS(node), "ip", "route", "show", "proto", routeProto)
	return strings.TrimSpace(out)
}

// routeProto is the route protocol kubesalt owns, as `ip route` takes it.
var routeProto = strconv.Itoa(routes.DefaultProtocol)

// EtcdHealth asks every master's etcd over TLS with the API server's etcd
// client certificate that kubesalt issued.
func (l *Lab) EtcdHealth() (string, error) {
	var masters []string
	for _, n := range l.withRole(RoleMaster) {
		masters = append(masters, n.Name)
	}
	return l.etcdctl(l.firstMaster(), masters, "endpoint", "health")
}

// Status runs `kubesalt status show` on the returner's store, waiting up
// to limit for every node to show converged routes (the returner records a
// job a moment after the routes are in place). It returns the table.
func (l *Lab) Status(limit time.Duration) (string, error) {
	args := []string{"status", "show", "--db", l.StatusDB(),
		"--definition", filepath.Join(l.Dir, "pillar/kubernetes.sls"), "--plan", l.PlanFile()}
	if l.st.Options.Controller() {
		discovered, err := l.discover()
		if err != nil {
			return "", err
		}
		args = append(args, "--discovered", discovered)
	}
	show := func(output string) ([]byte, error) {
		return exec.Command(filepath.Join(l.Repo, "bin/kubesalt"), append(args, "--output", output)...).CombinedOutput()
	}
	var pending []string
	err := poll(limit, time.Second, func() (string, error) {
		out, err := show("json")
		if err != nil {
			return "", fmt.Errorf("%v: %s", err, out)
		}
		var res struct {
			Data struct {
				Nodes []struct {
					Name   string `json:"name"`
					Routes struct {
						Converged bool `json:"converged"`
					} `json:"routes"`
				} `json:"nodes"`
			} `json:"data"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			return "", fmt.Errorf("%v: %s", err, out)
		}
		pending = nil
		for _, n := range res.Data.Nodes {
			if _, ok := l.st.Node(n.Name); ok && !n.Routes.Converged {
				pending = append(pending, n.Name)
			}
		}
		return strings.Join(pending, ", "), nil
	})
	if err != nil && !timedOut(err) {
		return "", err
	}
	table, err := show("table")
	if err == nil && len(pending) > 0 {
		err = fmt.Errorf("the status store does not show %s converged", strings.Join(pending, ", "))
	}
	return strings.TrimSpace(string(table)), err
}

// PlannerCounts reads the ext_pillar's count of its planner's runs and of
// the plans it served from its cache (saltext pillar/kubesalt.py).
func (l *Lab) PlannerCounts() (runs, served int) {
	var c struct{ Runs, Served int }
	if b, err := os.ReadFile(l.PlanFile() + ".planner.json"); err == nil {
		json.Unmarshal(b, &c)
	}
	return c.Runs, c.Served
}
