package riscv64

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/arch/riscv64/riscv64asm"

	"github.com/bpftramp/tramp/arch"
)

// kind is what an instruction does, the compressed forms expanded to the
// base instruction they stand for.
type kind int

const (
	kOther kind = iota
	kAddi
	kAddiw
	kSlli
	kLui
	kAuipc
	kJal
	kJalr
	kBeq
	kBne
	kLd
	kSd
)

// Insn is one decoded instruction of an image.
type Insn struct {
	Off   int
	Len   int // 2 (RVC) or 4
	Bytes []byte
	// Text is the instruction in GNU syntax as golang.org/x/arch prints
	// it, PC-relative targets written as absolute addresses.
	Text string
	// Op is x/arch's mnemonic ("C.ADDI16SP", "AUIPC", "JAL", ...).
	Op string
	// PCRel: a jal or conditional branch; Target is where it goes.
	PCRel  bool
	Target uint64

	k            kind
	rd, rs1, rs2 int
	imm          int64
}

// fields gives what the trampoline checker and Explain need of an
// instruction, from its encoding: the base instruction, registers and
// immediate of the RV64I and RVC forms the JIT emits (kOther for the
// rest, which still decode).
func fields(b []byte) (k kind, rd, rs1, rs2 int, imm int64) {
	if b[0]&3 == 3 {
		w := binary.LittleEndian.Uint32(b)
		op, f3 := w&0x7f, int(w>>12&7)
		rd, rs1, rs2 = int(w>>7&31), int(w>>15&31), int(w>>20&31)
		iimm := int64(int32(w) >> 20)
		switch {
		case op == 0x13 && f3 == 0:
			return kAddi, rd, rs1, 0, iimm
		case op == 0x13 && f3 == 1 && w>>26 == 0:
			return kSlli, rd, rs1, 0, int64(w >> 20 & 0x3f)
		case op == 0x1b && f3 == 0:
			return kAddiw, rd, rs1, 0, iimm
		case op == 0x37:
			return kLui, rd, 0, 0, int64(int32(w) >> 12)
		case op == 0x17:
			return kAuipc, rd, 0, 0, int64(int32(w) >> 12)
		case op == 0x6f:
			u := int64(w>>31&1)<<20 | int64(w>>21&0x3ff)<<1 | int64(w>>20&1)<<11 | int64(w>>12&0xff)<<12
			return kJal, rd, 0, 0, u << 43 >> 43
		case op == 0x67 && f3 == 0:
			return kJalr, rd, rs1, 0, iimm
		case op == 0x63 && (f3 == 0 || f3 == 1):
			u := int64(w>>31&1)<<12 | int64(w>>25&0x3f)<<5 | int64(w>>8&0xf)<<1 | int64(w>>7&1)<<11
			k := kBeq
			if f3 == 1 {
				k = kBne
			}
			return k, 0, rs1, rs2, u << 51 >> 51
		case op == 0x03 && f3 == 3:
			return kLd, rd, rs1, 0, iimm
		case op == 0x23 && f3 == 3:
			return kSd, 0, rs1, rs2, int64(int32(w)>>25)<<5 | int64(w>>7&31)
		}
		return kOther, 0, 0, 0, 0
	}
	h := binary.LittleEndian.Uint16(b)
	q, f3 := h&3, int(h>>13)
	r := int(h >> 7 & 31)
	r2 := int(h >> 2 & 31)
	cr1, cr2 := int(h>>7&7)+8, int(h>>2&7)+8
	ci := int64(h>>12&1)<<5 | int64(h>>2&31)
	sext6 := ci << 58 >> 58
	switch {
	case q == 0 && f3 == 0 && h != 0: // c.addi4spn
		u := int64(h>>11&3)<<4 | int64(h>>7&0xf)<<6 | int64(h>>6&1)<<2 | int64(h>>5&1)<<3
		return kAddi, cr2, sp, 0, u
	case q == 0 && f3 == 3: // c.ld
		u := int64(h>>10&7)<<3 | int64(h>>5&3)<<6
		return kLd, cr2, cr1, 0, u
	case q == 0 && f3 == 7: // c.sd
		u := int64(h>>10&7)<<3 | int64(h>>5&3)<<6
		return kSd, 0, cr1, cr2, u
	case q == 1 && f3 == 0: // c.addi, c.nop
		return kAddi, r, r, 0, sext6
	case q == 1 && f3 == 1: // c.addiw
		return kAddiw, r, r, 0, sext6
	case q == 1 && f3 == 2: // c.li
		return kAddi, r, zero, 0, sext6
	case q == 1 && f3 == 3 && r == sp: // c.addi16sp
		u := int64(h>>12&1)<<9 | int64(h>>6&1)<<4 | int64(h>>5&1)<<6 | int64(h>>3&3)<<7 | int64(h>>2&1)<<5
		return kAddi, sp, sp, 0, u << 54 >> 54
	case q == 1 && f3 == 3: // c.lui
		return kLui, r, 0, 0, sext6
	case q == 2 && f3 == 0: // c.slli
		return kSlli, r, r, 0, ci
	case q == 2 && f3 == 3: // c.ldsp
		u := int64(h>>12&1)<<5 | int64(h>>5&3)<<3 | int64(h>>2&7)<<6
		return kLd, r, sp, 0, u
	case q == 2 && f3 == 7: // c.sdsp
		u := int64(h>>10&7)<<3 | int64(h>>7&7)<<6
		return kSd, 0, sp, r2, u
	case q == 2 && f3 == 4 && h>>12&1 == 0 && r2 == 0: // c.jr
		return kJalr, zero, r, 0, 0
	case q == 2 && f3 == 4 && h>>12&1 == 0: // c.mv
		return kAddi, r, r2, 0, 0
	case q == 2 && f3 == 4 && r2 == 0 && r != 0: // c.jalr
		return kJalr, ra, r, 0, 0
	}
	return kOther, 0, 0, 0, 0
}

