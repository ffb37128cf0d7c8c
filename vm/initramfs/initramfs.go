package initramfs

import (
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Mode bits of the file types used in newc headers.
const (
	TypeMask = 0o170000
	TypeDir  = 0o040000
	TypeReg  = 0o100000
	TypeChr  = 0o020000
)

// Magic opens every newc header.
const Magic = "070701"

// Trailer is the name of the last entry.
const Trailer = "TRAILER!!!"

const headerLen = 110

// Writer writes an uncompressed newc archive entry by entry.
type Writer struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

// NewWriter returns a Writer that writes to w. Call Close to write the
// trailer.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, dirs: map[string]bool{}}
}

func clean(name string) (string, error) {
	n := strings.TrimPrefix(path.Clean("/"+name), "/")
	if n == "" || n == Trailer {
		return "", fmt.Errorf("initramfs: invalid entry name %q", name)
	}
	return n, nil
}

func (w *Writer) entry(name string, mode uint32, nlink uint32, rmaj, rmin uint32, data []byte) error {
	if w.err != nil {
		return w.err
	}
	ino := uint32(0)
	if name != Trailer {
		w.ino++
		ino = w.ino
	}
	fields := []uint32{
		ino, mode, 0, 0, nlink, 0, uint32(len(data)),
		0, 0, rmaj, rmin, uint32(len(name) + 1), 0,
	}
	buf := make([]byte, 0, headerLen+len(name)+4+len(data)+3)
	buf = append(buf, Magic...)
	for _, f := range fields {
		buf = fmt.Appendf(buf, "%08x", f)
	}
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	buf = append(buf, data...)
	buf = pad4(buf)
	_, w.err = w.w.Write(buf)
	return w.err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (w *Writer) parents(name string) error {
	dir := path.Dir(name)
	if dir == "." || w.dirs[dir] {
		return nil
	}
	return w.Dir(dir, 0o755)
}

// Dir adds a directory, and any missing parents with mode 0755.
func (w *Writer) Dir(name string, perm fs.FileMode) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if w.dirs[n] {
		return nil
	}
	if err := w.parents(n); err != nil {
		return err
	}
	w.dirs[n] = true
	return w.entry(n, TypeDir|uint32(perm.Perm()), 2, 0, 0, nil)
}

// File adds a regular file, creating missing parent directories.
func (w *Writer) File(name string, perm fs.FileMode, data []byte) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if err := w.parents(n); err != nil {
		return err
	}
	return w.entry(n, TypeReg|uint32(perm.Perm()), 1, 0, 0, data)
}

// CharDev adds a character device node.
func (w *Writer) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if err := w.parents(n); err != nil {
		return err
	}
	return w.entry(n, TypeChr|uint32(perm.Perm()), 1, major, minor, nil)
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	return w.entry(Trailer, 0, 1, 0, 0, nil)
}

// File is an extra file to put into the initramfs.
type File struct {
	Path string      // absolute or relative to the archive root
	Mode fs.FileMode // permission bits; 0 means 0644
	Data []byte
}

// Build writes a gzip'd archive holding /dev, /dev/console (char 5,1),
// /proc, /sys, init as /init (mode 0755) and the extra files, which are
// written in path order.
func Build(w io.Writer, init []byte, extra ...File) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	cw := NewWriter(zw)
	steps := []func() error{
		func() error { return cw.Dir("dev", 0o755) },
		func() error { return cw.CharDev("dev/console", 0o600, 5, 1) },
		func() error { return cw.Dir("proc", 0o555) },
		func() error { return cw.Dir("sys", 0o555) },
		func() error { return cw.File("init", 0o755, init) },
	}
	files := append([]File(nil), extra...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		steps = append(steps, func() error { return cw.File(f.Path, mode, f.Data) })
	}
	steps = append(steps, cw.Close, zw.Close)
	for _, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
	}
	return nil
}

// WriteFile builds the archive into the file at dst, writing a temporary
// file next to it first and renaming it into place.
func WriteFile(dst string, init []byte, extra ...File) error {
	f, err := os.CreateTemp(filepath.Dir(dst), ".initramfs-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := Build(f, init, extra...); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}
