package kernels

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxVmlinux bounds what a decompressed kernel may grow to (Debian's are
// 40-70 MiB); a payload that claims more is refused, not allocated.
const maxVmlinux = 512 << 20

// ImageBTF returns the vmlinux BTF a kernel image carries (the bytes of its
// .BTF section, header included), read on the host without booting: an x86
// bzImage's payload is decompressed (zstd, xz or gzip, as the setup
// header's payload_offset/payload_length locate it), an arm64 Image is
// read as it is (or gunzipped, for an Image.gz). The BTF blob is then found
// by its header (magic 0xeB9F, version 1, a 24-byte header whose type and
// string sections fit), the largest one that fits when several match.
func ImageBTF(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	btf, err := BTFFromImage(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return btf, nil
}

// BTFFromImage is ImageBTF on an image's bytes.
func BTFFromImage(img []byte) ([]byte, error) {
	raw, err := Vmlinux(img)
	if err != nil {
		return nil, err
	}
	return FindBTF(raw)
}

// Vmlinux returns the kernel proper inside an image: the decompressed
// payload of an x86 bzImage, an arm64 or riscv64 Image as it is, an
// Image.gz gunzipped.
func Vmlinux(img []byte) ([]byte, error) {
	switch {
	case len(img) >= 0x206 && string(img[0x202:0x206]) == "HdrS":
		return bzImagePayload(img)
	case len(img) >= 0x3c && string(img[0x38:0x3c]) == "ARM\x64":
		return img, nil
	case len(img) >= 0x38 && string(img[0x30:0x38]) == "RISCV\x00\x00\x00":
		// A riscv64 Image (Debian's: an EFI stub around the raw kernel,
		// the BTF in it uncompressed).
		return img, nil
	case isS390Image(img):
		return s390Payload(img)
	case len(img) >= 2 && img[0] == 0x1f && img[1] == 0x8b:
		return decompress(img)
	}
	return nil, errors.New("neither an x86 bzImage (no HdrS setup header), an arm64 Image (no ARM\\x64 magic), a riscv64 Image (no RISCV magic), an s390x bzImage (no S390EP) nor a gzip'd Image")
}

// isS390Image recognises an s390x bzImage: the "S390EP" marker at 0x10008
// (the IPL entry of arch/s390/boot/head.S).
func isS390Image(img []byte) bool {
	return len(img) >= 0x1000e && string(img[0x10008:0x1000e]) == "S390EP"
}

// s390Payload finds the compressed kernel in an s390x bzImage. Its
// decompressor locates the payload by link-time symbols no header states,
// so the image is scanned for a zstd, xz or gzip stream that decompresses
// to a kernel ("Linux version " inside); the largest such wins.
func s390Payload(img []byte) ([]byte, error) {
	var best []byte
	var firstErr error
	for _, magic := range [][]byte{{0x28, 0xb5, 0x2f, 0xfd}, {0xfd, '7', 'z', 'X', 'Z', 0}, {0x1f, 0x8b, 0x08}} {
		for i := 0; i < len(img); i++ {
			j := bytes.Index(img[i:], magic)
			if j < 0 {
				break
			}
			i += j
			out, err := decompressPrefix(img[i:])
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("stream at %#x: %w", i, err)
				}
				continue
			}
			if len(out) > len(best) && bytes.Contains(out, []byte("Linux version ")) {
				best = out
			}
		}
	}
	if best == nil {
		if firstErr == nil {
			firstErr = errors.New("no zstd, xz or gzip stream")
		}
		return nil, fmt.Errorf("s390x bzImage: no compressed kernel found (%w)", firstErr)
	}
	return best, nil
}

// decompressPrefix decompresses the stream at the start of p, which data
// that is not part of it may follow (the rest of an s390x image). A zstd
// frame is cut at its end, found by walking its block headers.
func decompressPrefix(p []byte) ([]byte, error) {
	if !bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return decompress1(p) // xz and gzip readers stop at their stream's end
	}
	n, err := zstdFrameLen(p)
	if err != nil {
		return nil, err
	}
	return decompress1(p[:n])
}

// zstdFrameLen is the length of the zstd frame at the start of p (RFC 8878
// 3.1.1: the frame header, blocks of a 3-byte header each, the optional
// 4-byte checksum).
func zstdFrameLen(p []byte) (int, error) {
	var h zstd.Header
	if err := h.Decode(p); err != nil {
		return 0, fmt.Errorf("zstd: %w", err)
	}
	off := h.HeaderSize
	for {
		if off+3 > len(p) {
			return 0, errors.New("zstd: frame truncated in a block header")
		}
		bh := uint32(p[off]) | uint32(p[off+1])<<8 | uint32(p[off+2])<<16
		last, typ, size := bh&1 == 1, (bh>>1)&3, int(bh>>3)
		off += 3
		switch typ {
		case 1: // RLE: one byte repeated size times
			size = 1
		case 3:
			return 0, fmt.Errorf("zstd: reserved block type at %#x", off-3)
		}
		if size > len(p)-off {
			return 0, errors.New("zstd: frame truncated in a block")
		}
		off += size
		if last {
			break
		}
	}
	if h.HasCheckSum {
		off += 4
	}
	if off > len(p) {
		return 0, errors.New("zstd: frame truncated in its checksum")
	}
	return off, nil
}

