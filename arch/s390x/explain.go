package s390x

import (
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/arch"
)

// Explain decodes an image and annotates each instruction with the
// relocation it carries, the internal branch target's label, the frame
// slots it addresses (relative to %r15; the caller's tail call counter at
// FrameSize+64 and the callee's at 64 by name) and, for func_meta
// stores, the decoded value.
func Explain(im *arch.Image, base uint64) ([]arch.Line, error) {
	insns, err := decodeOn(im.Code, base)
	lines := make([]arch.Line, 0, len(insns))
	// Values built in registers by lghi or a load_imm64 pair; a register
	// is forgotten when anything else writes it.
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
		if in.PCRel && in.Target >= base && in.Target < base+uint64(len(im.Code)) {
			off := int(in.Target - base)
			name := fmt.Sprintf("+%#x", off)
			if lb := im.LabelsAt(off); len(lb) > 0 {
				name = lb[0]
			}
			notes = append(notes, "to "+name)
		}
		switch in.k {
		case kBrcl:
			switch in.r1 {
			case maskNever:
				notes = append(notes, "skip NOP: brcl 15 once the program is detached")
			case maskEqual:
				notes = append(notes, "enter helper said 0: skip the program")
			case maskNotEq:
				notes = append(notes, "fmod_ret result non-zero")
			}
		case kStg:
			if in.b2 != r15 {
				break
			}
			s := im.SlotAt(int(in.disp))
			if v, ok := vals[in.r1]; ok && s == "func_meta" {
				notes = append(notes, arch.DescribeFuncMeta(v))
			} else if s != "" {
				notes = append(notes, s)
			}
		case kLg, kLtg:
			if s := im.SlotAt(int(in.disp)); in.b2 == r15 && s != "" {
				notes = append(notes, s)
			}
		case kStmg, kLmg:
			first, last := im.SlotAt(int(in.disp)), im.SlotAt(int(in.disp)+8*(in.r2-in.r1))
			if in.b2 == r15 && first != "" && in.r2 > in.r1 {
				notes = append(notes, first+".."+last)
			} else if in.b2 == r15 && first != "" {
				notes = append(notes, first)
			}
		case kLa:
			if s := im.SlotAt(int(in.disp)); in.b2 == r15 && s != "" {
				notes = append(notes, "&"+s)
			}
		case kMvc, kXc:
			dst := ssSlotName(im, in.d1, in.length)
			src := fmt.Sprintf("*%%r%d", in.b2)
			if in.b2 == r15 {
				src = ssSlotName(im, in.disp, in.length)
			}
			if in.k == kXc {
				notes = append(notes, dst+" = 0")
			} else {
				notes = append(notes, dst+" <- "+src)
			}
		}
		// Track lghi and load_imm64 results.
		switch in.k {
		case kLghi:
			vals[in.r1] = uint64(in.imm)
		case kLlihf:
			if v, ok := ImmValue(im.Code, in.Off); ok {
				vals[in.r1] = v
			} else {
				delete(vals, in.r1)
			}
		case kOilf:
		case kBrasl, kBasr:
			clear(vals)
		case kLgr, kLtgr, kExtend, kAghi, kLa, kLg, kLtg:
			delete(vals, in.r1)
		case kLmg:
			for r := in.r1; r <= in.r2; r++ {
				delete(vals, r)
			}
		}
		l.Comment = strings.Join(notes, "; ")
		lines = append(lines, l)
	}
	return lines, err
}

// ssSlotName names an mvc or xc operand of length bytes at %r15+d: the
// tail call counters (4 bytes), which lie in other slots' space (the
// caller's at FrameSize+64 overlaps one of the frame's slots, func_meta
// or an argument, which the trampoline overwrites and gives back at its
// end), by what they are, else the frame slot.
func ssSlotName(im *arch.Image, d int64, length int) string {
	switch {
	case length == 4 && im.FrameSize > 0 && d == int64(im.FrameSize)+tailCallCntOff:
		return "parent's tail_call_cnt"
	case length == 4 && d == tailCallCntOff:
		return "callee's tail_call_cnt"
	}
	return im.SlotAt(int(d))
}

// decodeOn is Decode that goes on past what does not decode, as a "(bad)"
// halfword, so that a listing (and a diff of listings) covers the whole
// code; the error is the first one.
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
		for _, in := range insns {
			off += in.Len
		}
		n := min(2, len(code)-off)
		out = append(out, Insn{Off: off, Len: n, Bytes: code[off : off+n], Text: "(bad)", Op: "(bad)"})
		off += n
	}
	return out, first
}

func relocNote(r arch.Reloc) string {
	if r.Kind == RILRel32 {
		return r.Sym
	}
	return fmt.Sprintf("%s = %#x", r.Sym, r.Value)
}
