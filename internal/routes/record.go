package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
	"github.com/kubesalt/kubesalt/internal/cluster"
)

// DefaultRecord is where `routes sync --record` keeps what it ran with, and
// where `routes watch` reads it.
const DefaultRecord = "/var/lib/kubesalt/routes.json"

// Record is what the last applied route sync reconciled with: the node
// list and the options that make its desired routes. The watcher runs the
// same reconcile from it between state runs.
type Record struct {
	Self     string           `json:"self,omitempty"`
	Protocol int              `json:"protocol"`
	Table    int              `json:"table"`
	Plain    bool             `json:"plain,omitempty"`
	Nodes    []cluster.Member `json:"nodes"`
	// Revision is the plan revision of Nodes (`kubesalt cidr plan`), 0
	// when the sync was given none.
	Revision int64 `json:"revision,omitempty"`
}

// Supersedes reports whether r holds a newer node list than one of plan
// revision rev: a sync of that list would take newer nodes' routes away
// (a state run whose pillar was compiled before a node was added,
// finishing after the sync that routed it). A list without a revision is
// never superseded.
func (r Record) Supersedes(rev int64) bool { return rev > 0 && r.Revision > rev }

// LockRecord takes the lock that the sync and the watcher hold while they
// reconcile from path, so that neither acts on a node list the other is
// replacing (nor reports the other's fresh route as a conflict).
func LockRecord(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return atomicfile.Lock(path + ".lock")
}

// WriteRecord replaces path with r atomically; an unchanged record is not
// rewritten. It reports whether the file changed.
func WriteRecord(path string, r Record) (bool, error) {
	if r.Nodes == nil {
		r.Nodes = []cluster.Member{}
	}
	data, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	data = append(data, '\n')
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	return true, atomicfile.WriteFile(path, data, 0o644)
}

// ErrNoRecord: no route sync has recorded its node list yet.
var ErrNoRecord = errors.New("no route sync has recorded its node list yet")

// ReadRecord reads and checks the record at path.
func ReadRecord(path string) (Record, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, fmt.Errorf("%s: %w; it appears with the first `kubesalt routes sync --record %s` (the formula's state run)", path, ErrNoRecord, path)
	}
	if err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(data, &struct {
		Self     *string `json:"self"`
		Protocol *int    `json:"protocol"`
		Table    *int    `json:"table"`
		Plain    *bool   `json:"plain"`
		Revision *int64  `json:"revision"`
	}{&r.Self, &r.Protocol, &r.Table, &r.Plain, &r.Revision}); err != nil {
		return Record{}, fmt.Errorf("%s: %v; remove it and run `kubesalt routes sync --record %s` again", path, err, path)
	}
	if r.Nodes, err = cluster.ParseNodeList(data); err != nil {
		return Record{}, fmt.Errorf("%s: %v", path, err)
	}
	if r.Protocol < 5 || r.Protocol > 255 {
		return Record{}, fmt.Errorf("%s: protocol %d is not one kubesalt owns routes by (5-255); run the route sync again", path, r.Protocol)
	}
	return r, nil
}
