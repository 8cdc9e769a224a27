package atomicfile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// Processes that read-increment-write a counter under Lock lose no update.
func TestLockSerialisesProcesses(t *testing.T) {
	if path := os.Getenv("ATOMICFILE_COUNTER"); path != "" {
		for i := 0; i < 50; i++ {
			unlock, err := Lock(path + ".lock")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			n, _ := strconv.Atoi(string(b))
			if err := WriteFile(path, []byte(strconv.Itoa(n+1)), 0o600); err != nil {
				t.Fatal(err)
			}
			unlock()
		}
		return
	}
	path := filepath.Join(t.TempDir(), "counter")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run", "^TestLockSerialisesProcesses$")
			cmd.Env = append(os.Environ(), "ATOMICFILE_COUNTER="+path)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("%v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "200" {
		t.Errorf("counter = %s, want 200: an update was lost", b)
	}
}

func TestWriteFileReplacesWithModeAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	if err := WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(b) != "two" || st.Mode().Perm() != 0o644 {
		t.Errorf("content %q mode %v", b, st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
}