// Decode splits code into 2- and 4-byte instructions with
// golang.org/x/arch. A truncated or undecodable instruction (the all-zero
// parcel included, which the kernel fills free memory with) stops it with
// an error naming the offset; the instructions before it are returned.
func Decode(code []byte, base uint64) ([]Insn, error) {
	var out []Insn
	for off := 0; off < len(code); {
		if len(code)-off < 2 || code[off]&3 == 3 && len(code)-off < 4 {
			return out, fmt.Errorf("offset %#x: %d trailing bytes, not a whole instruction", off, len(code)-off)
		}
		n := 2
		if code[off]&3 == 3 {
			n = 4
		}
		b := code[off : off+n]
		if n == 2 && b[0] == 0 && b[1] == 0 {
			// The all-zero parcel is defined illegal (c.unimp), what
			// bpf_fill_ill_insns fills holes with; x/arch reads it as a
			// csrrw.
			return out, fmt.Errorf("offset %#x: the all-zero parcel is an illegal instruction", off)
		}
		inst, err := riscv64asm.Decode(b)
		if err != nil || inst.Len != n {
			return out, fmt.Errorf("offset %#x: cannot decode % x: %v", off, b, err)
		}
		in := Insn{Off: off, Len: n, Bytes: b, Op: inst.Op.String()}
		in.k, in.rd, in.rs1, in.rs2, in.imm = fields(b)
		pc := base + uint64(off)
		text := riscv64asm.GNUSyntax(inst)
		switch in.k {
		case kJal, kBeq, kBne:
			in.PCRel = true
			in.Target = pc + uint64(in.imm)
			text = retarget(text, in.imm, in.Target)
		}
		// Operands separated by ", " as objdump writes them (the listing
		// diff takes a branch's last field as its target).
		in.Text = strings.ReplaceAll(abiNames(strings.TrimSpace(text)), ",", ", ")
		out = append(out, in)
		off += n
	}
	return out, nil
}

// xReg matches x/arch's register names (x0..x31).
var xReg = regexp.MustCompile(`\bx([0-9]|[12][0-9]|3[01])\b`)

// abiNames writes registers by their ABI names (sp, s0, a0, ...), as
// objdump and the kernel's RV_REG_* names do.
func abiNames(text string) string {
	return xReg.ReplaceAllStringFunc(text, func(s string) string {
		n, _ := strconv.Atoi(s[1:])
		return regNames[n]
	})
}

