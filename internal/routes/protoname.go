package routes

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
)

// DefaultProtosDir is where iproute2 reads extra protocol names. kubesalt
// writes there only when asked (routes sync --rt-protos-dir).
const DefaultProtosDir = "/etc/iproute2/rt_protos.d"

// RegisterProtocolName makes `ip route` show proto as "kubesalt" by writing
// <dir>/kubesalt.conf. It reports whether the file changed.
func RegisterProtocolName(dir string, proto int) (bool, error) {
	path := filepath.Join(dir, "kubesalt.conf")
	want := fmt.Sprintf("# written by kubesalt: the protocol number of the routes it owns\n%d\tkubesalt\n", proto)
	if old, err := os.ReadFile(path); err == nil && string(old) == want {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	return true, atomicfile.WriteFile(path, []byte(want), 0o644)
}
