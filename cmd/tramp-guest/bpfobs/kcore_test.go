package bpfobs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

type seg struct {
	vaddr uint64
	data  []byte
	memsz uint64 // 0: len(data)
}

// fakeKcore builds a minimal ELF64 core with one PT_NOTE and the given
// PT_LOAD segments, like /proc/kcore.
func fakeKcore(segs ...seg) []byte {
	le := binary.LittleEndian
	const ehsize, phsize = 64, 56
	nph := len(segs) + 1
	off := uint64(ehsize + phsize*nph)
	var hdr bytes.Buffer
	ident := [16]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	hdr.Write(ident[:])
	binary.Write(&hdr, le, uint16(elf.ET_CORE))
	binary.Write(&hdr, le, uint16(elf.EM_X86_64))
	binary.Write(&hdr, le, uint32(elf.EV_CURRENT))
	binary.Write(&hdr, le, uint64(0))      // entry
	binary.Write(&hdr, le, uint64(ehsize)) // phoff
	binary.Write(&hdr, le, uint64(0))      // shoff
	binary.Write(&hdr, le, uint32(0))      // flags
	binary.Write(&hdr, le, uint16(ehsize))
	binary.Write(&hdr, le, uint16(phsize))
	binary.Write(&hdr, le, uint16(nph))
	binary.Write(&hdr, le, uint16(64)) // shentsize
	binary.Write(&hdr, le, uint16(0))
	binary.Write(&hdr, le, uint16(0))
	ph := func(typ elf.ProgType, o, va, filesz, memsz uint64) {
		binary.Write(&hdr, le, uint32(typ))
		binary.Write(&hdr, le, uint32(elf.PF_R|elf.PF_W|elf.PF_X))
		binary.Write(&hdr, le, o)
		binary.Write(&hdr, le, va)
		binary.Write(&hdr, le, uint64(0))
		binary.Write(&hdr, le, filesz)
		binary.Write(&hdr, le, memsz)
		binary.Write(&hdr, le, uint64(4096))
	}
	ph(elf.PT_NOTE, off, 0, 0, 0)
	var body bytes.Buffer
	for _, s := range segs {
		m := s.memsz
		if m == 0 {
			m = uint64(len(s.data))
		}
		ph(elf.PT_LOAD, off+uint64(body.Len()), s.vaddr, uint64(len(s.data)), m)
		body.Write(s.data)
	}
	return append(hdr.Bytes(), body.Bytes()...)
}

func TestKcore(t *testing.T) {
	a := bytes.Repeat([]byte{0xaa}, 64)
	b := []byte("0123456789abcdef")
	img := fakeKcore(seg{vaddr: 0xffffffff81000000, data: a}, seg{vaddr: 0xffffffffc0000c40, data: b})
	k, err := newKcore(bytes.NewReader(img))
	require.NoError(t, err)
	got, err := k.read(0xffffffffc0000c44, 4)
	if err != nil || string(got) != "4567" {
		t.Fatalf("%q %v", got, err)
	}
	// Truncated at the segment end.
	got, err = k.read(0xffffffffc0000c4c, 4096)
	if err != nil || string(got) != "cdef" {
		t.Fatalf("%q %v", got, err)
	}
	if got, err := k.read(0xffffffff81000000, 64); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("%x %v", got, err)
	}
	if _, err := k.read(0xffffffffc0001000, 1); err == nil {
		t.Error("address outside every segment read")
	}
	// riscv64: a segment below PAGE_OFFSET has a wrapped file offset;
	// the others still read.
	wrapped := fakeKcore(seg{vaddr: 0xffffffffc0000c40, data: b})
	wrapped = append(wrapped[:len(wrapped)-len(b)], make([]byte, 56)...)
	wrapped = append(wrapped, b...)
	binary.LittleEndian.PutUint16(wrapped[0x38:], 3) // one more program header
	// Move the bytes: the headers grew by one; point the load past them.
	binary.LittleEndian.PutUint64(wrapped[64+56+8:], uint64(64+3*56))
	hdr := wrapped[64+2*56:]
	binary.LittleEndian.PutUint32(hdr, uint32(elf.PT_LOAD))
	binary.LittleEndian.PutUint64(hdr[8:], 0xffffe00000000000)  // p_offset
	binary.LittleEndian.PutUint64(hdr[16:], 0xffffffc400000000) // p_vaddr
	binary.LittleEndian.PutUint64(hdr[40:], 1<<30)              // p_memsz
	kw, err := newKcore(bytes.NewReader(wrapped))
	require.NoError(t, err)
	if got, err := kw.read(0xffffffffc0000c44, 4); err != nil || string(got) != "4567" {
		t.Fatalf("beside a wrapped segment: %q %v", got, err)
	}
	if _, err := kw.read(0xffffffc400000010, 4); err == nil {
		t.Error("a wrapped offset read")
	}
	// Memsz larger than the file: reading past the file fails cleanly.
	k2, _ := newKcore(bytes.NewReader(fakeKcore(seg{vaddr: 0x1000, data: b, memsz: 4096})))
	if got, err := k2.read(0x1000+8, 100); err == nil || len(got) != 8 {
		t.Errorf("short file: %q %v", got, err)
	}
	if _, err := newKcore(bytes.NewReader([]byte("not an elf"))); err == nil {
		t.Error("garbage accepted")
	}
	if _, err := newKcore(bytes.NewReader(fakeKcore())); err == nil {
		t.Error("core without PT_LOAD accepted")
	}
}

func FuzzKcore(f *testing.F) {
	f.Add(fakeKcore(seg{vaddr: 0xffffffffc0000c40, data: []byte("0123456789abcdef")}), uint64(0xffffffffc0000c44), uint16(8))
	f.Add(fakeKcore(seg{vaddr: 0x1000, data: []byte{1, 2}, memsz: 1 << 40}), uint64(0x1001), uint16(4096))
	f.Add([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1}, uint64(0), uint16(1))
	f.Fuzz(func(t *testing.T, img []byte, addr uint64, n uint16) {
		k, err := newKcore(bytes.NewReader(img))
		if err != nil {
			return
		}
		b, err := k.read(addr, int(n))
		if len(b) > int(n) {
			t.Fatalf("read %d bytes, asked %d", len(b), n)
		}
		_ = err
	})
}
