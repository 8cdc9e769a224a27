package lab

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Reading Salt's JSON output: `salt --out json --static` of a state run,
// and `salt-run --out json state.orchestrate`.

// stateRun is one minion's return of a state run.
type stateRun struct {
	failed  []string // "state id: comment"
	changed int      // states that changed something
}

// noStateResult is what a minion that sent no state result failed with.
const noStateResult = "did not return a state result (not answering, or still busy)"

// parseStateRuns reads `salt --out json --static` of a state function.
// Per minion Salt prints a map of state returns; a list of errors (a
// render failure); a string (an error); or {} (with --static, a minion
// that did not return in time). Only the first is a run.
func parseStateRuns(res map[string]json.RawMessage) map[string]stateRun {
	out := map[string]stateRun{}
	for minion, raw := range res {
		var states map[string]struct {
			ID      string         `json:"__id__"`
			Result  *bool          `json:"result"`
			Comment any            `json:"comment"`
			Changes map[string]any `json:"changes"`
		}
		if err := json.Unmarshal(raw, &states); err != nil {
			out[minion] = stateRun{failed: []string{errorText(raw)}}
			continue
		}
		if len(states) == 0 {
			out[minion] = stateRun{failed: []string{noStateResult}}
			continue
		}
		var r stateRun
		for key, s := range states {
			id := s.ID
			if id == "" {
				id = key
			}
			if s.Result != nil && !*s.Result {
				r.failed = append(r.failed, fmt.Sprintf("%s: %v", id, s.Comment))
			}
			if len(s.Changes) > 0 {
				r.changed++
			}
		}
		sort.Strings(r.failed)
		out[minion] = r
	}
	return out
}

// errorText is what a minion sent instead of its states: its error
// strings, or the raw text if it is not even JSON.
func errorText(raw json.RawMessage) string {
	var msg any
	if json.Unmarshal(raw, &msg) != nil {
		return "not a state result: " + strings.TrimSpace(string(raw))
	}
	switch m := msg.(type) {
	case string:
		return strings.TrimSpace(m)
	case []any:
		var parts []string
		for _, e := range m {
			parts = append(parts, strings.TrimSpace(fmt.Sprint(e)))
		}
		return strings.Join(parts, "; ")
	}
	return fmt.Sprintf("not a state result: %v", msg)
}

// checkRuns checks that every one of minions returned its run without a
// failed state; it returns the states changed per minion and, per failure,
// "minion: state id: comment" or "minion: no return".
func checkRuns(runs map[string]stateRun, minions []string) (map[string]int, []string) {
	changed := map[string]int{}
	var problems []string
	for _, n := range minions {
		r, ok := runs[n]
		if !ok {
			problems = append(problems, n+": no return")
			continue
		}
		for _, f := range r.failed {
			problems = append(problems, n+": "+f)
		}
		changed[n] = r.changed
	}
	return changed, problems
}

// saltJSON decodes the first JSON document in Salt's output (log lines
// may come before it); false when there is none.
func saltJSON(out string) (any, bool) {
	i := strings.Index(out, "{")
	if i < 0 {
		return nil, false
	}
	var doc any
	if json.NewDecoder(strings.NewReader(out[i:])).Decode(&doc) != nil {
		return nil, false
	}
	return doc, true
}

// stateFields are a state return's own keys, never a minion or a state.
var stateFields = map[string]bool{"name": true, "comment": true, "result": true, "__id__": true, "__sls__": true,
	"__run_num__": true, "__jid__": true, "start_time": true, "duration": true, "__state_ran__": true, "outputter": true, "retcode": true}

// failedStates digs the failed states out of an orchestration's JSON, down
// to the minion states whose failure made the orchestration step fail, and
// names each by where it failed: "minion: state id: comment". Output that
// holds no JSON object gives nothing: the caller falls back on the exit
// status.
func failedStates(out string) []string {
	doc, ok := saltJSON(out)
	if !ok {
		return nil
	}
	var found []string
	var walk func(where string, v any)
	// minions reads a salt.state step's changes.ret: each minion's states,
	// its errors, or false when it sent no state result.
	minions := func(where string, ret map[string]any) {
		for minion, r := range ret {
			switch r.(type) {
			case map[string]any, []any:
				walk(where+": "+minion, r)
			default:
				found = append(found, where+": "+minion+": "+noStateResult)
			}
		}
	}
	walk = func(where string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			if l, ok := v.([]any); ok && strings.Count(where, ":") > 0 {
				for _, e := range l {
					if s, ok := e.(string); ok {
						found = append(found, where+": "+s)
					}
				}
			}
			return
		}
		r, isState := m["result"].(bool)
		if isState && r {
			// Succeeded: what it holds (a kubesalt block's lists) is no error.
			return
		}
		if isState && !r {
			id, _ := m["__id__"].(string)
			comment := fmt.Sprint(m["comment"])
			if strings.HasPrefix(comment, "One or more requisite failed") {
				return // the step that failed first says why
			}
			before := len(found)
			changes, _ := m["changes"].(map[string]any)
			if ret, ok := changes["ret"].(map[string]any); ok && changes["out"] == "highstate" {
				minions(where+": "+id, ret)
			} else {
				walk(where+": "+id, m["changes"])
			}
			if len(found) == before {
				found = append(found, where+": "+id+": "+strings.TrimSpace(comment))
			}
			return
		}
		for k, sub := range m {
			if stateFields[k] {
				continue
			}
			name := where
			if !strings.Contains(k, "_|-") && k != "data" && k != "return" && k != "ret" && k != "changes" && k != "out" {
				name = strings.TrimPrefix(where+": "+k, ": ")
			}
			walk(name, sub)
		}
	}
	walk("", doc)
	sort.Strings(found)
	return found
}
