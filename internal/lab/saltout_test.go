package lab

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The fixtures are Salt 3008's own output: the minions' state returns
// captured from salt-call, placed as `salt --static` and `salt-run
// state.orchestrate` place them (salt/cli/batch.py, salt/states/saltmod.py).
func readSaltOutput(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/salt", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func stateRuns(t *testing.T, name string) map[string]stateRun {
	t.Helper()
	var res map[string]json.RawMessage
	if err := json.Unmarshal([]byte(readSaltOutput(t, name)), &res); err != nil {
		t.Fatal(err)
	}
	return parseStateRuns(res)
}

var labMinions = []string{"master-0", "worker-0", "salt"}

func TestParseStateRuns(t *testing.T) {
	for _, c := range []struct {
		file     string
		changed  map[string]int
		problems []string
	}{
		{"apply-ok.json", map[string]int{"master-0": 0, "worker-0": 2, "salt": 0}, nil},
		{"apply-failed.json", map[string]int{"master-0": 0, "worker-0": 1, "salt": 0}, []string{
			"worker-0: after-routes: One or more requisite failed: bad.routes-synced",
			`worker-0: routes-synced: Command "echo cannot reach netlink >&2; exit 1" run`,
		}},
		// --static prints {} for a minion that did not return in time: not
		// a run with nothing to change.
		{"apply-no-return.json", map[string]int{"master-0": 0, "salt": 0}, []string{"worker-0: " + noStateResult}},
		{"apply-render-error.json", map[string]int{"master-0": 0, "salt": 0}, []string{
			"worker-0: Rendering SLS 'base:broken' failed: mapping values are not allowed in this context",
		}},
	} {
		t.Run(c.file, func(t *testing.T) {
			changed, problems := checkRuns(stateRuns(t, c.file), labMinions)
			for n, want := range c.changed {
				if changed[n] != want {
					t.Errorf("%s changed %d states, want %d", n, changed[n], want)
				}
			}
			if !reflect.DeepEqual(problems, c.problems) {
				t.Errorf("problems:\n got %q\nwant %q", problems, c.problems)
			}
		})
	}
}

func TestCheckRunsNamesAMinionMissingFromTheOutput(t *testing.T) {
	runs := stateRuns(t, "apply-ok.json")
	delete(runs, "worker-0")
	if _, problems := checkRuns(runs, labMinions); !reflect.DeepEqual(problems, []string{"worker-0: no return"}) {
		t.Errorf("problems: %q", problems)
	}
}

func TestParseStateRunsMalformed(t *testing.T) {
	runs := parseStateRuns(map[string]json.RawMessage{
		"worker-0": json.RawMessage(`"Minion did not return. [Not connected]"`),
		"worker-1": json.RawMessage(`{"file_|-x_|-/x_|-managed": "half`),
		"worker-2": json.RawMessage(`42`),
	})
	want := map[string][]string{
		"worker-0": {"Minion did not return. [Not connected]"},
		"worker-1": {`not a state result: {"file_|-x_|-/x_|-managed": "half`},
		"worker-2": {"not a state result: 42"},
	}
	for n, w := range want {
		if !reflect.DeepEqual(runs[n].failed, w) {
			t.Errorf("%s: failed %q, want %q", n, runs[n].failed, w)
		}
	}
}

func TestFailedStates(t *testing.T) {
	for file, want := range map[string][]string{
		"orch-ok.json": nil,
		// A succeeded state's kubesalt block holds lists of strings
		// (pod_cidrs): data, not errors.
		"orch-ok-kubesalt-block.json": nil,
		// The minion state that failed, not the step that failed because
		// of it, nor the step skipped by a failed requisite.
		"orch-failed.json": {`salt_master: network: worker-0: routes-synced: Command "echo cannot reach netlink >&2; exit 1" run`},
		// A minion without a state result is named beside one that failed.
		"orch-no-return.json": {
			`salt_master: network: worker-0: routes-synced: Command "echo cannot reach netlink >&2; exit 1" run`,
			"salt_master: network: worker-1: " + noStateResult,
		},
		"orch-render-error.json": {"salt_master: network: worker-0: Rendering SLS 'base:broken' failed: mapping values are not allowed in this context"},
	} {
		out := readSaltOutput(t, file)
		if got := failedStates(out); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", file, got, want)
		}
		// salt-run may log a line before its JSON.
		if got := failedStates("[WARNING ] a deprecation\n" + out); !reflect.DeepEqual(got, want) {
			t.Errorf("%s after a log line:\n got %q\nwant %q", file, got, want)
		}
	}
}

func TestFailedStatesMalformed(t *testing.T) {
	full := readSaltOutput(t, "orch-failed.json")
	for name, out := range map[string]string{
		"empty":     "",
		"no JSON":   "[ERROR   ] An un-handled exception was caught by Salt's global exception handler",
		"truncated": full[:len(full)/2],
	} {
		if got := failedStates(out); got != nil {
			t.Errorf("%s: %q, want nothing (the caller reports the exit status)", name, got)
		}
	}
	if !strings.Contains(full, `"retcode": 1`) {
		t.Fatal("the fixture lost its shape")
	}
}