// bzImagePayload locates the compressed vmlinux in a bzImage (boot
// protocol 2.08+: setup_sects at 0x1f1, payload_offset and payload_length
// at 0x248 and 0x24c, relative to the protected-mode code after the setup
// sectors) and decompresses it.
func bzImagePayload(img []byte) ([]byte, error) {
	if len(img) < 0x250 {
		return nil, fmt.Errorf("bzImage of %d bytes has no complete setup header", len(img))
	}
	if v := binary.LittleEndian.Uint16(img[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("bzImage boot protocol %d.%02d has no payload fields (2.08+ does)", v>>8, v&0xff)
	}
	setup := int(img[0x1f1])
	if setup == 0 {
		setup = 4
	}
	off := (setup+1)*512 + int(binary.LittleEndian.Uint32(img[0x248:]))
	n := int(binary.LittleEndian.Uint32(img[0x24c:]))
	if off < 0 || n <= 0 || off > len(img) || n > len(img)-off {
		return nil, fmt.Errorf("bzImage payload at %#x+%#x lies outside the %d-byte image", off, n, len(img))
	}
	out, err := decompress(img[off : off+n])
	if err != nil {
		return nil, fmt.Errorf("bzImage payload at %#x: %w", off, err)
	}
	return out, nil
}

// decompress undoes the compressors Debian builds kernels with, by magic.
// Kbuild appends the decompressed size (4 bytes, little-endian) to zstd and
// xz payloads; it is not part of the stream, so a stream with 4 bytes too
// many is read again without them.
func decompress(p []byte) ([]byte, error) {
	out, err := decompress1(p)
	if err != nil && len(p) > 4 && !errors.Is(err, errUnknownMethod) {
		if out2, err2 := decompress1(p[:len(p)-4]); err2 == nil {
			return out2, nil
		}
	}
	return out, err
}

var errUnknownMethod = errors.New("compressed with an unknown method")

func decompress1(p []byte) ([]byte, error) {
	var r io.Reader
	var method string
	switch {
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxVmlinux), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		out, err := d.DecodeAll(p, nil)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return out, nil
	case bytes.HasPrefix(p, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		x, err := xz.ReaderConfig{SingleStream: true}.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		r, method = x, "xz"
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		z.Multistream(false)
		r, method = z, "gzip"
	default:
		return nil, fmt.Errorf("%w (first bytes % x; tramp reads zstd, xz and gzip)", errUnknownMethod, p[:min(len(p), 6)])
	}
	out, err := io.ReadAll(io.LimitReader(r, maxVmlinux+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	if len(out) > maxVmlinux {
		return nil, fmt.Errorf("decompresses to more than %d MiB", maxVmlinux>>20)
	}
	return out, nil
}

// btfHeaderLen is sizeof(struct btf_header).
const btfHeaderLen = 24

// FindBTF finds the BTF blob in a kernel's bytes: a btf_header (magic
// 0xeB9F in the kernel's byte order, little-endian or, for s390x,
// big-endian; version 1, flags 0, hdr_len 24) whose type section starts
// right after it and whose string section follows the types, all inside
// the data. Of several candidates the largest is taken.
func FindBTF(raw []byte) ([]byte, error) {
	var best []byte
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		magic := []byte{0, 0, 0x01, 0x00}
		bo.PutUint16(magic, 0xeb9f)
		for i := 0; ; i++ {
			j := bytes.Index(raw[i:], magic)
			if j < 0 {
				break
			}
			i += j
			h := raw[i:]
			if len(h) < btfHeaderLen || bo.Uint32(h[4:]) != btfHeaderLen {
				continue
			}
			typeOff := bo.Uint32(h[8:])
			typeLen := bo.Uint32(h[12:])
			strOff := bo.Uint32(h[16:])
			strLen := bo.Uint32(h[20:])
			if typeOff != 0 || strOff != typeLen || strLen == 0 {
				continue
			}
			end := uint64(btfHeaderLen) + uint64(strOff) + uint64(strLen)
			if end > uint64(len(h)) || h[end-1] != 0 {
				continue // the string section ends with a NUL
			}
			if int(end) > len(best) {
				best = h[:end]
			}
		}
	}
	if best == nil {
		return nil, errors.New("no BTF in the kernel (built without CONFIG_DEBUG_INFO_BTF?)")
	}
	return best, nil
}
