package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestReconcileDefaultsAndValues(t *testing.T) {
	d, err := Load([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Reconcile{Enabled: true, Interval: time.Hour, Splay: 5 * time.Minute}); d.Reconcile != want {
		t.Errorf("defaults %+v, want %+v", d.Reconcile, want)
	}
	d, err = Load([]byte(strings.Replace(base, "network:", "reconcile: {enabled: false, interval: 600, splay: 0}\n  network:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Reconcile{Enabled: false, Interval: 10 * time.Minute}); d.Reconcile != want {
		t.Errorf("set %+v, want %+v", d.Reconcile, want)
	}
}

// The same words as the formula's kubernetes.reconcile says them.
func TestReconcileBadValuesNameTheKey(t *testing.T) {
	for section, want := range map[string]string{
		"{interval: hourly}":        `kubernetes:reconcile:interval: "hourly" is not a whole number of seconds of at least 60; use e.g. 3600 (the default)`,
		"{interval: 59}":            "kubernetes:reconcile:interval: 59 is not a whole number of seconds of at least 60",
		"{interval: 90.5}":          "kubernetes:reconcile:interval: 90.5 is not",
		"{splay: 3600}":             "kubernetes:reconcile:splay: 3600 is not a whole number of seconds from 0 to less than interval; use e.g. 300 (the default)",
		"{splay: -1}":               "kubernetes:reconcile:splay: -1 is not",
		`{enabled: "yes"}`:          `kubernetes:reconcile:enabled: "yes" is not true or false; use e.g. true (the default) or false`,
		"{intervall: 60}":           `kubernetes:reconcile:intervall: unknown field "intervall"; correct its spelling or remove it (known: enabled, interval, splay)`,
		"{interval: 60, splay: 60}": "kubernetes:reconcile:splay: 60 is not",
	} {
		_, err := Load([]byte(strings.Replace(base, "network:", "reconcile: "+section+"\n  network:", 1)))
		wantProblems(t, err, want)
	}
}
