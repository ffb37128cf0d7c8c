package bpfobs

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
)

// kcore reads kernel virtual memory through an ELF core image such as
// /proc/kcore: the PT_LOAD segment covering an address gives its file
// offset (p_offset + addr - p_vaddr).
//
// The program headers are read here, not by debug/elf: /proc/kcore puts a
// segment at file offset vaddr - PAGE_OFFSET (kc_vaddr_to_offset), which
// wraps for the regions below PAGE_OFFSET on riscv64 (vmalloc, vmemmap),
// and debug/elf refuses the whole file for one such offset. A segment
// whose offset cannot be read is kept; reading it says so.
type kcore struct {
	r     io.ReaderAt
	loads []elf.ProgHeader
}

const (
	elf64EhdrSize = 64
	elf64PhdrSize = 56
	kcoreMaxPhnum = 4096 // far above any kernel's memory map
)

func newKcore(r io.ReaderAt) (*kcore, error) {
	var eh [elf64EhdrSize]byte
	if _, err := r.ReadAt(eh[:], 0); err != nil {
		return nil, fmt.Errorf("kcore: ELF header: %w", err)
	}
	if string(eh[:4]) != elf.ELFMAG {
		return nil, fmt.Errorf("kcore: not an ELF file (magic % x)", eh[:4])
	}
	if elf.Class(eh[elf.EI_CLASS]) != elf.ELFCLASS64 {
		return nil, fmt.Errorf("kcore: ELF class %v, want ELFCLASS64", elf.Class(eh[elf.EI_CLASS]))
	}
	var bo binary.ByteOrder
	switch elf.Data(eh[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("kcore: ELF data encoding %v", elf.Data(eh[elf.EI_DATA]))
	}
	phoff, phentsize, phnum := bo.Uint64(eh[0x20:]), bo.Uint16(eh[0x36:]), bo.Uint16(eh[0x38:])
	if phentsize < elf64PhdrSize || phnum > kcoreMaxPhnum || phoff > 1<<40 {
		return nil, fmt.Errorf("kcore: program headers at %#x, %d of %d bytes: not a core the kernel writes", phoff, phnum, phentsize)
	}
	k := &kcore{r: r}
	ph := make([]byte, elf64PhdrSize)
	for i := range uint64(phnum) {
		if _, err := r.ReadAt(ph, int64(phoff+i*uint64(phentsize))); err != nil {
			return nil, fmt.Errorf("kcore: program header %d: %w", i, err)
		}
		if elf.ProgType(bo.Uint32(ph)) != elf.PT_LOAD {
			continue
		}
		k.loads = append(k.loads, elf.ProgHeader{
			Type: elf.PT_LOAD, Flags: elf.ProgFlag(bo.Uint32(ph[4:])),
			Off: bo.Uint64(ph[8:]), Vaddr: bo.Uint64(ph[16:]), Paddr: bo.Uint64(ph[24:]),
			Filesz: bo.Uint64(ph[32:]), Memsz: bo.Uint64(ph[40:]), Align: bo.Uint64(ph[48:]),
		})
	}
	if len(k.loads) == 0 {
		return nil, fmt.Errorf("kcore: no PT_LOAD segments")
	}
	return k, nil
}

// segment returns the PT_LOAD containing addr.
func (k *kcore) segment(addr uint64) (elf.ProgHeader, bool) {
	for _, p := range k.loads {
		if addr >= p.Vaddr && addr-p.Vaddr < p.Memsz {
			return p, true
		}
	}
	return elf.ProgHeader{}, false
}

// read returns up to n bytes at kernel address addr, truncated at the end
// of the covering segment.
func (k *kcore) read(addr uint64, n int) ([]byte, error) {
	p, ok := k.segment(addr)
	if !ok {
		return nil, fmt.Errorf("kcore: no segment covers %#x", addr)
	}
	if left := p.Vaddr + p.Memsz - addr; uint64(n) > left {
		n = int(left)
	}
	off := p.Off + (addr - p.Vaddr)
	if off > 1<<62 {
		return nil, fmt.Errorf("kcore: the segment at %#x has file offset %#x, which no read reaches", p.Vaddr, p.Off)
	}
	buf := make([]byte, n)
	m, err := k.r.ReadAt(buf, int64(off))
	if m == n {
		return buf, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return buf[:m], fmt.Errorf("kcore read %#x+%d: %w", addr, n, err)
}
