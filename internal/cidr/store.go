package cidr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
	"github.com/kubesalt/kubesalt/internal/cluster"
)

// ReadPlan reads a plan file; a missing file is an empty plan.
func ReadPlan(path string) (Plan, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Plan{Nodes: map[string][]netip.Prefix{}}, nil
	}
	if err != nil {
		return Plan{}, err
	}
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return Plan{}, fmt.Errorf("plan file %s is corrupt (%v); restore it from a backup, or remove it to re-plan every node (which moves their pod CIDRs)", path, err)
	}
	if p.Nodes == nil {
		p.Nodes = map[string][]netip.Prefix{}
	}
	return p, nil
}

// nextRevision is the revision after prev: unchanged when nothing
// changed, else now, or prev+1 if the clock is behind prev.
func nextRevision(prev int64, changed bool, now time.Time) int64 {
	if !changed {
		return prev
	}
	return max(prev+1, now.UnixNano())
}

func encode(p Plan) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	_ = enc.Encode(p) // maps and prefixes always encode
	return buf.Bytes()
}

// Update plans def against the plan stored at path and, unless test is
// set, stores the result. The whole read-plan-write runs under a lock, so
// two planners at once cannot hand one block out twice.
func Update(path string, def *cluster.Definition, test bool) (Plan, Changes, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Plan{}, Changes{}, err
	}
	unlock, err := atomicfile.Lock(path + ".lock")
	if err != nil {
		return Plan{}, Changes{}, err
	}
	defer unlock()
	prev, err := ReadPlan(path)
	if err != nil {
		return Plan{}, Changes{}, err
	}
	next, ch, err := Compute(def, prev)
	if err != nil {
		return Plan{}, Changes{}, err
	}
	next.Revision = nextRevision(prev.Revision, !ch.Empty(), time.Now())
	if test {
		return next, ch, nil
	}
	data := encode(next)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return next, ch, nil
	}
	return next, ch, atomicfile.WriteFile(path, data, 0o600)
}
