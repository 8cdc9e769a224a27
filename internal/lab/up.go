package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// DefaultNodes is pillar.example's cluster: 3 masters, 3 workers.
func DefaultNodes(n int) []Node {
	var out []Node
	for i := 0; i < n; i++ {
		if i < 3 && n >= 3 || i == 0 {
			out = append(out, masterNode(i))
			continue
		}
		out = append(out, workerNode(len(out)-countRole(out, RoleMaster)))
	}
	return out
}

// SmallNodes is a lab of masters and workers as given (the tests').
func SmallNodes(masters, workers int) []Node {
	var out []Node
	for i := 0; i < masters; i++ {
		out = append(out, masterNode(i))
	}
	for i := 0; i < workers; i++ {
		out = append(out, workerNode(i))
	}
	return out
}

func masterNode(i int) Node {
	return Node{Name: fmt.Sprintf("master-%d", i), Role: RoleMaster, IP: netip.AddrFrom4([4]byte{192, 168, 170, byte(10 + i)})}
}

func workerNode(i int) Node {
	return Node{Name: fmt.Sprintf("worker-%d", i), Role: RoleWorker, IP: netip.AddrFrom4([4]byte{192, 168, 170, byte(20 + i)})}
}

func countRole(ns []Node, role string) int {
	c := 0
	for _, n := range ns {
		if n.Role == role {
			c++
		}
	}
	return c
}

// Up builds the lab's network, starts the salt-master and one minion per
// node, and waits until every minion answers (upActions).
func (l *Lab) Up(nodes []Node, opt Options) error {
	if len(l.st.Namespaces) > 0 {
		return fmt.Errorf("a lab is already up in %s (id %s); run `make lab-down` first", l.Dir, l.st.ID)
	}
	if err := opt.Validate(); err != nil {
		return err
	}
	if opt.K8SVersion == "" {
		opt.K8SVersion = DefaultK8SVersion
	}
	l.st.Options = opt
	if err := l.Preflight(); err != nil {
		return err
	}
	l.st.ID = newID()
	l.st.Nodes = nodes
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return err
	}
	if err := l.st.Save(); err != nil {
		return err
	}
	return l.runActions(l.upActions(nodes))
}

// buildNetwork makes the switch and plugs in the salt-master's namespace
// and every node's.
func (l *Lab) buildNetwork(nodes []Node) error {
	if err := l.buildSwitch(); err != nil {
		return err
	}
	if err := l.plugIn(l.masterNS(), MasterIP); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := l.plugIn(l.NodeNS(n.Name), n.IP); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// startMinions starts every node's minion, its key accepted in advance,
// and waits until they and the CA minion answer.
func (l *Lab) startMinions(nodes []Node) error {
	var names []string
	for _, n := range nodes {
		if err := l.configureMinion(n, l.minionExtra()); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if err := l.startMinion(n); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		names = append(names, n.Name)
	}
	// Many minions starting at once on a small, busy machine take long.
	limit := 3*time.Minute + time.Duration(len(nodes))*6*time.Second
	if l.starts != nil {
		defer func() { l.starts.stop(); l.starts = nil }()
		if err := l.waitStartEvents(l.starts, names, limit); err != nil {
			return err
		}
	}
	return l.waitMinions(append(names, CAMinion), limit)
}

func (l *Lab) minionExtra() map[string]any {
	return map[string]any{"kubesalt.bin_dir": filepath.Join(l.Repo, "bin")}
}

// startMaster writes the master's config and pillar and starts the master
// and the CA minion.
func (l *Lab) startMaster() error {
	conf, err := l.masterConfig()
	if err != nil {
		return err
	}
	if err := writeYAML(filepath.Join(l.masterDir(), "master"), conf); err != nil {
		return err
	}
	if err := l.writePillar(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(l.masterPKI(), "minions"), 0o700); err != nil {
		return err
	}
	if err := l.startDaemon("master", l.masterNS(), filepath.Join(l.masterDir(), "master.log"),
		filepath.Join(l.SaltBin, "salt-master"), "-c", l.masterDir()); err != nil {
		return err
	}
	if err := l.startCAMinion(); err != nil {
		return err
	}
	// The minions' start events, for startMinions: a test.ping every half
	// second while 20 minions start (a salt process each time, a job on
	// every minion up) would slow what it measures, the bootstrap's floor.
	if rec, err := l.recordEvents(); err == nil {
		l.starts = rec
		l.cleanups = append(l.cleanups, func() {
			if l.starts != nil {
				l.starts.stop()
				l.starts = nil
			}
		})
	} else {
		l.say("    the minions' start events are not recorded (test.ping is polled instead): %v", err)
	}
	return nil
}

// Down stops every daemon and removes every namespace, link and file the
// lab recorded. It is safe to run twice and after a failed Up.
func (l *Lab) Down() error {
	var firstErr error
	for i := len(l.st.Namespaces) - 1; i >= 0; i-- {
		if err := l.deleteNamespace(l.st.Namespaces[i]); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	l.removeCgroups() // the containers, which live in namespaces of their own
	if l.st.ID != "" {
		os.RemoveAll(l.linkDir())
		os.Remove(filepath.Dir(l.linkDir())) // only if no other lab is up
	}
	for i := len(l.st.HostDirs) - 1; i >= 0; i-- {
		os.Remove(l.st.HostDirs[i]) // only if still empty: never a user's files
	}
	if firstErr != nil {
		return firstErr
	}
	return os.RemoveAll(l.Dir)
}
