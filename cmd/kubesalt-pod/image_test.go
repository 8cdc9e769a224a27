package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type result struct {
	Result  *bool          `json:"result"`
	Changes map[string]any `json:"changes"`
	Comment string         `json:"comment"`
}

func runImageCmd(t *testing.T, args ...string) (result, int) {
	t.Helper()
	out, err := exec.Command(binary(t), append([]string{"image"}, args...)...).Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("image %v: %v in %q", args, err, out)
	}
	return r, code
}

func TestImageCommandWritesOnceAndHonoursTest(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pause.tar")
	r, code := runImageCmd(t, "--kind", "pause", "--file", file, "--test")
	if code != 0 || r.Result != nil || r.Changes[file] == nil {
		t.Fatalf("--test on a new file: exit %d %+v, want result null with a change", code, r)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatal("--test wrote the file")
	}
	r, code = runImageCmd(t, "--kind", "pause", "--file", file)
	if code != 0 || r.Result == nil || !*r.Result || r.Changes[file] == nil || !strings.Contains(r.Comment, "registry.k8s.io/pause:3.10 written") {
		t.Fatalf("first write: exit %d %+v", code, r)
	}
	r, code = runImageCmd(t, "--kind", "pause", "--file", file)
	if code != 0 || r.Result == nil || !*r.Result || len(r.Changes) != 0 {
		t.Fatalf("second write: exit %d %+v, want no changes", code, r)
	}
	r, code = runImageCmd(t, "--kind", "serve", "--ref", "kubesalt.local/kubesalt-pod:v2", "--file", file)
	if code != 0 || r.Changes[file] == nil {
		t.Fatalf("another image to the same file: exit %d %+v, want a change", code, r)
	}
}

func TestImageCommandRejectsBadInput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.tar")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kind", "nginx", "--file", file}, `--kind "nginx": use pause, serve or coredns`},
		{[]string{"--kind", "coredns", "--file", file}, "--kind coredns needs --from"},
		{[]string{"--kind", "coredns", "--from", file + ".missing", "--file", file}, "reading " + file + ".missing"},
		{[]string{"--kind", "pause"}, "--file is empty"},
		{[]string{"--kind", "serve", "--ref", "kubesalt-pod:v1", "--file", file}, "has no registry host"},
	} {
		r, code := runImageCmd(t, tc.args...)
		if code != 2 || r.Result == nil || *r.Result || !strings.Contains(r.Comment, tc.want) {
			t.Errorf("image %v: exit %d %+v, want exit 2 and %q", tc.args, code, r, tc.want)
		}
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Error("bad input wrote a file")
	}
}
