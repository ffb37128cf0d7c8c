package arm64

import (
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/arch/arm64/arm64asm"

	"github.com/bpftramp/tramp/arch"
)

// Insn is one decoded instruction of an image.
type Insn struct {
	Off   int
	Word  uint32
	Bytes []byte
	// Text is the instruction in GNU syntax, PC-relative targets written
	// as absolute addresses, hints by their names ("bti jc").
	Text string
	// Op is the mnemonic ("BL", "MOVK", "BTI", "PACIASP", ...).
	Op string
	// PCRel: the instruction has a PC-relative target (b, bl, b.cond,
	// cbz, cbnz, tbz, tbnz, adr, adrp, ldr literal); Target is it.
	PCRel  bool
	Target uint64
	inst   arm64asm.Inst
}

// hintNames are the hint-space instructions arm64asm prints as "hint #n".
var hintNames = map[int]string{
	1: "yield", 2: "wfe", 3: "wfi", 4: "sev", 5: "sevl", 7: "xpaclri",
	8: "pacia1716", 10: "pacib1716", 12: "autia1716", 14: "autib1716",
	16: "esb", 17: "psb csync", 18: "tsb csync", 20: "csdb",
	24: "paciaz", 25: "paciasp", 26: "pacibz", 27: "pacibsp",
	28: "autiaz", 29: "autiasp", 30: "autibz", 31: "autibsp",
	32: "bti", 34: "bti c", 36: "bti j", 38: "bti jc",
}

// Decode splits code into 4-byte instructions with golang.org/x/arch. A
// trailing partial word or an undecodable word stops it with an error
// naming the offset; the instructions before it are returned.
func Decode(code []byte, base uint64) ([]Insn, error) {
	var out []Insn
	for off := 0; off+4 <= len(code); off += 4 {
		w := binary.LittleEndian.Uint32(code[off:])
		inst, err := arm64asm.Decode(code[off : off+4])
		if err != nil {
			return out, fmt.Errorf("offset %#x: cannot decode %08x: %v", off, w, err)
		}
		in := Insn{Off: off, Word: w, Bytes: code[off : off+4], Op: inst.Op.String(), inst: inst}
		pc := base + uint64(off)
		for _, a := range inst.Args {
			if r, ok := a.(arm64asm.PCRel); ok {
				in.PCRel = true
				in.Target = pc + uint64(int64(r))
			}
		}
		text := arm64asm.GNUSyntax(inst)
		for _, a := range inst.Args {
			if r, ok := a.(arm64asm.PCRel); ok {
				text = strings.Replace(text, r.String(), fmt.Sprintf("%#x", in.Target), 1)
			}
		}
		if inst.Op == arm64asm.HINT {
			if h, ok := inst.Args[0].(arm64asm.Imm_hint); ok {
				if name, ok := hintNames[int(h)]; ok {
					text = name
					in.Op = strings.ToUpper(strings.Fields(name)[0])
				}
			}
		}
		in.Text = strings.TrimSpace(text)
		out = append(out, in)
	}
	if len(code)%4 != 0 {
		return out, fmt.Errorf("offset %#x: %d trailing bytes, not a whole instruction", len(code)&^3, len(code)%4)
	}
	return out, nil
}

// ReturnSequence is how a trampoline leaves.
type ReturnSequence int

// Return sequences (the end of prepare_trampoline).
const (
	// RetSkipFrame: BPF_TRAMP_F_SKIP_FRAME, back to the traced
	// function's parent: mov x30, x9; ret x9.
	RetSkipFrame ReturnSequence = iota
	// RetToFunc: back into the traced function at func+8: mov x10, x30;
	// mov x30, x9; ret x10.
	RetToFunc
)

// ReturnOf gives the return sequence of an image with these flags.
func ReturnOf(skipFrame bool) ReturnSequence {
	if skipFrame {
		return RetSkipFrame
	}
	return RetToFunc
}

// movWideFields splits a movn/movz/movk word.
func movWideFields(w uint32) (sf bool, opc, rd int, imm16 uint16, shift int, ok bool) {
	if w&0x1f800000 != 0x12800000 {
		return
	}
	opc = int(w>>29) & 3
	if opc == 1 {
		return
	}
	sf = w>>31 != 0
	shift = int(w>>21&3) * 16
	if !sf && shift > 16 {
		return
	}
	return sf, opc, int(w & 31), uint16(w >> 5), shift, true
}

