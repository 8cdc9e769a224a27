package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type pkiOut struct {
	Result  *bool                        `json:"result"`
	Changes map[string]map[string]string `json:"changes"`
	Comment string                       `json:"comment"`
	Data    json.RawMessage              `json:"data"`
}

func runPKI(t *testing.T, stdin string, args ...string) (int, pkiOut, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(&streams{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr}, args)
	var out pkiOut
	if !strings.Contains(strings.Join(args, " "), "table") {
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("%v: stdout is not one JSON object: %v\n%s", args, err, stdout.String())
		}
	}
	return code, out, stdout.String() + stderr.String()
}

func TestPKICommands(t *testing.T) {
	def, err := os.ReadFile("../../pillar.example")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pki")

	code, out, _ := runPKI(t, string(def), "pki", "issue", "--definition", "-", "--dir", dir, "--test")
	if code != 0 || out.Result != nil || out.Changes["issued"]["ca"] != "new" {
		t.Errorf("--test: code %d result %v changes %v", code, out.Result, out.Changes)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("--test created %s", dir)
	}
	code, out, _ = runPKI(t, string(def), "pki", "issue", "--definition", "-", "--dir", dir)
	if code != 0 || out.Result == nil || !*out.Result || len(out.Changes["issued"]) != 23 || out.Changes["kubeconfigs"]["worker-2/kubelet"] != "new" {
		t.Errorf("issue: code %d result %v changes %v", code, out.Result, out.Changes)
	}
	code, out, _ = runPKI(t, string(def), "pki", "issue", "--definition", "-", "--dir", dir, "--test")
	if code != 0 || out.Result == nil || !*out.Result || len(out.Changes) != 0 || !strings.Contains(out.Comment, "all 21 certificates") {
		t.Errorf("no-op: code %d result %v changes %v comment %q", code, out.Result, out.Changes, out.Comment)
	}
	code, out, _ = runPKI(t, string(def), "pki", "issue", "--definition", "-", "--dir", dir, "--reissue", "admin,worker-0/kubelet")
	if code != 0 || out.Changes["issued"]["admin"] != "requested" || out.Changes["issued"]["worker-0/kubelet"] != "requested" {
		t.Errorf("--reissue: %v", out.Changes)
	}

	code, out, _ = runPKI(t, "", "pki", "check", "--dir", dir)
	var report struct {
		Certificates []struct {
			Name     string   `json:"name"`
			Subject  string   `json:"subject"`
			SANs     []string `json:"sans"`
			NotAfter string   `json:"not_after"`
			DaysLeft int      `json:"days_left"`
		} `json:"certificates"`
	}
	if err := json.Unmarshal(out.Data, &report); err != nil || code != 0 || len(report.Certificates) != 21 || report.Certificates[0].Name != "ca" || report.Certificates[0].DaysLeft < 3600 {
		t.Errorf("check: code %d err %v %+v", code, err, report)
	}
	// Everything is inside a 9000h window: exit 1.
	if code, out, _ = runPKI(t, "", "pki", "check", "--dir", dir, "--renew-before", "9000h"); code != 1 || *out.Result {
		t.Errorf("check with a wide window: code %d %v", code, out.Comment)
	}
	code, _, text := runPKI(t, "", "pki", "check", "--dir", dir, "--output", "table")
	if code != 0 || !strings.Contains(text, "CERTIFICATE") || !strings.Contains(text, "CN=system:node:worker-1,O=system:nodes") {
		t.Errorf("table:\n%s", text)
	}

	code, out, _ = runPKI(t, string(def), "pki", "bundle", "--node", "worker-1", "--dir", dir, "--definition", "-")
	var b struct {
		Node, Role string
		Files      map[string]struct{ Contents, Mode string }
	}
	if err := json.Unmarshal(out.Data, &b); err != nil || code != 0 || b.Node != "worker-1" || b.Role != "worker" || len(b.Files) != 5 || b.Files["kubelet-key.pem"].Mode != "0600" {
		t.Errorf("bundle: code %d %v %+v", code, err, b)
	}

	bad := []struct {
		stdin string
		args  []string
		want  string
	}{
		{string(def), []string{"pki", "issue", "--definition", "-"}, "pass --dir"},
		{"", []string{"pki", "issue", "--dir", dir}, "--definition is required"},
		{strings.Replace(string(def), "algorithm: ecdsa-p256", "algorithm: dsa", 1), []string{"pki", "issue", "--definition", "-", "--dir", dir}, "kubernetes:pki:algorithm"},
		{string(def), []string{"pki", "issue", "--definition", "-", "--dir", dir, "--reissue", "nobody"}, `--reissue "nobody": no such certificate`},
		{string(def), []string{"pki", "issue", "--definition", "-", "--dir", dir, "--renew-before", "soon"}, "--renew-before"},
		{"", []string{"pki", "check", "--dir", filepath.Join(dir, "nope")}, "no such PKI directory"},
		{string(def), []string{"pki", "bundle", "--node", "nobody", "--dir", dir, "--definition", "-"}, `--node "nobody": no such node`},
	}
	for _, c := range bad {
		code, out, text := runPKI(t, c.stdin, c.args...)
		if code != 2 || out.Result == nil || *out.Result || !strings.Contains(text, c.want) {
			t.Errorf("%v: code %d, want 2 and %q in\n%s", c.args, code, c.want, text)
		}
	}

	// A corrupt file is a failure (exit 1) that names the file and the fix.
	os.WriteFile(filepath.Join(dir, "kube-proxy.pem"), []byte("junk"), 0o644)
	code, out, _ = runPKI(t, string(def), "pki", "issue", "--definition", "-", "--dir", dir)
	if code != 1 || !strings.Contains(out.Comment, "kube-proxy.pem: not a PEM certificate; remove it or run with --reissue kube-proxy") {
		t.Errorf("corrupt: code %d %q", code, out.Comment)
	}
}

