package status

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// JobReturn is one Salt job return as a returner receives it (the `ret`
// of returner(ret), or the data of a salt/job/<jid>/ret/<id> event).
type JobReturn struct {
	ID      string          `json:"id"`
	Fun     string          `json:"fun"`
	FunArgs []any           `json:"fun_args"`
	JID     string          `json:"jid"`
	Return  json.RawMessage `json:"return"`
	Success *bool           `json:"success"`
	Retcode *int            `json:"retcode"`
	Stamp   string          `json:"_stamp"`
}

// Result is a kubesalt binary's JSON result (docs/architecture.md).
type Result struct {
	Result  *bool           `json:"result"`
	Changes json.RawMessage `json:"changes"`
	Comment string          `json:"comment"`
	Data    json.RawMessage `json:"data"`
}

// StateBlock is what the extension's states add to their state return,
// under the key "kubesalt", so the returner can read what the binary said
// even when a state has no changes: the subcommand, whether it ran in
// test mode, this minion's node name and pod CIDR(s) from its pillar, and
// the binary's full result.
type StateBlock struct {
	Command  string   `json:"command"`
	Test     bool     `json:"test"`
	Node     string   `json:"node"`
	PodCIDRs []string `json:"pod_cidrs"`
	Result   Result   `json:"result"`
}

// Route is one route as `kubesalt routes sync` reports it.
type Route struct {
	Dst  string `json:"dst"`
	Via  string `json:"via"`
	Node string `json:"node,omitempty"`
}

// RouteProblem is a failed or conflicting route.
type RouteProblem struct {
	Route    Route  `json:"route"`
	Error    string `json:"error,omitempty"`
	Existing string `json:"existing,omitempty"`
}

// RouteSync is the outcome of one `routes sync` (or diff) on a minion.
type RouteSync struct {
	At        time.Time      `json:"at"`
	JID       string         `json:"jid,omitempty"`
	Test      bool           `json:"test"`
	Result    *bool          `json:"result"`
	Desired   int            `json:"desired"`
	Present   int            `json:"present"`
	Added     int            `json:"added"`
	Replaced  int            `json:"replaced"`
	Removed   int            `json:"removed"`
	Failed    []RouteProblem `json:"failed,omitempty"`
	Conflicts []RouteProblem `json:"conflicts,omitempty"`
}

// VM is a domain's state as the hypervisor last reported it.
type VM struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Hypervisor string    `json:"hypervisor"`
	At         time.Time `json:"at"`
}

