package lab

import (
	"os"
	"reflect"
	"strings"
	"testing"
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