// The rotation schedule's commands: nothing due on a fresh set; a
// certificate reissued sends its node (and only it); confirmed with
// `pki distributed`, nothing is sent again. Bad input is exit 2.
func TestPKIRotateCommands(t *testing.T) {
	def, err := os.ReadFile("../../pillar.example")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pki")
	if code, _, text := runPKI(t, string(def), "pki", "issue", "--definition", "-", "--dir", dir); code != 0 {
		t.Fatal(text)
	}
	var data struct {
		Dispatch     []string          `json:"dispatch"`
		Waiting      []string          `json:"waiting"`
		Due          map[string]string `json:"due"`
		Certificates []struct {
			Name string `json:"name"`
		} `json:"certificates"`
	}
	code, out, _ := runPKI(t, string(def), "pki", "rotate", "--definition", "-", "--dir", dir)
	if json.Unmarshal(out.Data, &data); code != 0 || len(data.Dispatch) != 0 || len(data.Certificates) != 21 || !strings.Contains(out.Comment, "nothing due") {
		t.Errorf("fresh set: %d %q %+v", code, out.Comment, data)
	}
	// A kubelet certificate reissued (by hand, or by a highstate of the
	// CA minion): the schedule's run sends its node, and only it.
	code, out, _ = runPKI(t, string(def), "pki", "issue", "--definition", "-", "--dir", dir, "--reissue", "worker-1/kubelet")
	if code != 0 {
		t.Fatal(out.Comment)
	}
	code, out, _ = runPKI(t, string(def), "pki", "rotate", "--definition", "-", "--dir", dir)
	if json.Unmarshal(out.Data, &data); code != 0 || len(data.Dispatch) != 1 || data.Dispatch[0] != "worker-1" || !strings.Contains(out.Comment, "1 nodes to take their new bundle: worker-1") ||
		out.Changes["dispatch"]["worker-1"] != "its bundle changed since it last took one" {
		t.Errorf("after a reissue: %d %q %+v", code, out.Comment, data)
	}
	code, out, _ = runPKI(t, string(def), "pki", "rotate", "--definition", "-", "--dir", dir)
	if json.Unmarshal(out.Data, &data); code != 0 || len(data.Dispatch) != 0 || len(data.Waiting) != 1 {
		t.Errorf("while distributing: %d %q %+v", code, out.Comment, data)
	}
	if code, out, _ = runPKI(t, "", "pki", "distributed", "--dir", dir, "--node", "worker-1"); code != 0 || !strings.Contains(out.Comment, "recorded 1 nodes") {
		t.Errorf("distributed: %d %q", code, out.Comment)
	}
	code, out, _ = runPKI(t, string(def), "pki", "rotate", "--definition", "-", "--dir", dir)
	if json.Unmarshal(out.Data, &data); code != 0 || len(data.Dispatch)+len(data.Waiting) != 0 {
		t.Errorf("confirmed: %d %q %+v", code, out.Comment, data)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{string(def), []string{"pki", "rotate", "--definition", "-"}, "pass --dir"},
		{string(def), []string{"pki", "rotate", "--definition", "-", "--dir", dir, "--retry-after", "never"}, "--retry-after"},
		{"", []string{"pki", "distributed", "--dir", dir}, "--dir and --node are required"},
		{"", []string{"pki", "distributed", "--dir", filepath.Join(dir, "nope"), "--node", "a"}, "no such PKI directory"},
	} {
		code, _, text := runPKI(t, c.stdin, c.args...)
		if code != 2 || !strings.Contains(text, c.want) {
			t.Errorf("%v: code %d, want 2 and %q in\n%s", c.args, code, c.want, text)
		}
	}
}
