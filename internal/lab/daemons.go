package lab

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The supervision check: a daemon killed with SIGKILL comes back by itself
// (the formula's process manager runs it under `kubesalt supervise`),
// without a highstate, and answers its health check again.

// supervisedGoal is the longest a killed daemon may take to be healthy again.
const supervisedGoal = 10 * time.Second

// killAndTime kills daemon on node with SIGKILL and returns how long it
// took until a new one runs and healthy passes.
func (l *Lab) killAndTime(node, daemon string, healthy func() error, limit time.Duration) (time.Duration, error) {
	old, err := l.processIn(node, daemon)
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("kill -9 %s (%d) on %s: %v", daemon, old, node, err)
	}
	start := time.Now()
	err = poll(limit, 100*time.Millisecond, func() (string, error) {
		pid, err := l.processIn(node, daemon)
		if err != nil || pid == old {
			return fmt.Sprintf("%s not running again (%v)", daemon, err), nil
		}
		if err := healthy(); err != nil {
			return fmt.Sprintf("%s pid %d not healthy: %v", daemon, pid, err), nil
		}
		return "", nil
	})
	return time.Since(start), err
}

// CheckSupervised kills with SIGKILL a worker's kubelet, a master's
// kube-apiserver and another master's etcd, one after the other, and
// times each until it is healthy again: the kubelet's /healthz, the API
// server's /readyz, etcd's endpoint health. Each must be back within
// supervisedGoal.
func (l *Lab) CheckSupervised() error {
	masters, workers := l.withRole(RoleMaster), l.workers()
	if len(workers) == 0 {
		return fmt.Errorf("no worker to kill a kubelet on")
	}
	apiMaster, etcdMaster := masters[len(masters)-1], masters[0]
	if len(masters) > 1 {
		etcdMaster = masters[len(masters)-2]
	}
	w := workers[0]
	checks := []struct {
		node    Node
		daemon  string
		healthy func() error
	}{
		{w, "kubelet", func() error {
			out, err := l.in(l.NodeNS(w.Name), "curl", "-sf", "--max-time", "1", "http://127.0.0.1:10248/healthz")
			if err != nil || strings.TrimSpace(out) != "ok" {
				return fmt.Errorf("/healthz: %v %s", err, out)
			}
			return nil
		}},
		{apiMaster, "kube-apiserver", func() error {
			out, err := l.kubectl("--server", fmt.Sprintf("https://%s:6443", apiMaster.IP), "--request-timeout", "2s", "get", "--raw", "/readyz")
			if err != nil || strings.TrimSpace(out) != "ok" {
				return fmt.Errorf("/readyz: %v %s", err, lastLine(out))
			}
			return nil
		}},
		{etcdMaster, "etcd", func() error {
			pki := filepath.Join(l.nodeDir(etcdMaster.Name), "root/etc/kubernetes/pki")
			out, err := l.in(l.NodeNS(etcdMaster.Name), l.builtBin("etcdctl"), "--endpoints", fmt.Sprintf("https://%s:2379", etcdMaster.IP),
				"--cacert", filepath.Join(pki, "ca.pem"), "--cert", filepath.Join(pki, "kube-apiserver-etcd-client.pem"),
				"--key", filepath.Join(pki, "kube-apiserver-etcd-client-key.pem"), "--dial-timeout", "1s", "endpoint", "health")
			if err != nil {
				return fmt.Errorf("endpoint health: %v %s", err, lastLine(out))
			}
			return nil
		}},
	}
	var problems []string
	for _, c := range checks {
		took, err := l.killAndTime(c.node.Name, c.daemon, c.healthy, 60*time.Second)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s on %s: %v", c.daemon, c.node.Name, err))
		case took > supervisedGoal:
			problems = append(problems, fmt.Sprintf("%s on %s back after %.1fs, over the %s goal", c.daemon, c.node.Name, took.Seconds(), supervisedGoal))
		}
		l.say("    kill -9 %-15s on %-9s healthy again after %.1fs", c.daemon, c.node.Name, took.Seconds())
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s (logs: %s/nodes/<node>/root/var/log/kubernetes)", strings.Join(problems, "; "), l.Dir)
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
