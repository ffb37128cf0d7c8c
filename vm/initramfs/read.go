package initramfs

import (
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
)

// Entry is one member of a newc archive as read back by Read.
type Entry struct {
	Ino       uint32
	Mode      uint32 // type and permission bits
	UID, GID  uint32
	NLink     uint32
	MTime     uint32
	DevMajor  uint32
	DevMinor  uint32
	RDevMajor uint32
	RDevMinor uint32
	Name      string
	Data      []byte
}

// Read parses an uncompressed newc archive up to and excluding its trailer.
// It is strict: bad magic, bad hex, non-zero padding or a missing trailer
// are errors.
func Read(r io.Reader) ([]Entry, error) {
	var out []Entry
	var off int64
	readN := func(n int) ([]byte, error) {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("initramfs: at offset %d: %w", off, err)
		}
		off += int64(n)
		return b, nil
	}
	skipPad := func() error {
		for off%4 != 0 {
			b, err := readN(1)
			if err != nil {
				return err
			}
			if b[0] != 0 {
				return fmt.Errorf("initramfs: non-zero padding at offset %d", off-1)
			}
		}
		return nil
	}
	for {
		start := off
		h, err := readN(headerLen)
		if err != nil {
			return out, err
		}
		if string(h[:6]) != Magic {
			return out, fmt.Errorf("initramfs: bad magic %q at offset %d", h[:6], start)
		}
		var v [13]uint32
		for i := range v {
			x, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return out, fmt.Errorf("initramfs: bad header field %d at offset %d: %v", i, start, err)
			}
			v[i] = uint32(x)
		}
		if v[11] == 0 {
			return out, fmt.Errorf("initramfs: zero name size at offset %d", start)
		}
		name, err := readN(int(v[11]))
		if err != nil {
			return out, err
		}
		if name[len(name)-1] != 0 {
			return out, fmt.Errorf("initramfs: name not NUL-terminated at offset %d", start)
		}
		if err := skipPad(); err != nil {
			return out, err
		}
		data, err := readN(int(v[6]))
		if err != nil {
			return out, err
		}
		if err := skipPad(); err != nil {
			return out, err
		}
		e := Entry{
			Ino: v[0], Mode: v[1], UID: v[2], GID: v[3], NLink: v[4], MTime: v[5],
			DevMajor: v[7], DevMinor: v[8], RDevMajor: v[9], RDevMinor: v[10],
			Name: string(name[:len(name)-1]), Data: data,
		}
		if e.Name == Trailer {
			return out, nil
		}
		out = append(out, e)
	}
}

// ReadGzip parses a gzip'd newc archive.
func ReadGzip(r io.Reader) ([]Entry, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	defer zr.Close()
	return Read(zr)
}
