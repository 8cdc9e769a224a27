package virt

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirt"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
)

// Hypervisor is one libvirt connection.
type Hypervisor struct {
	URI  string
	conn *libvirt.Connect
	// driver is the connection's driver type ("QEMU", "TEST", ...).
	driver string
}

// Connect opens uri. An unreachable hypervisor is reported with the URI
// and where it came from.
func Connect(uri string) (*Hypervisor, error) {
	conn, err := libvirt.NewConnect(uri)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to libvirt at %s (kubernetes:libvirt:uri or --connect): %s; check that libvirtd runs there and that you may use it", uri, libvirtMessage(err))
	}
	typ, err := conn.GetType()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("libvirt at %s: %s", uri, libvirtMessage(err))
	}
	return &Hypervisor{URI: uri, conn: conn, driver: strings.ToUpper(typ)}, nil
}

// Close closes the connection.
func (h *Hypervisor) Close() {
	if h != nil && h.conn != nil {
		h.conn.Close()
		h.conn = nil
	}
}

// isTestDriver tells whether this is libvirt's in-memory test driver,
// whose domains have type "test" and which cannot store volume contents.
func (h *Hypervisor) isTestDriver() bool { return h.driver == "TEST" }

// hasCode tells whether err is a libvirt error with code c.
func hasCode(err error, c libvirt.ErrorNumber) bool {
	var le libvirt.Error
	return errors.As(err, &le) && le.Code == c
}

// libvirtMessage is the human part of a libvirt error.
func libvirtMessage(err error) string {
	var le libvirt.Error
	if errors.As(err, &le) {
		return le.Message
	}
	return err.Error()
}

// wrap names what failed, with libvirt's message.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %s", fmt.Sprintf(format, args...), libvirtMessage(err))
}

// LockURI serialises the kubesalt-virt runs on this machine that change
// the hypervisor at uri (two `node ensure` at once would both find a node
// missing and both create it). It returns the function that releases it.
func LockURI(uri string) (unlock func(), err error) {
	sum := sha256.Sum256([]byte(uri))
	return atomicfile.Lock(filepath.Join(os.TempDir(), fmt.Sprintf("kubesalt-virt-%x.lock", sum[:8])))
}
