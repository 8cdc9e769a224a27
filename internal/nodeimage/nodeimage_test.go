package nodeimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func saltext(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range map[string]string{
		"pyproject.toml":                   "[project]\nname = \"saltext-kubesalt\"\n",
		"src/saltext/kubesalt/__init__.py": "",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The cache key follows every input: the Salt release and any file of the
// extension; it is the same for the same inputs.
func TestKeyFollowsInputs(t *testing.T) {
	dir := saltext(t)
	in := Inputs{SaltVersion: "3008.4", Saltext: dir, Pip: "true"}
	k1, err := in.Key()
	if err != nil {
		t.Fatal(err)
	}
	if k2, _ := in.Key(); k2 != k1 {
		t.Fatalf("the same inputs gave %s and %s", k1, k2)
	}
	other := in
	other.SaltVersion = "3008.3"
	if k, _ := other.Key(); k == k1 {
		t.Error("another Salt release kept the key")
	}
	if err := os.WriteFile(filepath.Join(dir, "src/saltext/kubesalt/__init__.py"), []byte("# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k, _ := in.Key(); k == k1 {
		t.Error("a changed extension file kept the key")
	}
}

// Bad inputs name the field and the fix, before anything is made.
func TestBuildRejectsBadInputs(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	for name, tc := range map[string]struct {
		in   Inputs
		want string
	}{
		"no salt":    {Inputs{Saltext: saltext(t), Pip: "true"}, "SaltVersion is empty"},
		"no saltext": {Inputs{SaltVersion: "3008.4", Saltext: t.TempDir(), Pip: "true"}, "has no pyproject.toml"},
		"no pip":     {Inputs{SaltVersion: "3008.4", Saltext: saltext(t), Pip: "no-such-pip"}, "make venv"},
	} {
		_, _, err := Build(cache, tc.in, os.Stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("a rejected build made %s", cache)
	}
}

// What a wheel's build and Python write beside the sources (egg-info,
// bytecode) does not change the key.
func TestKeyIgnoresBuildOutput(t *testing.T) {
	dir := saltext(t)
	in := Inputs{SaltVersion: "3008.4", Saltext: dir, Pip: "true"}
	k1, _ := in.Key()
	for _, p := range []string{"src/saltext_kubesalt.egg-info/PKG-INFO", "src/saltext/kubesalt/__pycache__/x.pyc"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644)
	}
	if k, _ := in.Key(); k != k1 {
		t.Error("build output changed the key")
	}
}

func TestPruneOthersKeepsOnlyTheNewImage(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"node-old.qcow2", "node-new.qcow2", "tree", "node-new.qcow2.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pruneOthers(dir, filepath.Join(dir, "node-new.qcow2"))
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != "node-new.qcow2 node-new.qcow2.tmp tree" {
		t.Fatalf("left %v, want the new image and the rest untouched", left)
	}
}
