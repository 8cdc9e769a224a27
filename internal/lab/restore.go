package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The restore proof: objects made, a snapshot taken by the masters' own
// backup schedule and pushed to the Salt master, etcd's data destroyed on
// every master, orch.kubernetes.etcd_restore, and the objects back with
// the smoke test passing.

const restoreName = "kubesalt-restore"

func restoreManifest() string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: %[1]s, namespace: default}
data: {made: before-the-snapshot}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 2
      containers:
        - {name: pod, image: %[2]s, imagePullPolicy: Never, args: [serve, --port, "8080"]}
`, restoreName, PodRef)
}

// pushedSnapshots are the snapshot copies each master pushed to the Salt
// master (kubesalt_etcd.snapshot's cp.push), by minion, with their times.
func (l *Lab) pushedSnapshots() map[string]time.Time {
	out := map[string]time.Time{}
	for _, m := range l.withRole(RoleMaster) {
		p := filepath.Join(l.masterDir(), "var/cache/salt/master/minions", m.Name, "files/kubesalt-etcd/latest.db")
		if info, err := os.Stat(p); err == nil && info.Size() > 0 {
			out[m.Name] = info.ModTime()
		}
	}
	return out
}

// objectsBack reports what of the ConfigMap and the Deployment is missing.
func (l *Lab) objectsBack() string {
	out, err := l.kubectl("get", "configmap", restoreName, "-o", "jsonpath={.data.made}")
	if err != nil || strings.TrimSpace(out) != "before-the-snapshot" {
		return fmt.Sprintf("configmap %s: %v %s", restoreName, err, lastLine(out))
	}
	out, err = l.kubectl("get", "deployment", restoreName, "-o", "json")
	var d struct {
		Status struct{ ReadyReplicas int } `json:"status"`
	}
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.Status.ReadyReplicas != 1 {
		return fmt.Sprintf("deployment %s not ready: %v %s", restoreName, err, lastLine(out))
	}
	return ""
}

// restoreActions: see the file's comment. took is the time from the
// orchestration's start to the smoke test passing.
func (l *Lab) restoreActions(rep *Report, took *time.Duration) []action {
	var snapAt, start time.Time
	acts := []action{
		{"objects: ConfigMap and Deployment " + restoreName, func() error {
			manifest := filepath.Join(l.Dir, restoreName+".yaml")
			if err := os.WriteFile(manifest, []byte(restoreManifest()), 0o600); err != nil {
				return err
			}
			if out, err := l.kubectl("apply", "-f", manifest); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return poll(3*time.Minute, 2*time.Second, func() (string, error) { return l.objectsBack(), nil })
		}},
		{"snapshot: the masters' backup schedule run now (schedule.run_job), each pushing its newest to the Salt master", func() error {
			snapAt = time.Now().Add(-time.Second)
			if _, out, err := l.Salt(60*time.Second, "-C", "I@kubesalt:role:master", "schedule.run_job", "kubesalt-etcd-backup"); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			err := poll(2*time.Minute, time.Second, func() (string, error) {
				var missing []string
				pushed := l.pushedSnapshots()
				for _, m := range l.withRole(RoleMaster) {
					if !pushed[m.Name].After(snapAt) {
						missing = append(missing, m.Name)
					}
				}
				if len(missing) > 0 {
					return "no new snapshot on the Salt master from " + strings.Join(missing, ", "), nil
				}
				return "", nil
			})
			for m, t := range l.pushedSnapshots() {
				l.say("    %s pushed its snapshot at %s", m, t.Format(time.TimeOnly))
			}
			return err
		}},
		{"destroy: every master's etcd data removed and etcd killed; the API no longer has the objects", func() error {
			for _, m := range l.withRole(RoleMaster) {
				if err := os.RemoveAll(filepath.Join(l.nodeDir(m.Name), "root/var/lib/etcd/member")); err != nil {
					return err
				}
				if pid, err := l.processIn(m.Name, "etcd"); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			// Restarted by their supervisors on empty directories, the
			// members make a new, empty cluster.
			return poll(3*time.Minute, 2*time.Second, func() (string, error) {
				out, err := l.kubectl("get", "configmap", restoreName)
				if err != nil && strings.Contains(out, "NotFound") {
					return "", nil
				}
				return fmt.Sprintf("configmap %s still answered or no API: %v %s", restoreName, err, lastLine(out)), nil
			})
		}},
		{"restore: salt-run state.orchestrate orch.kubernetes.etcd_restore (the newest snapshot on the Salt master)", func() error {
			start = time.Now()
			return l.orchestrate("orch.kubernetes.etcd_restore", nil)
		}},
		{"objects back: the ConfigMap, the Deployment's pod Ready", func() error {
			return poll(3*time.Minute, 2*time.Second, func() (string, error) { return l.objectsBack(), nil })
		}},
	}
	acts = append(acts, l.showActions(rep)...)
	return append(acts, action{"restore time", func() error {
		*took = time.Since(start)
		l.say("    from etcd_restore's start to the smoke test passed: %.1fs", took.Seconds())
		return nil
	}})
}

// RestoreCheck runs the restore proof and returns the time from
// etcd_restore's start to the smoke test passing.
func (l *Lab) RestoreCheck() (Report, time.Duration, error) {
	var rep Report
	var took time.Duration
	err := l.runActions(l.restoreActions(&rep, &took))
	return rep, took, err
}
