package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Layer is a layer made once, before the images that hold it: a tree's tar,
// gzipped, so that several images (agnhost, nginx, ... on one Debian tree)
// share the same blob and containerd stores it once.
type Layer struct {
	gz     []byte
	diffID string // the digest of the uncompressed tar
}

// Size is the compressed size of the layer.
func (l Layer) Size() int { return len(l.gz) }

// DirLayer makes a layer of the tree under root, as a container runtime
// unpacks it: directories, regular files, symlinks and hard links with their
// owners and mode bits (setuid included), in path order with fixed times.
// Device nodes, fifos and sockets are left out: the runtime makes /dev.
func DirLayer(root string) (Layer, error) {
	info, err := os.Stat(root)
	if err != nil {
		return Layer{}, fmt.Errorf("layer root %s: %w", root, err)
	}
	if !info.IsDir() {
		return Layer{}, fmt.Errorf("layer root %s is not a directory: give the tree the image holds", root)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	firstName := map[[2]uint64]string{} // (dev, inode) of a file with several links
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		name := filepath.ToSlash(rel)
		var link string
		switch mode := fi.Mode(); {
		case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
			return nil
		case mode&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		hdr.Name = name
		if fi.IsDir() {
			hdr.Name += "/"
		}
		// The tree's own owners by number; the host's user names mean nothing in it.
		hdr.Uname, hdr.Gname = "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = epoch, time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, seen := firstName[key]; seen {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					firstName[key] = name
				}
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return Layer{}, fmt.Errorf("layer of %s: %w", root, err)
	}
	if err := tw.Close(); err != nil {
		return Layer{}, err
	}
	// A Debian tree is a few hundred MB: the default level, not the best.
	return layerOf(buf.Bytes(), gzip.DefaultCompression)
}

// layerOf gzips an uncompressed layer tar.
func layerOf(tarball []byte, level int) (Layer, error) {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, level) // the header has no name and a zero mtime
	if _, err := zw.Write(tarball); err != nil {
		return Layer{}, err
	}
	if err := zw.Close(); err != nil {
		return Layer{}, err
	}
	return Layer{gz: gz.Bytes(), diffID: digest(tarball)}, nil
}
