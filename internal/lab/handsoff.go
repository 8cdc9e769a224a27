package lab

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The hands-off checks: the formula's routes watcher heals a route
// deleted by hand without a state run, and its reconcile schedule is on
// every node and its run reaches the status store.

// routeHealGoal is the longest a deleted route may take to come back.
const routeHealGoal = 2 * time.Second

// CheckRouteHeals deletes one of node's kubesalt routes and returns how
// long the node's `kubesalt routes watch` took to put it back.
func (l *Lab) CheckRouteHeals(node string) (time.Duration, error) {
	routes := l.Routes(node)
	dst, _, _ := strings.Cut(routes, " ")
	if dst == "" {
		return 0, fmt.Errorf("%s has no kubesalt route to delete", node)
	}
	if out, err := l.in(l.NodeNS(node), "ip", "route", "del", dst, "proto", routeProto); err != nil {
		return 0, fmt.Errorf("ip route del %s on %s: %v: %s", dst, node, err, out)
	}
	start := time.Now()
	err := poll(routeHealGoal, 20*time.Millisecond, func() (string, error) {
		if strings.Contains(l.Routes(node)+"\n", dst+" ") {
			return "", nil
		}
		return fmt.Sprintf("the route to %s deleted on %s is not back (see nodes/%s/.../var/log/kubernetes/kubesalt-routes-watch.log)", dst, node, node), nil
	})
	return time.Since(start), err
}

// reconcileSchedule is the formula's schedule of `state.apply kubernetes`.
const reconcileSchedule = "kubesalt-reconcile"

// CheckReconcileSchedule checks that every node's minion has the reconcile
// schedule, runs it now on node, and waits until the status store shows a
// successful state run of node newer than before. It returns how long the
// run took to reach the store.
func (l *Lab) CheckReconcileSchedule(node string) (time.Duration, error) {
	var names []string
	for _, n := range l.st.Nodes {
		names = append(names, n.Name)
	}
	res, out, err := l.Salt(30*time.Second, "-L", strings.Join(names, ","), "schedule.list", "return_yaml=False")
	if err != nil {
		return 0, fmt.Errorf("schedule.list: %v: %s", err, out)
	}
	for _, n := range names {
		var sched map[string]struct {
			Function string `json:"function"`
			Seconds  int    `json:"seconds"`
			Splay    any    `json:"splay"`
		}
		if json.Unmarshal(res[n], &sched) != nil || sched[reconcileSchedule].Function != "state.apply" {
			return 0, fmt.Errorf("%s has no %s schedule running state.apply: %s", n, reconcileSchedule, res[n])
		}
	}
	before, err := l.lastGoodRun(node)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, out, err := l.Salt(30*time.Second, node, "schedule.run_job", reconcileSchedule); err != nil {
		return 0, fmt.Errorf("schedule.run_job %s on %s: %v: %s", reconcileSchedule, node, err, out)
	}
	err = poll(5*time.Minute, time.Second, func() (string, error) {
		t, err := l.lastGoodRun(node)
		if err != nil || !t.After(before) {
			return fmt.Sprintf("no successful state run of %s newer than %s in the status store (%v)", node, before.Format(time.RFC3339), err), nil
		}
		return "", nil
	})
	return time.Since(start), err
}

// lastGoodRun is node's last successful state run as `kubesalt status
// show` reports it (zero: none).
func (l *Lab) lastGoodRun(node string) (time.Time, error) {
	out, err := exec.Command(filepath.Join(l.Repo, "bin/kubesalt"), "status", "show", "--db", l.StatusDB(),
		"--definition", filepath.Join(l.Dir, "pillar/kubernetes.sls"), "--plan", l.PlanFile()).Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("kubesalt status show: %v", err)
	}
	var res struct {
		Data struct {
			Nodes []struct {
				Name        string     `json:"name"`
				LastGoodRun *time.Time `json:"last_good_run"`
			} `json:"nodes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return time.Time{}, err
	}
	for _, n := range res.Data.Nodes {
		if n.Name == node && n.LastGoodRun != nil {
			return *n.LastGoodRun, nil
		}
	}
	return time.Time{}, nil
}
