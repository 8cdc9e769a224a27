package lab

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

// A descriptor the lab inherited (flock's lock) does not reach the
// processes it starts.
func TestInheritedFDsStayHere(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "lock")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := syscall.Dup(int(f.Fd())) // no close-on-exec, as inherited
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	leaks := func() bool {
		return exec.Command("sh", "-c", "test -e /proc/self/fd/"+strconv.Itoa(fd)).Run() == nil
	}
	if !leaks() {
		t.Fatalf("fd %d does not reach a child even before: the test proves nothing", fd)
	}
	keepInheritedFDs()
	if leaks() {
		t.Errorf("fd %d still reaches the lab's children", fd)
	}
}
