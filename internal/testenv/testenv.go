// Package testenv decides whether a test may use what lies beyond Go and
// its temporary directories: root, namespaces, daemons (etcd, containerd,
// libvirtd, an API server), Salt, a lab. Such a test calls Root first, so
// `go test -short` (make unit) runs everything else, without root.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Root skips the test under -short or when not root; why says what the
// test does with root, for the skip message.
func Root(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: skips a test that needs root to %s (make test runs it)", why)
	}
	if os.Geteuid() != 0 {
		t.Skipf("needs root to %s (CI runs as root)", why)
	}
}

// Tools skips the test unless every tool is on PATH; install says how to
// get them (for example "apt-get install etcd-server etcd-client").
func Tools(t testing.TB, install string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (%s; `make test` installs it)", tool, install)
		}
	}
}