// retarget writes a PC-relative operand (x/arch prints the offset) as the
// absolute target.
func retarget(text string, rel int64, target uint64) string {
	for _, s := range []string{fmt.Sprint(rel), fmt.Sprintf("%#x", rel)} {
		if i := strings.LastIndex(text, s); i >= 0 && i+len(s) == len(text) {
			return text[:i] + fmt.Sprintf("%#x", target)
		}
	}
	return text + fmt.Sprintf(" <%#x>", target)
}

// immValue runs an emit_imm sequence starting at insns[0]: a lui or li
// (addi rd, zero) into one register, then addiw, slli and addi of that
// register on itself. It returns the value and how many instructions
// built it.
func immValue(insns []Insn) (v int64, reg, n int, ok bool) {
	if len(insns) == 0 {
		return 0, 0, 0, false
	}
	in := insns[0]
	switch {
	case in.k == kLui && in.rd != zero:
		v = in.imm << 12
	case in.k == kAddi && in.rs1 == zero && in.rd != zero:
		v = in.imm
	default:
		return 0, 0, 0, false
	}
	reg, n = in.rd, 1
	for _, in := range insns[1:] {
		if in.rd != reg || in.rs1 != reg {
			break
		}
		switch in.k {
		case kAddiw:
			v = int64(int32(v + in.imm))
		case kSlli:
			v <<= in.imm
		case kAddi:
			v += in.imm
		default:
			return v, reg, n, true
		}
		n++
	}
	return v, reg, n, true
}

// ImmValue reads the value of the emit_imm sequence at byte offset off of
// code (the kernel's image: its own im and struct bpf_prog pointers), or
// false when no such sequence starts there.
func ImmValue(code []byte, off int) (uint64, bool) {
	if off < 0 || off >= len(code) {
		return 0, false
	}
	var insns []Insn
	for o := off; o < len(code) && len(insns) < 8; {
		in, _ := Decode(code[o:min(o+4, len(code))], 0)
		if len(in) == 0 {
			break
		}
		insns = append(insns, in[0])
		o += in[0].Len
	}
	v, _, _, ok := immValue(insns)
	return uint64(v), ok
}

// ReturnSequence is how a trampoline leaves.
type ReturnSequence int

// Return sequences (the end of __arch_prepare_bpf_trampoline).
const (
	// RetSkipFrame: BPF_TRAMP_F_SKIP_FRAME, back to the traced
	// function's parent: jr ra.
	RetSkipFrame ReturnSequence = iota
	// RetToFunc: back into the traced function at func+8: jr t0.
	RetToFunc
)

// ReturnOf gives the return sequence of an image with these flags.
func ReturnOf(skipFrame bool) ReturnSequence {
	if skipFrame {
		return RetSkipFrame
	}
	return RetToFunc
}

