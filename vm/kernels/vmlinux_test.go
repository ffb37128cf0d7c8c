package kernels

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
)

// fakeBTF is a minimal well-formed BTF blob: the header, no types, and a
// string section holding the empty string and "x".
func fakeBTF() []byte {
	h := make([]byte, btfHeaderLen)
	copy(h, []byte{0x9f, 0xeb, 1, 0})
	binary.LittleEndian.PutUint32(h[4:], btfHeaderLen)
	binary.LittleEndian.PutUint32(h[8:], 0)  // type_off
	binary.LittleEndian.PutUint32(h[12:], 0) // type_len
	binary.LittleEndian.PutUint32(h[16:], 0) // str_off
	binary.LittleEndian.PutUint32(h[20:], 3) // str_len
	return append(h, 0, 'x', 0)
}

// fakeVmlinux hides the BTF among other bytes, with a decoy header
// (wrong hdr_len) before it.
func fakeVmlinux(b []byte) []byte {
	v := append([]byte("\x7fELF....decoy:"), 0x9f, 0xeb, 1, 0, 99, 0, 0, 0)
	v = append(v, bytes.Repeat([]byte{0xaa}, 100)...)
	v = append(v, b...)
	return append(v, bytes.Repeat([]byte{0x55}, 50)...)
}

// fakeBzImage wraps a compressed payload in a setup header as the boot
// protocol lays it out: 4 setup sectors, payload_offset/length.
func fakeBzImage(payload []byte) []byte {
	img := make([]byte, 5*512)
	img[0x1f1] = 4
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x20f)
	binary.LittleEndian.PutUint32(img[0x248:], 0x40)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(len(payload)))
	img = append(img, make([]byte, 0x40)...)
	return append(img, payload...)
}

// bigEndianBTF is fakeBTF as an s390x kernel lays it out.
func bigEndianBTF() []byte {
	h := make([]byte, btfHeaderLen)
	copy(h, []byte{0xeb, 0x9f, 1, 0})
	binary.BigEndian.PutUint32(h[4:], btfHeaderLen)
	binary.BigEndian.PutUint32(h[20:], 3) // str_len
	return append(h, 0, 'x', 0)
}

// fakeS390Image lays a kernel out as an s390x bzImage does: "S390EP" at
// 0x10008, decompressor bytes (with a decoy zstd magic), the kernel as
// one zstd frame with a checksum and no content size (Kbuild's
// zstd22), then the rest of the image.
func fakeS390Image(t *testing.T, vml []byte) []byte {
	img := make([]byte, 0x10100)
	copy(img[0x10008:], "S390EP")
	img = append(img, 0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true), zstd.WithSingleSegment(false))
	if err != nil {
		t.Fatal(err)
	}
	var frame bytes.Buffer
	w := enc
	w.Reset(&frame)
	w.Write(vml)
	w.Close()
	img = append(img, frame.Bytes()...)
	return append(img, bytes.Repeat([]byte{0x07}, 300)...)
}

func withSize(p []byte, n int) []byte { return binary.LittleEndian.AppendUint32(p, uint32(n)) }

func TestBTFFromImage(t *testing.T) {
	want := fakeBTF()
	vml := fakeVmlinux(want)
	zenc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	zst := zenc.EncodeAll(vml, nil)
	var xzb bytes.Buffer
	xw, err := xz.NewWriter(&xzb)
	require.NoError(t, err)
	_, err = xw.Write(vml)
	require.NoError(t, err)
	require.NoError(t, xw.Close())
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	_, err = gw.Write(vml)
	require.NoError(t, err)
	require.NoError(t, gw.Close())
	arm := make([]byte, 64)
	copy(arm[0x38:], "ARM\x64")
	arm = append(arm, vml...)
	rv := make([]byte, 64)
	copy(rv[0x30:], "RISCV\x00\x00\x00RSC\x05")
	rv = append(rv, vml...)

	s390 := fakeS390Image(t, append([]byte("Linux version 7.2.13+deb14-s390x "), fakeVmlinux(bigEndianBTF())...))
	got, err := BTFFromImage(s390)
	if assert.NoError(t, err, "s390x bzImage") {
		assert.Equal(t, bigEndianBTF(), got, "s390x bzImage")
	}
	for name, img := range map[string][]byte{
		"riscv64 Image":           rv,
		"bzImage zstd with size":  fakeBzImage(withSize(zst, len(vml))),
		"bzImage zstd":            fakeBzImage(zst),
		"bzImage xz with size":    fakeBzImage(withSize(xzb.Bytes(), len(vml))),
		"bzImage gzip":            fakeBzImage(gz.Bytes()),
		"arm64 Image":             arm,
		"arm64 Image.gz (gzip'd)": gzipped(t, arm),
	} {
		got, err := BTFFromImage(img)
		if assert.NoError(t, err, name) {
			assert.Equal(t, want, got, name)
		}
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func TestBTFFromImageErrors(t *testing.T) {
	arm := make([]byte, 64)
	copy(arm[0x38:], "ARM\x64")
	for name, tc := range map[string]struct {
		img  []byte
		want string
	}{
		"empty":          {nil, "neither an x86 bzImage"},
		"no BTF":         {append(arm, 1, 2, 3), "no BTF in the kernel"},
		"payload out":    {fakeBzImage(nil)[:5*512], "lies outside"},
		"unknown packer": {fakeBzImage([]byte("LZMA?!")), "unknown method"},
		"bad zstd":       {fakeBzImage([]byte{0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5}), "zstd"},
		"truncated BTF":  {append(append([]byte(nil), arm...), fakeBTF()[:26]...), "no BTF"},
	} {
		_, err := BTFFromImage(tc.img)
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), tc.want, name)
		}
	}
}

// FuzzBTFFromImage: any bytes give a BTF blob or an error, never a
// panic; a blob found is a well-formed header whose sections fit and
// whose string section ends with a NUL.
func FuzzBTFFromImage(f *testing.F) {
	arm := make([]byte, 64)
	copy(arm[0x38:], "ARM\x64")
	f.Add(append(arm, fakeVmlinux(fakeBTF())...))
	rv := make([]byte, 64)
	copy(rv[0x30:], "RISCV\x00\x00\x00")
	f.Add(append(rv, fakeVmlinux(fakeBTF())...))
	f.Add(fakeBzImage(gzipped(&testing.T{}, fakeVmlinux(fakeBTF()))))
	f.Add(fakeBzImage([]byte{0x28, 0xb5, 0x2f, 0xfd}))
	f.Add(fakeS390Image(&testing.T{}, fakeVmlinux(bigEndianBTF())))
	f.Fuzz(func(t *testing.T, img []byte) {
		b, err := BTFFromImage(img)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, len(b), btfHeaderLen)
		var bo binary.ByteOrder = binary.LittleEndian
		if b[0] == 0xeb {
			bo = binary.BigEndian
		}
		require.Equal(t, uint16(0xeb9f), bo.Uint16(b))
		require.Equal(t, []byte{1, 0}, b[2:4])
		strOff := bo.Uint32(b[16:])
		strLen := bo.Uint32(b[20:])
		require.Equal(t, uint64(len(b)), uint64(btfHeaderLen)+uint64(strOff)+uint64(strLen))
		require.Equal(t, byte(0), b[len(b)-1])
	})
}