// simulateMovWide runs a movn/movz/movk sequence on one register and
// gives the value built, or an error saying why it is not one.
func simulateMovWide(words []uint32) (uint64, error) {
	var v uint64
	reg := -1
	for i, w := range words {
		sf, opc, rd, imm, shift, ok := movWideFields(w)
		if !ok {
			return 0, fmt.Errorf("word %d (%08x) is not a move-wide instruction", i, w)
		}
		if reg >= 0 && rd != reg {
			return 0, fmt.Errorf("word %d writes x%d, the sequence builds x%d", i, rd, reg)
		}
		if i > 0 && opc != movK {
			return 0, fmt.Errorf("word %d (%08x) restarts the value", i, w)
		}
		reg = rd
		switch opc {
		case movZ:
			v = uint64(imm) << shift
		case movN:
			v = ^(uint64(imm) << shift)
		case movK:
			v = v&^(0xffff<<shift) | uint64(imm)<<shift
		}
		if !sf {
			v &= 0xffffffff
		}
	}
	return v, nil
}

// Check verifies an image's structure: the code is whole instructions
// that all decode; every PC-relative target (b, bl, cbz, cbnz, b.cond,
// adr, ...) lands on an instruction of the image or leaves it only as a bl
// carrying an A64Branch26 relocation with that target; every relocation
// covers what its kind says (a bl to its value, or a move-wide sequence
// building its value); every blr is preceded by a relocated load of its
// register; and the code ends with the expected return sequence.
func Check(im *arch.Image, base uint64, want ReturnSequence) error {
	if len(im.Code) == 0 {
		return fmt.Errorf("empty image")
	}
	m := checkMemo
	m.mu.Lock()
	defer m.mu.Unlock()
	insns, err := m.decodeLocked(im.Code, base, m.insns[:0])
	m.insns = insns
	if err != nil {
		return err
	}
	end := base + uint64(len(im.Code))
	// relocAt[i]-1 is the relocation starting at instruction i, endsAt[i]-1
	// the one ending just before it.
	m.relocAt = append(m.relocAt[:0], make([]int32, len(insns)+1)...)
	m.endsAt = append(m.endsAt[:0], make([]int32, len(insns)+1)...)
	relocAt, endsAt := m.relocAt, m.endsAt
	for k, r := range im.Relocs {
		if r.Off >= 0 && r.Off%4 == 0 && r.Off/4 < len(insns) {
			relocAt[r.Off/4] = int32(k + 1)
		}
		if e := r.Off + r.Len; r.Len > 0 && e%4 == 0 && e >= 0 && e/4 <= len(insns) {
			endsAt[e/4] = int32(k + 1)
		}
	}
	startingAt := func(off int) (arch.Reloc, bool) {
		if off < 0 || off%4 != 0 || off/4 >= len(relocAt) || relocAt[off/4] == 0 {
			return arch.Reloc{}, false
		}
		return im.Relocs[relocAt[off/4]-1], true
	}
	for _, in := range insns {
		if !in.pcRel {
			continue
		}
		if in.target >= base && in.target < end {
			if (in.target-base)%4 != 0 {
				return fmt.Errorf("offset %#x: %s lands at %#x, inside an instruction", in.off, textAt(im.Code, base, in.off), in.target-base)
			}
			continue
		}
		r, ok := startingAt(in.off)
		if !ok || r.Len != 4 || r.Kind != arch.A64Branch26 || in.op != arm64asm.BL {
			return fmt.Errorf("offset %#x: %s leaves the image without a relocation", in.off, textAt(im.Code, base, in.off))
		}
	}
	for _, r := range im.Relocs {
		if r.Off < 0 || r.Len <= 0 || r.Off%4 != 0 || r.Len%4 != 0 || r.Off+r.Len > len(im.Code) {
			return fmt.Errorf("relocation %s at %#x+%d does not cover whole instructions of the code", r.Sym, r.Off, r.Len)
		}
		switch r.Kind {
		case arch.A64Branch26:
			in := insns[r.Off/4]
			if r.Len != 4 || in.op != arm64asm.BL {
				return fmt.Errorf("offset %#x: relocation %s is on %q, not a bl", r.Off, r.Sym, textAt(im.Code, base, in.off))
			}
			if in.target != r.Value {
				return fmt.Errorf("offset %#x: %s goes to %#x, its relocation %s says %#x", r.Off, textAt(im.Code, base, in.off), in.target, r.Sym, r.Value)
			}
		case arch.A64MovWide:
			var words []uint32
			for o := r.Off; o < r.Off+r.Len; o += 4 {
				words = append(words, insns[o/4].word)
			}
			v, err := simulateMovWide(words)
			if err != nil {
				return fmt.Errorf("offset %#x: relocation %s: %v", r.Off, r.Sym, err)
			}
			if v != r.Value {
				return fmt.Errorf("offset %#x: the sequence builds %#x, its relocation %s says %#x", r.Off, v, r.Sym, r.Value)
			}
		default:
			return fmt.Errorf("offset %#x: relocation kind %s is not an arm64 one", r.Off, r.Kind)
		}
	}
	for i, in := range insns {
		if in.op != arm64asm.BLR {
			continue
		}
		reg := int(in.word>>5) & 31
		found := false
		if i > 0 {
			if k := endsAt[i]; k > 0 && im.Relocs[k-1].Kind == arch.A64MovWide {
				if _, _, rd, _, _, ok := movWideFields(insns[i-1].word); ok && rd == reg {
					found = true
				}
			}
		}
		if !found {
			return fmt.Errorf("offset %#x: %s calls through x%d, which no relocated load sets just before", in.off, textAt(im.Code, base, in.off), reg)
		}
	}
	var tail []uint32
	switch want {
	case RetSkipFrame:
		tail = []uint32{movReg(lr, x9), ret(x9)}
	case RetToFunc:
		tail = []uint32{movReg(x10, lr), movReg(lr, x9), ret(x10)}
	default:
		return fmt.Errorf("unknown return sequence %d", want)
	}
	n := len(insns)
	if n < len(tail)+2 {
		return fmt.Errorf("image of %d instructions is too short for a trampoline", n)
	}
	for i, w := range tail {
		in := insns[n-len(tail)+i]
		if in.word != w && in.word != legacyMov(w) {
			return fmt.Errorf("code ends with %q at %#x, not the expected return sequence", textAt(im.Code, base, in.off), in.off)
		}
	}
	// Both sequences follow the two frame pops.
	if insns[n-len(tail)-2].word != ldpPost(fp, lr, sp) || insns[n-len(tail)-1].word != ldpPost(fp, x9, sp) {
		return fmt.Errorf("the return at %#x does not follow the two frame pops", insns[n-len(tail)].off)
	}
	return nil
}

