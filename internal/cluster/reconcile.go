package cluster

import (
	"fmt"
	"time"
)

// Defaults of the kubernetes:reconcile section: the formula's schedule of
// `state.apply kubernetes` on every node.
const (
	DefaultReconcileInterval = time.Hour
	DefaultReconcileSplay    = 5 * time.Minute
	MinReconcileInterval     = time.Minute
)

// Reconcile is how often every node repairs its drift with a state run.
// `kubesalt status show` flags a node without a successful run within two
// intervals.
type Reconcile struct {
	Enabled  bool
	Interval time.Duration
	Splay    time.Duration
}

// rawReconcile is kubernetes:reconcile, in whole seconds as Salt's schedule
// takes them. Untyped, so that a bad value is a problem naming its key.
type rawReconcile struct {
	Enabled  any `yaml:"enabled"`
	Interval any `yaml:"interval"`
	Splay    any `yaml:"splay"`
}

func init() {
	knownFields["rawReconcile"] = "enabled, interval, splay"
	sectionOf["rawReconcile"] = "kubernetes:reconcile"
}

// The formula's kubernetes.reconcile checks its copy with the same words.
func (c *checker) reconcile(r *rawReconcile, out *Reconcile) {
	const f = "kubernetes:reconcile:"
	*out = Reconcile{Enabled: true, Interval: DefaultReconcileInterval, Splay: DefaultReconcileSplay}
	switch v := r.Enabled.(type) {
	case nil:
	case bool:
		out.Enabled = v
	default:
		c.add(f+"enabled", "%s is not true or false; use e.g. true (the default) or false", show(v))
	}
	seconds := func(v any) (int, bool) {
		switch n := v.(type) {
		case int:
			return n, true
		case uint64:
			return int(min(n, 1<<31)), true
		}
		return 0, false
	}
	if r.Interval != nil {
		n, ok := seconds(r.Interval)
		if !ok || time.Duration(n)*time.Second < MinReconcileInterval {
			c.add(f+"interval", "%s is not a whole number of seconds of at least %d; use e.g. %d (the default)",
				show(r.Interval), int(MinReconcileInterval.Seconds()), int(DefaultReconcileInterval.Seconds()))
			return
		}
		out.Interval = time.Duration(n) * time.Second
	}
	if r.Splay != nil {
		n, ok := seconds(r.Splay)
		if !ok || n < 0 || time.Duration(n)*time.Second >= out.Interval {
			c.add(f+"splay", "%s is not a whole number of seconds from 0 to less than interval; use e.g. %d (the default)",
				show(r.Splay), int(DefaultReconcileSplay.Seconds()))
			return
		}
		out.Splay = time.Duration(n) * time.Second
	}
}

// show writes a pillar value as JSON would (strings quoted).
func show(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}
