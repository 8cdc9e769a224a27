// Package etcdbackup takes etcd snapshots into a directory, keeps the
// newest few, and restores a member's data directory from one snapshot.
// It drives Debian's or upstream's etcdctl (3.4+) and, where present,
// etcdutl (3.5+, which owns `snapshot restore` there).
package etcdbackup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Snapshot is one snapshot file of a directory.
type Snapshot struct {
	Path  string    `json:"path"`
	Taken time.Time `json:"taken"`
	Size  int64     `json:"size"`
}

const (
	prefix     = "etcd-"
	suffix     = ".db"
	timeLayout = "20060102T150405Z"
)

// FileName is the snapshot of member taken at t: names sort by time.
func FileName(member string, t time.Time) string {
	return prefix + member + "-" + t.UTC().Format(timeLayout) + suffix
}

// takenAt reads the time out of a FileName; false for other files.
func takenAt(name string) (time.Time, bool) {
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) || len(name) < len(prefix)+len(timeLayout)+len(suffix)+1 {
		return time.Time{}, false
	}
	stamp := name[len(name)-len(suffix)-len(timeLayout) : len(name)-len(suffix)]
	t, err := time.Parse(timeLayout, stamp)
	return t, err == nil
}

// List returns the directory's snapshots, newest first; other files are
// not snapshots and are left out. A missing directory has none.
func List(dir string) ([]Snapshot, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, e := range entries {
		t, ok := takenAt(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, Snapshot{Path: filepath.Join(dir, e.Name()), Taken: t, Size: info.Size()})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Taken.Equal(out[j].Taken) {
			return out[i].Taken.After(out[j].Taken)
		}
		return out[i].Path > out[j].Path
	})
	return out, nil
}

// Expired is what keeping the newest keep of list (newest first) drops.
func Expired(list []Snapshot, keep int) []Snapshot {
	if keep < 1 || len(list) <= keep {
		return nil
	}
	return list[keep:]
}

// Client is how to reach etcd: etcdctl and its TLS flags.
type Client struct {
	Etcdctl   string
	Endpoints string // comma-separated client URLs
	CACert    string
	Cert      string
	Key       string
}

// flags are etcdctl's; the TLS ones only where given (an http:// endpoint
// needs none).
func (c Client) flags() []string {
	out := []string{"--endpoints=" + c.Endpoints, "--dial-timeout=5s"}
	for _, f := range []struct{ flag, v string }{{"--cacert=", c.CACert}, {"--cert=", c.Cert}, {"--key=", c.Key}} {
		if f.v != "" {
			out = append(out, f.flag+f.v)
		}
	}
	return out
}

// Validate names the first missing field (by its flag).
func (c Client) Validate() error {
	switch {
	case c.Etcdctl == "":
		return errors.New("--etcdctl is empty: give the etcdctl binary")
	case c.Endpoints == "":
		return errors.New("--endpoints is empty: give etcd's client URL")
	case (c.Cert == "") != (c.Key == ""):
		return errors.New("--cert and --key go together: give both (a client certificate and its key) or neither")
	}
	return nil
}

// SaveResult is what a Save did.
type SaveResult struct {
	Saved   Snapshot   `json:"saved"`
	Removed []string   `json:"removed,omitempty"`
	Kept    []Snapshot `json:"kept"`
}

// Save takes a snapshot of member through c into dir (made 0700), named
// FileName(member, now), written under a temporary name and renamed once
// whole (never a half snapshot under a snapshot's name), then removes all
// but the newest keep.
func Save(ctx context.Context, c Client, dir, member string, keep int, now time.Time) (SaveResult, error) {
	var res SaveResult
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	final := filepath.Join(dir, FileName(member, now))
	part := filepath.Join(dir, ".saving-"+filepath.Base(final))
	os.Remove(part)
	cmd := exec.CommandContext(ctx, c.Etcdctl, append(c.flags(), "snapshot", "save", part)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(part)
		os.Remove(part + ".part") // etcdctl's own temporary file
		return res, fmt.Errorf("etcdctl snapshot save: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := os.Chmod(part, 0o600); err != nil {
		return res, err
	}
	if err := os.Rename(part, final); err != nil {
		return res, err
	}
	list, err := List(dir)
	if err != nil {
		return res, err
	}
	for _, s := range Expired(list, keep) {
		if err := os.Remove(s.Path); err != nil {
			return res, err
		}
		res.Removed = append(res.Removed, s.Path)
	}
	res.Kept = list[:min(len(list), max(keep, 1))]
	for _, s := range list {
		if s.Path == final {
			res.Saved = s
		}
	}
	return res, nil
}

// Member is one member's restore: its name and peer URL, the cluster's
// initial membership (name=peerURL,...) and token, and its data directory.
type Member struct {
	Name           string
	PeerURL        string
	InitialCluster string
	Token          string
	DataDir        string
}

// Validate names the first missing field (by its flag).
func (m Member) Validate() error {
	for _, f := range []struct{ v, flag string }{{m.Name, "--member"}, {m.PeerURL, "--peer-url"}, {m.InitialCluster, "--initial-cluster"}, {m.Token, "--token"}, {m.DataDir, "--data-dir"}} {
		if f.v == "" {
			return fmt.Errorf("%s is empty: give it", f.flag)
		}
	}
	if !strings.Contains(m.InitialCluster, m.Name+"="+m.PeerURL) {
		return fmt.Errorf("--initial-cluster %q does not hold this member (%s=%s): give every member as name=peer-url", m.InitialCluster, m.Name, m.PeerURL)
	}
	return nil
}

// Restore replaces m's data with the snapshot's: the tool (etcdutl, or
// etcdctl where there is no etcdutl: etcd 3.4) restores into a temporary
// directory inside the data directory, then its member directory takes
// the old one's place. Inside, not beside: the data directory may be a
// mount point, and a rename does not cross file systems. etcd must not
// run.
func Restore(ctx context.Context, tool, snapshot string, m Member) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if info, err := os.Stat(snapshot); err != nil || !info.Mode().IsRegular() {
		return fmt.Errorf("snapshot %s: not a file (%v): give a snapshot that etcdctl snapshot save wrote", snapshot, err)
	}
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(m.DataDir, ".restoring")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, tool, "snapshot", "restore", snapshot, "--name="+m.Name, "--initial-cluster="+m.InitialCluster,
		"--initial-advertise-peer-urls="+m.PeerURL, "--initial-cluster-token="+m.Token, "--data-dir="+tmp)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("%s snapshot restore: %v: %s", filepath.Base(tool), err, strings.TrimSpace(string(out)))
	}
	member := filepath.Join(m.DataDir, "member")
	if err := os.RemoveAll(member); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(tmp, "member"), member); err != nil {
		return err
	}
	return os.RemoveAll(tmp)
}

// RestoreTool is etcdutl when it is installed (3.5+), else etcdctl.
func RestoreTool(etcdutl, etcdctl string) string {
	if info, err := os.Stat(etcdutl); etcdutl != "" && err == nil && info.Mode()&0o111 != 0 {
		return etcdutl
	}
	return etcdctl
}
