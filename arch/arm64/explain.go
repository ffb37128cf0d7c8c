package arm64

import (
	"fmt"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"

	"github.com/bpftramp/tramp/arch"
)

// Explain decodes an image and annotates each instruction with the
// relocation it carries, the internal branch target's label, the frame
// slot it addresses ([sp,#off], add xN, sp, #off, and the caller's stack
// arguments at [x29,#32+8k]) and, for func_meta stores, the decoded value.
func Explain(im *arch.Image, base uint64) ([]arch.Line, error) {
	insns, err := Decode(im.Code, base)
	var lines []arch.Line
	// Values built by move-wide sequences, by register; a register is
	// forgotten when anything else writes it.
	vals := map[int]uint64{}
	for _, in := range insns {
		l := arch.Line{Off: in.Off, Bytes: in.Bytes, Hex: arch.HexBytes(in.Bytes), Text: in.Text, Labels: im.LabelsAt(in.Off)}
		var notes []string
		for _, r := range im.Relocs {
			if r.Off == in.Off {
				notes = append(notes, relocNote(r))
			} else if r.Off < in.Off && in.Off < r.Off+r.Len {
				notes = append(notes, "... "+r.Sym)
			}
		}
		if in.inst.Op == arm64asm.BLR {
			for _, r := range im.Relocs {
				if r.Kind == arch.A64MovWide && r.Off+r.Len == in.Off {
					notes = append(notes, "call "+r.Sym)
				}
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
		w := in.Word
		switch {
		case w&0xffc00000 == 0xf9000000 || w&0xffc00000 == 0xf9400000:
			// ldr/str Xt, [Xn, #imm] (unsigned offset)
			rt, rn, off := int(w&31), int(w>>5)&31, int(w>>10&0xfff)*8
			switch rn {
			case sp:
				slot := im.SlotAt(off)
				if v, ok := vals[rt]; ok && slot == "func_meta" && w&0xffc00000 == 0xf9000000 {
					notes = append(notes, arch.DescribeFuncMeta(v))
				} else if slot != "" {
					notes = append(notes, slot)
				}
			case fp:
				if off >= 32 {
					notes = append(notes, fmt.Sprintf("caller's stack arg word %d", (off-32)/8))
				}
			}
		case w&0xffc003e0 == 0x910003e0 && w&31 != sp && w&31 != fp:
			// add xN, sp, #imm (not the prologue's mov x29, sp)
			if slot := im.SlotAt(int(w >> 10 & 0xfff)); slot != "" {
				notes = append(notes, "&"+slot)
			}
		}
		if _, _, rd, _, _, ok := movWideFields(w); ok {
			if v, err := simulateMovWide([]uint32{w}); err == nil && (w>>29)&3 != movK {
				vals[rd] = v
			} else if old, ok := vals[rd]; ok {
				vals[rd], _ = simulateMovWideFrom(old, w)
			}
		} else if in.inst.Op == arm64asm.BL || in.inst.Op == arm64asm.BLR {
			clear(vals)
		} else {
			delete(vals, int(w&31))
		}
		l.Comment = strings.Join(notes, "; ")
		lines = append(lines, l)
	}
	return lines, err
}

// simulateMovWideFrom applies one movk to a known value.
func simulateMovWideFrom(v uint64, w uint32) (uint64, bool) {
	sf, opc, _, imm, shift, ok := movWideFields(w)
	if !ok || opc != movK {
		return v, false
	}
	v = v&^(0xffff<<shift) | uint64(imm)<<shift
	if !sf {
		v &= 0xffffffff
	}
	return v, true
}

func relocNote(r arch.Reloc) string {
	if r.Kind == arch.A64Branch26 {
		return r.Sym
	}
	return fmt.Sprintf("%s = %#x", r.Sym, r.Value)
}
