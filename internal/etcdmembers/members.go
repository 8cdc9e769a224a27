// Package etcdmembers keeps etcd's member list to the cluster definition's
// masters: a master that left the definition is removed from etcd
// (`etcdctl member remove`), so the remaining members' quorum no longer
// counts it. Prune (pure) decides; Etcdctl lists and removes.
package etcdmembers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Member is one etcd member as `etcdctl member list -w json` prints it.
type Member struct {
	ID       uint64   `json:"id"`
	Name     string   `json:"name"`
	PeerURLs []string `json:"peer_urls"`
}

// HexID is the member's ID as etcdctl takes it.
func (m Member) HexID() string { return strconv.FormatUint(m.ID, 16) }

// Parse reads `etcdctl member list -w json`.
func Parse(data []byte) ([]Member, error) {
	var list struct {
		Members []struct {
			ID       uint64   `json:"ID"`
			Name     string   `json:"name"`
			PeerURLs []string `json:"peerURLs"`
		} `json:"members"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&list); err != nil {
		return nil, fmt.Errorf("etcdctl member list -w json: %v", err)
	}
	var out []Member
	for _, m := range list.Members {
		out = append(out, Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Prune returns the members to remove: those named, whose name is not in
// keep (the definition's masters). A member without a name has been added
// but has not started yet (a master joining): it is left alone. It refuses
// when keep is empty or names none of the members, since that is a wrong
// definition or the wrong cluster, not masters that left.
func Prune(members []Member, keep []string) ([]Member, error) {
	if len(keep) == 0 {
		return nil, fmt.Errorf("no master to keep: give the definition's masters (--keep master-0,master-1,...)")
	}
	want := map[string]bool{}
	for _, k := range keep {
		want[k] = true
	}
	var remove []Member
	kept := 0
	for _, m := range members {
		switch {
		case m.Name == "":
		case want[m.Name]:
			kept++
		default:
			remove = append(remove, m)
		}
	}
	if kept == 0 {
		var names []string
		for _, m := range members {
			names = append(names, m.Name)
		}
		return nil, fmt.Errorf("none of etcd's members %v is a master to keep %v: the wrong cluster or a wrong --keep; nothing removed", names, keep)
	}
	return remove, nil
}

// Etcdctl runs etcdctl against endpoints with TLS client flags.
type Etcdctl struct {
	Path      string
	Endpoints []string
	// CACert, Cert, Key are the TLS files (--cacert, --cert, --key).
	CACert, Cert, Key string
	Timeout           time.Duration
}

func (e Etcdctl) run(ctx context.Context, args ...string) ([]byte, error) {
	argv := []string{"--endpoints", strings.Join(e.Endpoints, ","), "--cacert", e.CACert, "--cert", e.Cert, "--key", e.Key,
		"--dial-timeout", "3s", "--command-timeout", e.Timeout.String()}
	cmd := exec.CommandContext(ctx, e.Path, append(argv, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v: %s", e.Path, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// List lists the members.
func (e Etcdctl) List(ctx context.Context) ([]Member, error) {
	out, err := e.run(ctx, "member", "list", "-w", "json")
	if err != nil {
		return nil, err
	}
	return Parse(out)
}

// Remove removes one member.
func (e Etcdctl) Remove(ctx context.Context, m Member) error {
	_, err := e.run(ctx, "member", "remove", m.HexID())
	return err
}
