package x86

import (
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"github.com/bpftramp/tramp/arch"
)

// Explain decodes an image and annotates each instruction with the
// relocation it carries, the frame slot it touches and, for func_meta
// stores, the decoded value.
func Explain(im *arch.Image, base uint64) ([]arch.Line, error) {
	insns, err := Decode(im.Code, base)
	var lines []arch.Line
	var lastImm *uint64
	for _, in := range insns {
		l := arch.Line{Off: in.Off, Bytes: in.Bytes, Hex: arch.HexBytes(in.Bytes), Text: in.Text, Labels: im.LabelsAt(in.Off)}
		var notes []string
		for _, r := range im.Relocs {
			if r.Off >= in.Off && r.Off < in.Off+in.Len {
				notes = append(notes, relocNote(r))
			}
		}
		if in.Branch && in.Target >= base && in.Target < base+uint64(len(im.Code)) {
			off := int(in.Target - base)
			name := fmt.Sprintf("+%#x", off)
			if lb := im.LabelsAt(off); len(lb) > 0 {
				name = lb[0]
			}
			notes = append(notes, "to "+name)
		}
		// Track mov rax, imm for the func_meta store that follows.
		var imm *uint64
		if in.inst == nil { // ENDBR forms: nothing more to say
			lastImm = nil
			l.Comment = strings.Join(notes, "; ")
			lines = append(lines, l)
			continue
		}
		if in.inst.Op == x86asm.MOV || in.inst.Op == x86asm.XOR {
			if reg, ok := in.inst.Args[0].(x86asm.Reg); ok && (reg == x86asm.RAX || reg == x86asm.EAX) {
				var v uint64
				if in.inst.Op == x86asm.MOV {
					if i, ok := in.inst.Args[1].(x86asm.Imm); ok {
						v = uint64(i)
						if reg == x86asm.EAX {
							v &= 0xffffffff
						}
						imm = &v
					}
				} else if r2, ok := in.inst.Args[1].(x86asm.Reg); ok && r2 == reg {
					imm = &v
				}
			}
		}
		for _, a := range in.inst.Args {
			m, ok := a.(x86asm.Mem)
			if !ok || m.Base != x86asm.RBP || m.Index != 0 {
				continue
			}
			slot := im.SlotAt(int(m.Disp))
			switch {
			case slot == "func_meta" && lastImm != nil:
				notes = append(notes, arch.DescribeFuncMeta(*lastImm))
			case slot != "":
				notes = append(notes, slot)
			case m.Disp > 0:
				notes = append(notes, fmt.Sprintf("caller's stack arg %d", (m.Disp-16)/8))
			}
		}
		lastImm = imm
		l.Comment = strings.Join(notes, "; ")
		lines = append(lines, l)
	}
	return lines, err
}

func relocNote(r arch.Reloc) string {
	switch r.Kind {
	case arch.RelCall32, arch.RelJump32:
		return r.Sym
	}
	return fmt.Sprintf("%s = %#x", r.Sym, r.Value)
}
