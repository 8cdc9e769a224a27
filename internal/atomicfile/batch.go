package atomicfile

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/kubesalt/kubesalt/internal/workers"
)

// File is one file for WriteFiles.
type File struct {
	Path string
	Data []byte
	Perm os.FileMode
}

// WriteFiles atomically replaces many files, as WriteFile does each, up to
// concurrency at a time, and fsyncs each directory once after all its renames
// instead of once per file: writing a few hundred files costs a few hundred
// fsyncs, not twice that. On error some files may already be replaced; none
// is ever half written.
func WriteFiles(files []File, concurrency int) error {
	errs := make([]error, len(files))
	workers.ForEach(len(files), concurrency, func(i int) {
		errs[i] = replace(files[i].Path, files[i].Data, files[i].Perm)
	})
	dirs := map[string]bool{}
	for _, f := range files {
		dirs[filepath.Dir(f.Path)] = true
	}
	list := make([]string, 0, len(dirs))
	for d := range dirs {
		list = append(list, d)
	}
	dirErrs := make([]error, len(list))
	workers.ForEach(len(list), concurrency, func(i int) { dirErrs[i] = syncDir(list[i]) })
	return errors.Join(append(errs, dirErrs...)...)
}

// replace is WriteFile without the directory fsync.
func replace(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}
