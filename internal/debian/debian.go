// Package debian makes Debian 12 trees from this machine's own apt archive:
// a guest's root (make e2e-vm) and the base of the conformance images.
package debian

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Suite is the release every tree is made of.
const Suite = "bookworm"

// Mirror returns the Debian archive this machine's apt uses for Suite, read
// from its sources (deb822 .sources files, then sources.list), so that trees
// come from the same packages without naming a host here.
func Mirror() (string, error) {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, stanza := range strings.Split(string(b), "\n\n") {
			var uri string
			found := false
			for _, l := range strings.Split(stanza, "\n") {
				if v, ok := strings.CutPrefix(l, "URIs:"); ok && len(strings.Fields(v)) > 0 {
					uri = strings.Fields(v)[0]
				}
				if v, ok := strings.CutPrefix(l, "Suites:"); ok && strings.Contains(" "+v+" ", " "+Suite+" ") {
					found = true
				}
			}
			if uri != "" && found {
				return uri, nil
			}
		}
	}
	if f, err := os.Open("/etc/apt/sources.list"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			w := strings.Fields(sc.Text())
			if len(w) >= 3 && w[0] == "deb" && w[2] == Suite {
				return w[1], nil
			}
		}
	}
	return "", fmt.Errorf("no Debian %s archive in this machine's apt sources (/etc/apt/sources.list.d/*.sources, /etc/apt/sources.list): add one", Suite)
}

// Tree makes a minbase Debian tree with the packages include names at dir,
// once: the tree records its inputs (.kubesalt-tree), and a tree made of the
// same ones is kept. A tree of other inputs, or one whose debootstrap did not
// finish, is made again from nothing. It reports whether it made one.
func Tree(dir string, include []string) (made bool, err error) {
	key := treeKey(include)
	stamp := filepath.Join(dir, ".kubesalt-tree")
	if b, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(b)) == key {
		return false, nil
	}
	mirror, err := Mirror()
	if err != nil {
		return false, err
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return false, fmt.Errorf("debootstrap is missing: apt-get install debootstrap (make installs it)")
	}
	if err := os.RemoveAll(dir); err != nil {
		return false, err
	}
	args := []string{"--variant=minbase"}
	if len(include) > 0 {
		args = append(args, "--include="+strings.Join(include, ","))
	}
	args = append(args, Suite, dir, mirror)
	if out, err := exec.Command("debootstrap", args...).CombinedOutput(); err != nil {
		return false, fmt.Errorf("debootstrap %s into %s: %v\n%s", Suite, dir, err, tail(out, 3000))
	}
	// The downloaded packages and indexes are not part of the tree.
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_Packages"} {
		files, _ := filepath.Glob(filepath.Join(dir, glob))
		for _, f := range files {
			os.Remove(f)
		}
	}
	return true, os.WriteFile(stamp, []byte(key+"\n"), 0o644)
}

// treeKey names a tree's inputs: the suite and the packages, in any order.
func treeKey(include []string) string {
	h := sha256.New()
	fmt.Fprintln(h, Suite)
	seen := map[string]bool{}
	for _, p := range include {
		seen[p] = true
	}
	for _, p := range slices.Sorted(maps.Keys(seen)) {
		fmt.Fprintln(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