// Diff compares generated code with code read from a kernel, instruction
// by instruction, and describes the first difference (nil when equal).
// Compare only the real code: a kernel image continues with brk #0x100
// words up to its size-pass length.
func Diff(got, want []byte, base uint64) error {
	gi, gerr := Decode(got, base)
	wi, werr := Decode(want, base)
	for i := 0; i < min(len(gi), len(wi)); i++ {
		if gi[i].Word != wi[i].Word {
			return fmt.Errorf("offset %#x: generated %08x %q, kernel %08x %q", gi[i].Off, gi[i].Word, gi[i].Text, wi[i].Word, wi[i].Text)
		}
	}
	switch {
	case gerr != nil:
		return fmt.Errorf("generated code: %w", gerr)
	case werr != nil:
		return fmt.Errorf("kernel code: %w", werr)
	case len(got) != len(want):
		return fmt.Errorf("generated %d bytes, kernel %d", len(got), len(want))
	}
	return nil
}

// legacyMov gives the pre-7.0 form (add xd, xn, #0) of an orr register
// move, or 0 for other words.
func legacyMov(w uint32) uint32 {
	if w&0xffe0ffe0 != 0xaa0003e0 {
		return 0
	}
	rd, rm := int(w&31), int(w>>16&31)
	a, _ := addSubImm(false, rd, rm, 0)
	return a
}

// textAt formats the instruction at off (for error messages).
func textAt(code []byte, base uint64, off int) string {
	in, err := Decode(code[off:off+4], base+uint64(off))
	if err != nil || len(in) == 0 {
		return fmt.Sprintf("%x", code[off:off+4])
	}
	return in[0].Text
}
