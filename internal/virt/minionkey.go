package virt

import (
	"fmt"
	"os"
)

// checkPKIDir makes sure dir looks like a Salt master's pki_dir.
func checkPKIDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("--master-pki-dir %s: not a directory; give the Salt master's pki_dir (default /etc/salt/pki/master)", dir)
	}
	return nil
}
