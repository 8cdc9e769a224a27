package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kubesalt/kubesalt/internal/probe"
)

// The upgrade proof: a Deployment (two pods per worker, a
// PodDisruptionBudget, a NodePort Service) answering a steady stream of
// requests from a master's namespace while versions:kubernetes moves to
// the next minor and orch.kubernetes.pillar_changed (what the
// kubesalt/pillar/changed reactor runs) upgrades the cluster; then every
// node must run the new version and the smoke test pass.

const (
	upgradeName     = "kubesalt-upgrade"
	upgradeNodePort = 30081
	// upgradeEvery is the stream's pace: one request at a time, one every
	// 100 ms, each given 2 s.
	upgradeEvery   = 100 * time.Millisecond
	upgradeTimeout = 2 * time.Second
)

func upgradeManifest(replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: default}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 20
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: %[1]s}}}
      containers:
        - name: pod
          image: %[3]s
          imagePullPolicy: Never
          args: [serve, --port, "%[4]d"]
          readinessProbe:
            httpGet: {path: /whoami, port: %[4]d}
            periodSeconds: 1
          # An evicted pod keeps answering while kube-proxy everywhere
          # drops it from the Service's endpoints.
          lifecycle:
            preStop:
              sleep: {seconds: 5}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: %[1]s, namespace: default}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: %[1]s}}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: default}
spec:
  type: NodePort
  selector: {app: %[1]s}
  ports:
    - {port: 80, targetPort: %[4]d, nodePort: %[5]d}
