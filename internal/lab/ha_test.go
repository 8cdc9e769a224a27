package lab

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// haproxy 2.6's `/;csv` stats page, as a lab node's haproxy served it:
// the API servers' status by master, the frontends and the backend's
// summary left out.
func TestParseBackends(t *testing.T) {
	raw, err := os.ReadFile("testdata/haproxy-stats.csv")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseBackends(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"master-0": "UP", "master-1": "UP", "master-2": "UP"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("backends %v, want %v", got, want)
	}
	// A master marked down, one going down: their status as haproxy says it.
	lines := strings.Split(string(raw), "\n")
	for i, line := range lines {
		f := strings.Split(line, ",")
		if len(f) > 17 && f[1] == "master-1" {
			f[17] = "DOWN"
		}
		if len(f) > 17 && f[1] == "master-2" {
			f[17] = "UP 1/2"
		}
		lines[i] = strings.Join(f, ",")
	}
	got, err = parseBackends(strings.Join(lines, "\n"))
	if err != nil || got["master-1"] != "DOWN" || got["master-2"] != "UP 1/2" {
		t.Errorf("with master-1 down: %v %v", got, err)
	}
	if _, err := parseBackends("<html>not the CSV page</html>\n"); err == nil {
		t.Error("an HTML page parsed as haproxy's CSV")
	}
}

// The leader leases' holders by master name (holderIdentity is
// <hostname>_<uuid>); a lease with no live holder (none, or not renewed
// within 5 s) is an error naming it.
func TestParseLeaseHolders(t *testing.T) {
	now := time.Date(2026, 11, 30, 6, 40, 0, 0, time.UTC)
	raw := `{"items":[
	  {"metadata":{"name":"kube-controller-manager"},"spec":{"holderIdentity":"master-1_0b5c6f1e-8a1d-4c1e-9a55-2f1c7e1d9b10","renewTime":"2026-11-30T06:39:58.123456Z"}},
	  {"metadata":{"name":"kube-scheduler"},"spec":{"holderIdentity":"master-2_7d0e3f4a-1b2c-4d5e-8f90-a1b2c3d4e5f6","renewTime":"2026-11-30T06:39:59.000001Z"}}]}`
	got, err := parseLeaseHolders([]byte(raw), now)
	want := map[string]string{"kube-controller-manager": "master-1", "kube-scheduler": "master-2"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("holders %v %v, want %v", got, err, want)
	}
	_, err = parseLeaseHolders([]byte(raw), now.Add(4*time.Second))
	if err == nil || !strings.Contains(err.Error(), "kube-controller-manager") || strings.Contains(err.Error(), "kube-scheduler") {
		t.Errorf("the controller manager's lease 6 s old: %v, want an error naming it alone", err)
	}
	_, err = parseLeaseHolders([]byte(`{"items":[{"metadata":{"name":"kube-controller-manager"},"spec":{"holderIdentity":"master-0_x","renewTime":"2026-11-30T06:39:59.000000Z"}}]}`), now)
	if err == nil || !strings.Contains(err.Error(), "kube-scheduler") {
		t.Errorf("a lease without a holder: %v, want an error naming kube-scheduler", err)
	}
}
