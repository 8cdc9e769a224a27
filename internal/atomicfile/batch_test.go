package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "f0"), []byte("old"), 0o644)
	var files []File
	for i := 0; i < 50; i++ {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if i%2 == 1 {
			p = filepath.Join(dir, "sub", fmt.Sprintf("f%d", i))
		}
		files = append(files, File{Path: p, Data: []byte(fmt.Sprint("data", i)), Perm: os.FileMode(0o600 + (i%2)*0o44)})
	}
	if err := WriteFiles(files, 8); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		data, err := os.ReadFile(f.Path)
		st, _ := os.Stat(f.Path)
		if err != nil || string(data) != fmt.Sprint("data", i) || st.Mode().Perm() != f.Perm {
			t.Errorf("%s: %q %v mode %v", f.Path, data, err, st.Mode())
		}
	}
	// No temp file is left behind, also when a write fails.
	err := WriteFiles([]File{{Path: filepath.Join(dir, "missing-dir", "x"), Data: []byte("x"), Perm: 0o600}, {Path: filepath.Join(dir, "ok"), Data: []byte("y"), Perm: 0o600}}, 2)
	if err == nil {
		t.Error("no error for a missing directory")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}