`, upgradeName, replicas, PodRef, smokePort, upgradeNodePort)
}

// Stream is the request stream's account.
type Stream struct {
	Sent, Failed int
	// LongestGap: the longest time without a successful answer.
	LongestGap time.Duration
	// Failures: the first few, with when and why.
	Failures []string
}

// stream sends GET /whoami to the workers' NodePort in turn, from ns,
// until stop is closed or limit passes.
func stream(ns string, urls []string, stop <-chan struct{}, limit time.Duration) Stream {
	var s Stream
	start := time.Now()
	lastOK := start
	for i := 0; ; i++ {
		select {
		case <-stop:
			return s
		default:
		}
		if time.Since(start) > limit {
			return s
		}
		t := time.Now()
		status, _, err := probe.HTTPGet(ns, urls[i%len(urls)], upgradeTimeout)
		s.Sent++
		if err == nil && status == 200 {
			lastOK = time.Now()
		} else {
			s.Failed++
			if len(s.Failures) < 10 {
				s.Failures = append(s.Failures, fmt.Sprintf("%s %s: HTTP %d %v", t.Format("15:04:05.000"), urls[i%len(urls)], status, err))
			}
		}
		if gap := time.Since(lastOK); gap > s.LongestGap {
			s.LongestGap = gap
		}
		time.Sleep(time.Until(t.Add(upgradeEvery)))
	}
}

// UpgradeResult is what the upgrade proof measured.
type UpgradeResult struct {
	From, To string
	Total    time.Duration
	// Phases: each step of orch.kubernetes.upgrade (snapshot, each master,
	// each worker batch) with its time, in order.
	Phases []Phase
	Stream Stream
}

var upgradeStep = regexp.MustCompile(`^kubernetes-upgrade (\d+)/(\d+) ([^:]+)`)

// upgradePhases reads the steps of orch.kubernetes.upgrade from an
// orchestration's JSON (nested in pillar_changed's): each state's id names
// its step; a step's time is the sum of its states'.
func upgradePhases(out string) []Phase {
	doc, ok := saltJSON(out)
	if !ok {
		return nil
	}
	took := map[string]float64{}
	index := map[string]int{}
	var walk func(v any)
	walk = func(v any) {
		switch m := v.(type) {
		case map[string]any:
			if id, ok := m["__id__"].(string); ok {
				if g := upgradeStep.FindStringSubmatch(id); g != nil {
					d, _ := m["duration"].(float64)
					key := g[1] + "/" + g[2] + " " + g[3]
					took[key] += d
					var n int
					fmt.Sscan(g[1], &n)
					index[key] = n
				}
			}
			for _, e := range m {
				walk(e)
			}
		case []any:
			for _, e := range m {
				walk(e)
			}
		}
	}
	walk(doc)
	var phases []Phase
	for k, ms := range took {
		phases = append(phases, Phase{Name: k, Took: time.Duration(ms * float64(time.Millisecond))})
	}
	sort.Slice(phases, func(a, b int) bool { return index[phases[a].Name] < index[phases[b].Name] })
	return phases
}

// nodeVersions asks every node what it runs (kubesalt_upgrade.node) and
// returns the nodes not at want, with what they run.
func (l *Lab) nodeVersions(want string) (map[string]string, error) {
	res, out, err := l.Salt(2*time.Minute, "-L", strings.Join(l.nodeNames(), ","), "kubesalt_upgrade.node")
	if err != nil && len(res) == 0 {
		return nil, fmt.Errorf("kubesalt_upgrade.node: %v: %s", err, lastLine(out))
	}
	off := map[string]string{}
	for _, n := range l.nodeNames() {
		var r struct {
			Data struct {
				Version    string            `json:"version"`
				Components map[string]string `json:"components"`
				Problem    string            `json:"problem"`
			} `json:"data"`
		}
		raw, ok := res[n]
		if !ok || json.Unmarshal(raw, &r) != nil {
			off[n] = "no answer: " + string(raw)
			continue
		}
		if r.Data.Version != want || r.Data.Problem != "" {
			off[n] = fmt.Sprintf("%v %s", r.Data.Components, r.Data.Problem)
		}
	}
	return off, nil
}

// UpgradeCheck runs the upgrade proof: the lab was built at its
// Options.K8SVersion; to is the next minor, whose binaries are staged.
func (l *Lab) UpgradeCheck(to string) (UpgradeResult, Report, error) {
	res := UpgradeResult{From: l.k8sVersion(), To: to}
	var rep Report
	var urls []string
	for _, w := range l.workers() {
		urls = append(urls, fmt.Sprintf("http://%s:%d/whoami", w.IP, upgradeNodePort))
	}
	ns := l.NodeNS(l.firstMaster())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	acts := []action{
		{fmt.Sprintf("workload: Deployment %s (2 pods per worker), PodDisruptionBudget maxUnavailable 1, NodePort %d", upgradeName, upgradeNodePort), func() error {
			manifest := filepath.Join(l.Dir, upgradeName+".yaml")
			if err := os.WriteFile(manifest, []byte(upgradeManifest(2*len(l.workers()))), 0o600); err != nil {
				return err
			}
			if out, err := l.kubectl("apply", "-f", manifest); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			if out, err := l.kubectlWithin(3*time.Minute, "rollout", "status", "deployment/"+upgradeName, "--timeout=3m"); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			// Every worker's NodePort answers before the stream counts.
			return poll(time.Minute, time.Second, func() (string, error) {
				for _, u := range urls {
					if status, _, err := probe.HTTPGet(ns, u, upgradeTimeout); err != nil || status != 200 {
						return fmt.Sprintf("%s: HTTP %d %v", u, status, err), nil
					}
				}
				return "", nil
			})
		}},
		{fmt.Sprintf("every node runs %s; %s's binaries staged beside them (binaries:local_dir/kubernetes/%s)", res.From, to, to), func() error {
			if err := l.allAt(res.From); err != nil {
				return err
			}
			return l.StageK8S(to)
		}},
		{fmt.Sprintf("upgrade: versions:kubernetes %s -> %s in pillar, salt-run state.orchestrate orch.kubernetes.pillar_changed (the kubesalt/pillar/changed reactor's), requests to every worker's NodePort from %s every %s", res.From, to, l.firstMaster(), upgradeEvery), func() error {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res.Stream = stream(ns, urls, stop, 60*time.Minute)
			}()
			if err := l.setK8SVersion(to); err != nil {
				return err
			}
			start := time.Now()
			out, err := l.SaltRun("state.orchestrate", "orch.kubernetes.pillar_changed")
			res.Total = time.Since(start)
			// The stream goes on a few seconds: the last batch's pods settle.
			time.Sleep(5 * time.Second)
			close(stop)
			wg.Wait()
			res.Phases = upgradePhases(out)
			for _, p := range res.Phases {
				l.say("    %-44s %6.1fs", p.Name, p.Took.Seconds())
			}
			l.say("    orch.kubernetes.pillar_changed: %.1fs in all", res.Total.Seconds())
			s := res.Stream
			l.say("    requests: %d sent, %d failed, longest gap without an answer %.2fs", s.Sent, s.Failed, s.LongestGap.Seconds())
			for _, f := range s.Failures {
				l.say("      failed: %s", f)
			}
			if failures := failedStates(out); len(failures) > 0 {
				return fmt.Errorf("orch.kubernetes.pillar_changed failed:\n  %s", strings.Join(failures, "\n  "))
			}
			if err != nil {
				return err
			}
			if len(res.Phases) == 0 {
				return fmt.Errorf("no step of orch.kubernetes.upgrade in pillar_changed's return: %s", lastLine(out))
			}
			return nil
		}},
		{fmt.Sprintf("every node runs %s", to), func() error { return l.allAt(to) }},
		{"a second upgrade run has nothing to do", func() error {
			out, err := l.SaltRun("state.orchestrate", "orch.kubernetes.upgrade")
			if err != nil || !strings.Contains(out, "nothing to upgrade") {
				return fmt.Errorf("%v: %s", err, lastLine(out))
			}
			return nil
		}},
	}
	acts = append(acts, l.showActions(&rep)...)
	err := l.runActions(acts)
	select {
	case <-stop:
	default:
		close(stop)
	}
	wg.Wait()
	return res, rep, err
}

// setK8SVersion makes version the pillar's versions:kubernetes (its
// binaries staged).
func (l *Lab) setK8SVersion(version string) error {
	l.st.Options.K8SVersion = version
	if err := l.st.Save(); err != nil {
		return err
	}
	return l.writePillar()
}

// allAt waits until every node's components run version.
func (l *Lab) allAt(version string) error {
	return poll(3*time.Minute, 3*time.Second, func() (string, error) {
		off, err := l.nodeVersions(version)
		if err != nil {
			return err.Error(), nil
		}
		var p []string
		for n, what := range off {
			p = append(p, n+": "+what)
		}
		sort.Strings(p)
		if len(p) > 0 {
			return "not at " + version + ": " + strings.Join(p, "; "), nil
		}
		for _, n := range l.nodeNames() {
			l.say("    %s runs %s", n, version)
		}
		return "", nil
	})
}
