package lab

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Where an orchestration's time goes: the master's event bus, recorded
// while the lab adds a node or bootstraps (`salt-run state.event`), gives
// each orchestration's return (every step's start and duration) and every
// minion's return of every job a step published (who the step waited for).

// saltEvent is one event of the master's bus.
type saltEvent struct {
	Tag   string
	Stamp time.Time // the master's _stamp (UTC)
	Data  json.RawMessage
}

// eventRecorder runs `salt-run state.event` in the master's namespace and
// keeps every event it prints.
type eventRecorder struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []saltEvent
	done   chan struct{}
}

// recordEvents starts recording and returns once the recorder sees a
// marker event it sent itself, so that nothing after it is missed.
func (l *Lab) recordEvents() (*eventRecorder, error) {
	cmd := exec.Command("ip", "netns", "exec", l.masterNS(), filepath.Join(l.SaltBin, "salt-run"), "-c", l.masterDir(),
		"state.event", "pretty=False")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if f, err := os.OpenFile(filepath.Join(l.masterDir(), "salt-run.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		defer f.Close()
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &eventRecorder{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20) // a highstate's return of many minions is one line
		for sc.Scan() {
			if e, ok := parseEventLine(sc.Text()); ok {
				r.mu.Lock()
				r.events = append(r.events, e)
				r.mu.Unlock()
			}
		}
		cmd.Wait()
	}()
	marker := "kubesalt/lab/recording/" + strconv.FormatInt(time.Now().UnixNano(), 10)
	err = poll(60*time.Second, 500*time.Millisecond, func() (string, error) {
		if r.seen(marker) {
			return "", nil
		}
		select {
		case <-r.done:
			return "", fmt.Errorf("salt-run state.event ended (its log: %s)", filepath.Join(l.masterDir(), "salt-run.log"))
		default:
		}
		l.SaltRun("event.send", marker)
		if r.seen(marker) {
			return "", nil
		}
		return "the recorder has not seen " + marker, nil
	})
	if err != nil {
		r.stop()
		return nil, fmt.Errorf("recording the master's events: %w", err)
	}
	return r, nil
}

func (r *eventRecorder) seen(tag string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Tag == tag {
			return true
		}
	}
	return false
}

