package bpfobs

import (
	"debug/elf"
	"fmt"
	"io"
)

// kcore reads kernel virtual memory through an ELF core image such as
// /proc/kcore: the PT_LOAD segment covering an address gives its file
// offset (p_offset + addr - p_vaddr).
type kcore struct {
	r     io.ReaderAt
	loads []elf.ProgHeader
}

func newKcore(r io.ReaderAt) (*kcore, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("kcore: %w", err)
	}
	k := &kcore{r: r}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			k.loads = append(k.loads, p.ProgHeader)
		}
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
		return nil, fmt.Errorf("kcore: offset overflow at %#x", addr)
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
