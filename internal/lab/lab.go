package lab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/kubesalt/kubesalt/internal/topology"
)

// The lab's node network: pillar.example's, with the salt-master at .2
// and, in a Kubernetes lab, the API's VIP (keepalived on the masters) at
// pillar.example's .5.
var (
	NodeNet  = netip.MustParsePrefix("192.168.170.0/24")
	MasterIP = netip.MustParseAddr("192.168.170.2")
	VIP      = netip.MustParseAddr("192.168.170.5")
)

// Lab is one lab on this machine.
type Lab struct {
	Dir     string    // state, configs, logs (absolute)
	Repo    string    // the kubesalt checkout: salt/ is served, bin/ holds the binaries
	SaltBin string    // directory holding salt-master, salt-minion, salt, salt-run
	Out     io.Writer // progress, for people
	Phases  []Phase   // the phases run by this process, in order
	LastAdd AddTiming // the last node added: its time and the floor in it
	// cleanups run after the current command's actions, also on failure.
	cleanups []func()
	// starts records the master's events from the master's start on, so
	// that waiting for many minions asks nothing of Salt until each has
	// sent its start event (nil: every wait polls test.ping).
	starts *eventRecorder
	st     *State
}

// Phase is one step of the lab and how long it took.
type Phase struct {
	Name string
	Took time.Duration
}

// Open loads the lab kept in dir (an empty one if none).
func Open(dir, repo, saltBin string, out io.Writer) (*Lab, error) {
	var err error
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if repo, err = filepath.Abs(repo); err != nil {
		return nil, err
	}
	st, err := LoadState(dir)
	if err != nil {
		return nil, err
	}
	keepInheritedFDs()
	return &Lab{Dir: dir, Repo: repo, SaltBin: saltBin, Out: out, st: st}, nil
}

// State is what the lab has made so far.
func (l *Lab) State() *State { return l.st }

func (l *Lab) say(format string, args ...any) {
	fmt.Fprintf(l.Out, format+"\n", args...)
}

// phase runs one step with a heading and its duration; a failure names the
// phase.
func (l *Lab) phase(name string, fn func() error) error {
	start := time.Now()
	l.say("==> %s", name)
	if err := fn(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	took := time.Since(start)
	l.Phases = append(l.Phases, Phase{name, took})
	l.say("    done in %.1fs", took.Seconds())
	return nil
}

// run runs a command and returns its output; a failure carries the output.
func run(name string, args ...string) (string, error) { return topology.Run(name, args...) }

// in runs a command inside the lab namespace ns.
func (l *Lab) in(ns string, args ...string) (string, error) { return topology.In(ns, args...) }

func newID() string {
	b := make([]byte, 2)
	rand.Read(b)
	return "ksl" + hex.EncodeToString(b)
}

// Names of the lab's namespaces.
func (l *Lab) switchNS() string          { return l.st.ID + "-switch" }
func (l *Lab) masterNS() string          { return l.st.ID + "-salt" }
func (l *Lab) NodeNS(node string) string { return l.st.ID + "-" + node }

// Preflight checks what the lab needs before it makes anything.
func (l *Lab) Preflight() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the lab needs root (network namespaces, bind mounts); run it as root")
	}
	for _, tool := range []string{"ip", "unshare", "mount", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing; `make lab` installs it (iproute2, util-linux, iputils-ping)", tool)
		}
	}
	for _, b := range []string{"salt-master", "salt-minion", "salt", "salt-run"} {
		if _, err := os.Stat(filepath.Join(l.SaltBin, b)); err != nil {
			return fmt.Errorf("%s not found in %s; `make venv` installs Salt", b, l.SaltBin)
		}
	}
	for _, b := range []string{"kubesalt"} {
		if _, err := os.Stat(filepath.Join(l.Repo, "bin", b)); err != nil {
			return fmt.Errorf("bin/%s not found in %s; run `make build`", b, l.Repo)
		}
	}
	for _, name := range runtimeComponents["etcd"] {
		if _, err := os.Stat(l.builtBin(name)); err != nil {
			return fmt.Errorf("%s not found: run `make etcd` (builds etcd %s from the Go module proxy)", l.builtBin(name), EtcdVersion)
		}
	}
	if l.st.Options.K8S {
		return l.preflightK8S()
	}
	return nil
}