// Check verifies an image's structure: the code is whole 2- and 4-byte
// instructions that all decode; every jal and branch lands on an
// instruction of the image or leaves it only as a jal carrying an RVJal
// relocation with that target; every auipc is followed by a jalr of the
// same register (an RVAuipcJalr relocation, reaching its value); every
// RVImm relocation covers an emit_imm sequence building its value; every
// jalr that calls (ra) goes through such a pair; and the code ends with
// the frame pops and the expected return.
func Check(im *arch.Image, base uint64, want ReturnSequence) error {
	if len(im.Code) == 0 {
		return fmt.Errorf("empty image")
	}
	insns, err := Decode(im.Code, base)
	if err != nil {
		return err
	}
	end := base + uint64(len(im.Code))
	at := make(map[int]int, len(insns)) // offset -> index
	for i, in := range insns {
		at[in.Off] = i
	}
	relocAt := map[int]arch.Reloc{}
	for _, r := range im.Relocs {
		if _, ok := at[r.Off]; !ok || r.Len <= 0 || r.Off+r.Len > len(im.Code) {
			return fmt.Errorf("relocation %s at %#x+%d does not cover whole instructions of the code", r.Sym, r.Off, r.Len)
		}
		if _, ok := at[r.Off+r.Len]; !ok && r.Off+r.Len != len(im.Code) {
			return fmt.Errorf("relocation %s at %#x+%d ends inside an instruction", r.Sym, r.Off, r.Len)
		}
		relocAt[r.Off] = r
	}
	for i, in := range insns {
		switch in.k {
		case kJal, kBeq, kBne:
			if in.Target >= base && in.Target < end {
				if _, ok := at[int(in.Target-base)]; !ok {
					return fmt.Errorf("offset %#x: %s lands at %#x, inside an instruction", in.Off, in.Text, in.Target-base)
				}
				continue
			}
			r, ok := relocAt[in.Off]
			if !ok || in.k != kJal || r.Kind != arch.RVJal || r.Value != in.Target {
				return fmt.Errorf("offset %#x: %s leaves the image without a relocation", in.Off, in.Text)
			}
		case kAuipc:
			if i+1 >= len(insns) || insns[i+1].k != kJalr || insns[i+1].rs1 != in.rd {
				return fmt.Errorf("offset %#x: %s is not followed by a jalr through %s", in.Off, in.Text, regNames[in.rd])
			}
		case kJalr:
			if in.rd == ra && (i == 0 || insns[i-1].k != kAuipc) {
				return fmt.Errorf("offset %#x: %s calls through %s, which no auipc sets just before", in.Off, in.Text, regNames[in.rs1])
			}
		}
	}
	for _, r := range im.Relocs {
		i := at[r.Off]
		in := insns[i]
		switch r.Kind {
		case arch.RVJal:
			if in.k != kJal || r.Len != 4 || in.Target != r.Value {
				return fmt.Errorf("offset %#x: relocation %s (%#x) is on %q, not a jal to it", r.Off, r.Sym, r.Value, in.Text)
			}
		case arch.RVAuipcJalr:
			if in.k != kAuipc || r.Len != 8 || i+1 >= len(insns) {
				return fmt.Errorf("offset %#x: relocation %s is on %q, not an auipc+jalr pair", r.Off, r.Sym, in.Text)
			}
			if got := base + uint64(r.Off) + uint64(in.imm<<12+insns[i+1].imm); got != r.Value {
				return fmt.Errorf("offset %#x: the pair reaches %#x, its relocation %s says %#x", r.Off, got, r.Sym, r.Value)
			}
		case arch.RVImm:
			var seq []Insn
			for j := i; j < len(insns) && insns[j].Off < r.Off+r.Len; j++ {
				seq = append(seq, insns[j])
			}
			v, _, n, ok := immValue(seq)
			if !ok || n != len(seq) {
				return fmt.Errorf("offset %#x: relocation %s does not cover one emit_imm sequence", r.Off, r.Sym)
			}
			if uint64(v) != r.Value {
				return fmt.Errorf("offset %#x: the sequence builds %#x, its relocation %s says %#x", r.Off, uint64(v), r.Sym, r.Value)
			}
		default:
			return fmt.Errorf("offset %#x: relocation kind %s is not a riscv64 one", r.Off, r.Kind)
		}
	}
	n := len(insns)
	if n < 8 {
		return fmt.Errorf("image of %d instructions is too short for a trampoline", n)
	}
	last := insns[n-1]
	wantReg := t0
	if want == RetSkipFrame {
		wantReg = ra
	}
	if last.k != kJalr || last.rd != zero || last.rs1 != wantReg || last.imm != 0 {
		return fmt.Errorf("code ends with %q at %#x, not jr %s", last.Text, last.Off, regNames[wantReg])
	}
	// ld ra, 8(sp); ld s0, 0(sp); addi sp, sp, 16 before it.
	pops := insns[n-4 : n-1]
	if pops[0].k != kLd || pops[0].rd != ra || pops[0].rs1 != sp || pops[0].imm != 8 ||
		pops[1].k != kLd || pops[1].rd != fp || pops[1].rs1 != sp || pops[1].imm != 0 ||
		pops[2].k != kAddi || pops[2].rd != sp || pops[2].rs1 != sp || pops[2].imm != 16 {
		return fmt.Errorf("the return at %#x does not follow the parent frame's pop", last.Off)
	}
	return nil
}
