package riscv64

import (
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/arch"
)

// Explain decodes an image and annotates each instruction with the
// relocation it carries, the internal branch target's label, the frame
// slot it addresses (ld/sd and addi relative to s0, the caller's stack
// arguments at s0+16+8k) and, for func_meta stores, the decoded value.
func Explain(im *arch.Image, base uint64) ([]arch.Line, error) {
	insns, err := decodeOn(im.Code, base)
	lines := make([]arch.Line, 0, len(insns))
	// Values built by emit_imm sequences, by register; a register is
	// forgotten when anything else writes it.
	vals := map[int]int64{}
	inSeq := 0
	for i, in := range insns {
		l := arch.Line{Off: in.Off, Bytes: in.Bytes, Hex: arch.HexBytes(in.Bytes), Text: in.Text, Labels: im.LabelsAt(in.Off)}
		var notes []string
		for _, r := range im.Relocs {
			if r.Off == in.Off {
				notes = append(notes, relocNote(r))
			} else if r.Off < in.Off && in.Off < r.Off+r.Len {
				notes = append(notes, "... "+r.Sym)
			}
		}
		if in.PCRel && in.Target >= base && in.Target < base+uint64(len(im.Code)) {
			off := int(in.Target - base)
			name := fmt.Sprintf("+%#x", off)
			if lb := im.LabelsAt(off); len(lb) > 0 {
				name = lb[0]
			}
			notes = append(notes, "to "+name)
		}
		switch {
		case in.k == kSd && in.rs1 == fp:
			slot := im.SlotAt(int(in.imm))
			if v, ok := vals[in.rs2]; ok && slot == "func_meta" {
				notes = append(notes, arch.DescribeFuncMeta(uint64(v)))
			} else if slot != "" {
				notes = append(notes, slot)
			}
		case in.k == kLd && in.rs1 == fp && in.imm >= 16:
			notes = append(notes, fmt.Sprintf("caller's stack arg word %d", (in.imm-16)/8))
		case in.k == kLd && in.rs1 == fp:
			if slot := im.SlotAt(int(in.imm)); slot != "" {
				notes = append(notes, slot)
			}
		case in.k == kAddi && in.rs1 == fp && in.rd != sp:
			if slot := im.SlotAt(int(in.imm)); slot != "" {
				notes = append(notes, "&"+slot)
			}
		}
		// Track emit_imm results: a sequence's value is known from its
		// first instruction on; its other instructions leave it alone.
		if i >= inSeq {
			if v, reg, n, ok := immValue(insns[i:]); ok {
				vals[reg] = v
				inSeq = i + n
			} else if in.k == kJal || in.k == kJalr {
				clear(vals)
			} else if in.k != kSd && in.k != kBeq && in.k != kBne {
				delete(vals, in.rd)
			}
		}
		l.Comment = strings.Join(notes, "; ")
		lines = append(lines, l)
	}
	return lines, err
}

// decodeOn is Decode that goes on past what does not decode, as a
// "(bad)" parcel, so that a listing (and a diff of listings) covers the
// whole code; the error is the first one.
func decodeOn(code []byte, base uint64) ([]Insn, error) {
	var out []Insn
	var first error
	for off := 0; off < len(code); {
		insns, err := Decode(code[off:], base+uint64(off))
		for _, in := range insns {
			in.Off += off
			out = append(out, in)
		}
		if err == nil {
			break
		}
		if first == nil {
			first = err
		}
		off += insnsLen(insns)
		n := min(2, len(code)-off)
		out = append(out, Insn{Off: off, Len: n, Bytes: code[off : off+n], Text: "(bad)", Op: "(bad)"})
		off += n
	}
	return out, first
}

func insnsLen(insns []Insn) int {
	n := 0
	for _, in := range insns {
		n += in.Len
	}
	return n
}

func relocNote(r arch.Reloc) string {
	if r.Kind == arch.RVJal || r.Kind == arch.RVAuipcJalr {
		return r.Sym
	}
	return fmt.Sprintf("%s = %#x", r.Sym, r.Value)
}
