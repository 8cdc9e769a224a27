package pki

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kubesalt/kubesalt/internal/atomicfile"
)

// file is one file of the directory as found.
type file struct {
	rel    string
	data   []byte
	mode   fs.FileMode // permission bits
	exists bool
}

// readFile reads dir/rel; a missing file is not an error.
func readFile(dir, rel string) (file, error) {
	f := file{rel: rel}
	h, err := os.Open(filepath.Join(dir, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	defer h.Close()
	st, err := h.Stat()
	if err != nil {
		return f, err
	}
	if !st.Mode().IsRegular() {
		return f, fmt.Errorf("%s is not a regular file; move it away", rel)
	}
	f.data, err = io.ReadAll(h)
	f.mode, f.exists = st.Mode().Perm(), err == nil
	return f, err
}

// write is one file to write atomically.
type write struct {
	rel  string
	data []byte
	mode fs.FileMode
}

// writeAll writes every file atomically (atomicfile: temp, fsync, rename,
// fsync of the directory), many at once: the cost is fsync latency, which
// overlaps.
func writeAll(dir string, ws []write) error {
	dirs := map[string]bool{}
	for _, w := range ws {
		dirs[filepath.Dir(filepath.Join(dir, w.rel))] = true
	}
	for d := range dirs {
		if err := ensureDir(d); err != nil {
			return err
		}
	}
	files := make([]atomicfile.File, len(ws))
	for i, w := range ws {
		files[i] = atomicfile.File{Path: filepath.Join(dir, w.rel), Data: w.data, Perm: w.mode}
	}
	return atomicfile.WriteFiles(files, ioWorkers)
}

// ensureDir creates d (and parents) with mode 0700.
func ensureDir(d string) error {
	if err := os.MkdirAll(d, modeDir); err != nil {
		return fmt.Errorf("creating %s: %w", d, err)
	}
	return nil
}

// ioWorkers bounds concurrent file operations; fsync waits, it does not
// burn CPU, so this is more than the cores.
const ioWorkers = 32