// stop ends the recorder and returns what it recorded.
func (r *eventRecorder) stop() []saltEvent {
	if r.cmd.Process != nil {
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events
}

// parseEventLine reads one line of `salt-run state.event pretty=False`:
// the tag, a tab, the data as JSON.
func parseEventLine(line string) (saltEvent, bool) {
	tag, data, ok := strings.Cut(line, "\t")
	if !ok {
		return saltEvent{}, false
	}
	var d struct {
		Stamp string `json:"_stamp"`
	}
	if json.Unmarshal([]byte(data), &d) != nil {
		return saltEvent{}, false
	}
	// Salt 3008 stamps with the zone (+00:00); older ones without (UTC).
	stamp, err := time.Parse(time.RFC3339Nano, d.Stamp)
	if err != nil {
		if stamp, err = time.ParseInLocation("2006-01-02T15:04:05.999999", d.Stamp, time.UTC); err != nil {
			return saltEvent{}, false
		}
	}
	return saltEvent{Tag: tag, Stamp: stamp, Data: json.RawMessage(data)}, true
}

// Step is one step of an orchestration as its return tells it.
type Step struct {
	ID       string
	Start    time.Time
	Took     time.Duration
	Result   bool
	Minions  int       // minions that returned the step's job
	Last     string    // the minion that returned last: what the step waited for
	LastAt   time.Time // when it returned
	Function string    // salt.state: the sls; salt.function: the function
}

// Orchestration is one state.orchestrate run seen on the bus.
type Orchestration struct {
	Mods     string
	Started  time.Time // its salt/run/<jid>/new
	Returned time.Time
	Steps    []Step // by start
}

// orchestrations reads every state.orchestrate run's steps from the
// events; the minions' returns of each step's job say whom it waited for.
func orchestrations(events []saltEvent) []Orchestration {
	started := map[string]time.Time{}
	type minionRet struct {
		minion string
		at     time.Time
	}
	rets := map[string][]minionRet{} // job id → its minions' returns
	for _, e := range events {
		f := strings.Split(e.Tag, "/")
		switch {
		case len(f) == 4 && f[0] == "salt" && f[1] == "run" && f[3] == "new":
			started[f[2]] = e.Stamp
		case len(f) == 5 && f[0] == "salt" && f[1] == "job" && f[3] == "ret":
			rets[f[2]] = append(rets[f[2]], minionRet{f[4], e.Stamp})
		}
	}
	var out []Orchestration
	for _, e := range events {
		f := strings.Split(e.Tag, "/")
		if len(f) != 4 || f[0] != "salt" || f[1] != "run" || f[3] != "ret" {
			continue
		}
		var run struct {
			Fun    string `json:"fun"`
			Args   []any  `json:"fun_args"`
			Return struct {
				Data map[string]map[string]struct {
					ID       string  `json:"__id__"`
					JID      string  `json:"__jid__"`
					Name     any     `json:"name"`
					Start    string  `json:"start_time"`
					Duration float64 `json:"duration"`
					Result   *bool   `json:"result"`
				} `json:"data"`
			} `json:"return"`
		}
		if json.Unmarshal(e.Data, &run) != nil || run.Fun != "runner.state.orchestrate" {
			continue
		}
		o := Orchestration{Mods: orchMods(run.Args), Started: started[f[2]], Returned: e.Stamp}
		for _, states := range run.Return.Data {
			for key, s := range states {
				st := Step{ID: s.ID, Took: time.Duration(s.Duration * float64(time.Millisecond)), Result: s.Result != nil && *s.Result}
				st.Start = clockOn(s.Start, e.Stamp)
				if parts := strings.Split(key, "_|-"); len(parts) == 4 {
					st.Function = parts[0] + "." + parts[3]
				}
				for _, r := range rets[s.JID] {
					st.Minions++
					if r.at.After(st.LastAt) {
						st.Last, st.LastAt = r.minion, r.at
					}
				}
				o.Steps = append(o.Steps, st)
			}
		}
		sort.Slice(o.Steps, func(i, j int) bool { return o.Steps[i].Start.Before(o.Steps[j].Start) })
		out = append(out, o)
	}
	return out
}

// orchMods finds the orchestration's name in the runner's arguments.
func orchMods(args []any) string {
	for _, a := range args {
		switch v := a.(type) {
		case string:
			return v
		case map[string]any:
			if m, ok := v["mods"].(string); ok {
				return m
			}
		}
	}
	return "?"
}

// clockOn is a state's start_time (the master's local clock, no date)
// on the day of ref, the run's return; a time after ref was the day
// before.
func clockOn(clock string, ref time.Time) time.Time {
	local := ref.In(time.Local)
	t, err := time.ParseInLocation("15:04:05.999999", clock, time.Local)
	if err != nil {
		return time.Time{}
	}
	at := time.Date(local.Year(), local.Month(), local.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.Local)
	if at.After(ref.Add(time.Minute)) {
		at = at.AddDate(0, 0, -1)
	}
	return at
}

// firstEvent is the first event whose tag is tag, and whether there is one.
func firstEvent(events []saltEvent, tag string) (time.Time, bool) {
	for _, e := range events {
		if e.Tag == tag {
			return e.Stamp, true
		}
	}
	return time.Time{}, false
}

// printTimeline prints each orchestration's steps with their start from
// t0, their duration, and the minion each waited for last.
func (l *Lab) printTimeline(events []saltEvent, t0 time.Time, from string) {
	off := func(t time.Time) string {
		if t.IsZero() {
			return "     ?"
		}
		return fmt.Sprintf("%+6.1fs", t.Sub(t0).Seconds())
	}
	for _, o := range orchestrations(events) {
		l.say("    %s: started %s, returned %s (times from %s)", o.Mods, off(o.Started), off(o.Returned), from)
		for _, s := range o.Steps {
			waited := ""
			if s.Minions > 0 {
				waited = fmt.Sprintf("  %d minion(s), last %s at %s", s.Minions, s.Last, off(s.LastAt))
			}
			failed := ""
			if !s.Result {
				failed = "  FAILED"
			}
			l.say("      %s %6.1fs  %-36s %-22s%s%s", off(s.Start), s.Took.Seconds(), s.ID, s.Function, waited, failed)
		}
	}
}

// pingPoller asks target test.ping, one job at a time (a second's wait,
// no find_job round), until it first answers: with the events recorded,
// that return is when the minion first answered, the floor no
// orchestration can beat. One job at a time: publishes reach every minion
// and each return loads the master, so a faster poll would load the very
// lab it measures.
const pingPoller = `
import sys, time
import salt.client
c = salt.client.LocalClient(c_path=sys.argv[1])
while True:
    try:
        if c.cmd(sys.argv[2], "test.ping", timeout=1, gather_job_timeout=1).get(sys.argv[2]) is True:
            break
    except Exception as exc:
        print(exc, file=sys.stderr)
    time.sleep(0.2)
`

// pollPing starts the poller; the returned function stops it.
func (l *Lab) pollPing(target string) (func(), error) {
	cmd := exec.Command("ip", "netns", "exec", l.masterNS(), filepath.Join(l.SaltBin, "python3"), "-c", pingPoller,
		filepath.Join(l.masterDir(), "master"), target)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if f, err := os.OpenFile(filepath.Join(l.masterDir(), "salt-run.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}, nil
}

// firstPing is when minion first returned a test.ping, and whether it did.
func firstPing(events []saltEvent, minion string) (time.Time, bool) {
	for _, e := range events {
		f := strings.Split(e.Tag, "/")
		if len(f) != 5 || f[0] != "salt" || f[1] != "job" || f[3] != "ret" || f[4] != minion {
			continue
		}
		var d struct {
			Fun    string `json:"fun"`
			Return any    `json:"return"`
		}
		if json.Unmarshal(e.Data, &d) == nil && d.Fun == "test.ping" && d.Return == true {
			return e.Stamp, true
		}
	}
	return time.Time{}, false
}

// orchestrationReturned reports whether an orchestration of mods has
// returned since the recorder started.
func (r *eventRecorder) orchestrationReturned(mods string) bool {
	r.mu.Lock()
	events := append([]saltEvent(nil), r.events...)
	r.mu.Unlock()
	for _, o := range orchestrations(events) {
		if o.Mods == mods {
			return true
		}
	}
	return false
}