// Certificate is one certificate as `kubesalt pki check` last reported it.
type Certificate struct {
	Name     string    `json:"name"`
	Subject  string    `json:"subject,omitempty"`
	SANs     []string  `json:"sans,omitempty"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	// Problem and Fix as `kubesalt pki check` gave them, or "expired"
	// when it has expired since (Show).
	Problem  string    `json:"problem,omitempty"`
	Fix      string    `json:"fix,omitempty"`
	Reporter string    `json:"reporter"`
	At       time.Time `json:"at"`
}

// Facts is what one job return tells about a minion.
type Facts struct {
	Minion   string
	At       time.Time
	JID      string
	Fun      string
	Success  *bool
	Node     string   // cluster node name, when a state said it
	PodCIDRs []string // from the minion's pillar, when a state said it
	// Routes is the last applied sync; RoutesCheck the last test-mode one.
	Routes       *RouteSync
	RoutesCheck  *RouteSync
	VMs          []VM
	VMsRemoved   []string
	Certificates []Certificate
	// GoodRun: a state run (not test mode) that succeeded: drift repaired.
	GoodRun bool
}

// Minion is the stored record of one minion.
type Minion struct {
	ID          string     `json:"id"`
	Node        string     `json:"node,omitempty"`
	LastRun     time.Time  `json:"last_run"`
	LastJID     string     `json:"last_jid,omitempty"`
	LastFun     string     `json:"last_fun,omitempty"`
	LastSuccess *bool      `json:"last_success"`
	PodCIDRs    []string   `json:"pod_cidrs,omitempty"`
	Routes      *RouteSync `json:"routes,omitempty"`
	RoutesCheck *RouteSync `json:"routes_check,omitempty"`
	// LastGoodRun is the last successful state run (not test mode).
	LastGoodRun *time.Time `json:"last_good_run,omitempty"`
}

func (m *Minion) merge(f Facts) {
	m.ID = f.Minion
	if f.At.After(m.LastRun) || m.LastRun.IsZero() {
		m.LastRun, m.LastJID, m.LastFun, m.LastSuccess = f.At, f.JID, f.Fun, f.Success
	}
	if f.Node != "" {
		m.Node = f.Node
	}
	if f.PodCIDRs != nil {
		m.PodCIDRs = f.PodCIDRs
	}
	if f.Routes != nil {
		m.Routes = f.Routes
	}
	if f.RoutesCheck != nil {
		m.RoutesCheck = f.RoutesCheck
	}
	if f.GoodRun && (m.LastGoodRun == nil || f.At.After(*m.LastGoodRun)) {
		t := f.At
		m.LastGoodRun = &t
	}
}

// commandOf maps an execution module function of the extension to the
// binary subcommand it runs.
var commandOf = map[string]string{
	"kubesalt_net.routes_sync":     "routes sync",
	"kubesalt_net.routes_diff":     "routes diff",
	"kubesalt_pki.check":           "pki check",
	"kubesalt_pki.rotate":          "pki rotate",
	"kubesalt_virt.node_ensure":    "virt node ensure",
	"kubesalt_virt.node_remove":    "virt node remove",
	"kubesalt_virt.list":           "virt list",
	"kubesalt_virt.network_ensure": "virt network ensure",
}

// Relevant says whether a job return is one kubesalt records: the
// extension's modules and states, and state runs (state.apply kubernetes).
func Relevant(fun string) bool {
	return strings.HasPrefix(fun, "kubesalt_") || strings.HasPrefix(fun, "state.")
}

// Extract reads the facts of one job return. now is used when the return
// carries no time stamp. It never fails on an unknown return shape: a run
// is recorded even if it holds nothing kubesalt knows.
func Extract(jr JobReturn, now time.Time) (Facts, error) {
	if jr.ID == "" {
		return Facts{}, fmt.Errorf("job return: no \"id\"; give the return as the returner receives it ({\"id\", \"fun\", \"jid\", \"return\", ...})")
	}
	if jr.Fun == "" {
		return Facts{}, fmt.Errorf("job return of %s: no \"fun\"; give the return as the returner receives it", jr.ID)
	}
	f := Facts{Minion: jr.ID, At: stampTime(jr.Stamp, now), JID: jr.JID, Fun: jr.Fun, Success: jr.Success}
	if f.Success == nil && jr.Retcode != nil {
		ok := *jr.Retcode == 0
		f.Success = &ok
	}
	if cmd, ok := commandOf[jr.Fun]; ok {
		var r Result
		if json.Unmarshal(jr.Return, &r) == nil {
			f.add(cmd, testArg(jr.FunArgs) || r.Result == nil, r)
		}
		return f, nil
	}
	if strings.HasPrefix(jr.Fun, "state.") {
		var states map[string]struct {
			Result   *bool           `json:"result"`
			Kubesalt json.RawMessage `json:"kubesalt"`
		}
		if json.Unmarshal(jr.Return, &states) != nil {
			// Render errors come back as a list of strings: a failed run.
			if f.Success == nil {
				no := false
				f.Success = &no
			}
			return f, nil
		}
		ids := make([]string, 0, len(states))
		for id := range states {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			st := states[id]
			if f.Success == nil && st.Result != nil && !*st.Result {
				no := false
				f.Success = &no
			}
			for _, b := range blocks(st.Kubesalt) {
				if b.Node != "" {
					f.Node = b.Node
				}
				if b.PodCIDRs != nil {
					f.PodCIDRs = b.PodCIDRs
				}
				f.add(b.Command, b.Test, b.Result)
			}
		}
		f.GoodRun = stateRuns[jr.Fun] && f.Success != nil && *f.Success && !testArg(jr.FunArgs)
	}
	return f, nil
}

// stateRuns are the functions that apply states (the schedule's
// state.apply kubernetes among them); state.show_* and the like are not.
var stateRuns = map[string]bool{"state.apply": true, "state.sls": true, "state.highstate": true}

// blocks reads a state's kubesalt block: one object, or a list when the
// state ran more than one command.
func blocks(raw json.RawMessage) []StateBlock {
	var one StateBlock
	if json.Unmarshal(raw, &one) == nil && one.Command != "" {
		return []StateBlock{one}
	}
	var list []StateBlock
	_ = json.Unmarshal(raw, &list)
	return list
}

// add folds one binary result into f.
func (f *Facts) add(cmd string, test bool, r Result) {
	switch cmd {
	case "routes sync", "routes diff":
		var d struct {
			Desired   int            `json:"desired"`
			Present   int            `json:"present"`
			Added     []Route        `json:"added"`
			Replaced  []Route        `json:"replaced"`
			Removed   []Route        `json:"removed"`
			Failed    []RouteProblem `json:"failed"`
			Conflicts []RouteProblem `json:"conflicts"`
		}
		if json.Unmarshal(r.Data, &d) != nil {
			return
		}
		rs := &RouteSync{At: f.At, JID: f.JID, Test: test || cmd == "routes diff", Result: r.Result,
			Desired: d.Desired, Present: d.Present, Added: len(d.Added), Replaced: len(d.Replaced),
			Removed: len(d.Removed), Failed: d.Failed, Conflicts: d.Conflicts}
		if rs.Test {
			f.RoutesCheck = rs
		} else {
			f.Routes = rs
		}
	case "pki check", "pki rotate":
		if test {
			return
		}
		var d struct {
			Certificates []Certificate `json:"certificates"`
		}
		if json.Unmarshal(r.Data, &d) != nil {
			return
		}
		for _, c := range d.Certificates {
			c.Reporter, c.At = f.Minion, f.At
			f.Certificates = append(f.Certificates, c)
		}
	case "virt node ensure", "virt node remove", "virt list":
		if test {
			return // a prediction, not the hypervisor's state
		}
		var d struct {
			Nodes map[string]struct {
				State string `json:"state"`
			} `json:"nodes"`
			Domains []struct {
				Name  string `json:"name"`
				State string `json:"state"`
			} `json:"domains"`
		}
		_ = json.Unmarshal(r.Data, &d)
		for name, n := range d.Nodes {
			f.VMs = append(f.VMs, VM{Name: name, State: n.State, Hypervisor: f.Minion, At: f.At})
		}
		for _, dom := range d.Domains {
			f.VMs = append(f.VMs, VM{Name: dom.Name, State: dom.State, Hypervisor: f.Minion, At: f.At})
		}
		if cmd == "virt node remove" && r.Result != nil && *r.Result {
			var ch map[string]struct {
				Removed []string `json:"removed"`
			}
			_ = json.Unmarshal(r.Changes, &ch)
			for name, c := range ch {
				if len(c.Removed) > 0 {
					f.VMsRemoved = append(f.VMsRemoved, name)
				}
			}
			sort.Strings(f.VMsRemoved)
		}
		sort.Slice(f.VMs, func(i, j int) bool { return f.VMs[i].Name < f.VMs[j].Name })
	}
}

// testArg says whether Salt passed test=True to the function: as a
// "test=True" string (salt-call) or in a kwargs dict (the master).
func testArg(args []any) bool {
	for _, a := range args {
		switch v := a.(type) {
		case string:
			if strings.EqualFold(strings.ReplaceAll(v, " ", ""), "test=true") {
				return true
			}
		case map[string]any:
			if t, ok := v["test"].(bool); ok && t {
				return true
			}
		}
	}
	return false
}

// stampTime parses an event's _stamp (UTC, ISO 8601 without zone).
func stampTime(s string, now time.Time) time.Time {
	for _, layout := range []string{"2006-01-02T15:04:05.999999", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return now.UTC()
}
