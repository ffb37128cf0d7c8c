package s390x

import (
	"fmt"
	"strings"

	"golang.org/x/arch/s390x/s390xasm"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// kind is what an instruction does, for the forms the JIT emits.
type kind int

const (
	kOther kind = iota
	kLgr
	kLtgr
	kExtend // lgbr, llgcr, lghr, llghr, lgfr, llgfr
	kAghi
	kLghi
	kLa
	kStg
	kLg
	kLtg
	kStmg
	kLmg
	kMvc
	kXc
	kLlihf
	kOilf
	kBrasl
	kBrcl
	kBasr
	kBcr
	kPCRelOther // any other relative branch: the JIT emits none
)

// Insn is one decoded instruction of an image.
type Insn struct {
	Off   int
	Len   int // 2, 4 or 6
	Bytes []byte
	// Text is the instruction in GNU syntax as golang.org/x/arch prints
	// it (extended mnemonics: jg, jgnop, br), PC-relative targets as
	// absolute addresses and llihf/oilf immediates unsigned, as objdump
	// writes them.
	Text string
	// Op is x/arch's mnemonic ("brcl", "stg", ...).
	Op string
	// PCRel: a brasl or brcl; Target is where it goes.
	PCRel  bool
	Target uint64

	k kind
	// r1 is R1 (or brcl's and bcr's mask M1), r2 the second register
	// (R2, R3 of stmg/lmg, X2 of RX/RXY), b2 and disp the second
	// operand's base and displacement, b1 and d1 an SS instruction's
	// first operand, length its length in bytes; imm an immediate (a
	// RIL's halfword count as bytes for brasl and brcl).
	r1, r2, b1, b2 int
	d1, disp       int64
	length         int
	imm            int64
}

// ilc is the instruction length the two top bits of the first byte give.
func ilc(b0 byte) int { return [4]int{2, 4, 4, 6}[b0>>6] }

// fields reads what Check and Explain need of an instruction from its
// encoding: the forms the JIT emits (kOther for the rest, which still
// decode). b has the instruction's length.
func fields(b []byte) (in Insn) {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	switch len(b) {
	case 2:
		in.r1, in.r2 = int(v>>4&15), int(v&15)
		switch v >> 8 {
		case 0x0d:
			in.k = kBasr
		case 0x07:
			in.k = kBcr
		}
	case 4:
		switch op := v >> 16; {
		case op == 0xb904 || op == 0xb902 || op == 0xb906 || op == 0xb984 ||
			op == 0xb907 || op == 0xb985 || op == 0xb914 || op == 0xb916:
			in.r1, in.r2 = int(v>>4&15), int(v&15)
			in.k = kExtend
			if op == 0xb904 {
				in.k = kLgr
			} else if op == 0xb902 {
				in.k = kLtgr
			}
		case v>>24 == 0xa7 && (v>>16&15 == 0xb || v>>16&15 == 0x9):
			in.r1, in.imm = int(v>>20&15), int64(int16(v))
			in.k = kAghi
			if v>>16&15 == 0x9 {
				in.k = kLghi
			}
		case v>>24 == 0x41:
			in.k, in.r1, in.r2, in.b2, in.disp = kLa, int(v>>20&15), int(v>>16&15), int(v>>12&15), int64(v&0xfff)
		}
	case 6:
		in.r1, in.r2, in.b2 = int(v>>36&15), int(v>>32&15), int(v>>28&15)
		disp20 := int64(v>>16&0xfff|(v>>8&0xff)<<12) << 44 >> 44
		switch op, op2 := v>>40, v&0xff; {
		case op == 0xe3 && (op2 == 0x24 || op2 == 0x04 || op2 == 0x02):
			in.k, in.disp = map[uint64]kind{0x24: kStg, 0x04: kLg, 0x02: kLtg}[op2], disp20
		case op == 0xeb && (op2 == 0x24 || op2 == 0x04):
			in.k, in.disp = kStmg, disp20
			if op2 == 0x04 {
				in.k = kLmg
			}
		case op == 0xd2 || op == 0xd7:
			in.k = kMvc
			if op == 0xd7 {
				in.k = kXc
			}
			in.length = int(v>>32&0xff) + 1
			in.b1, in.d1 = int(v>>28&15), int64(v>>16&0xfff)
			in.b2, in.disp = int(v>>12&15), int64(v&0xfff)
			in.r1, in.r2 = 0, 0
		case op == 0xc0:
			in.imm = int64(int32(uint32(v)))
			switch v >> 32 & 15 {
			case 0xe:
				in.k = kLlihf
			case 0xd:
				in.k = kOilf
			case 0x5:
				in.k, in.imm = kBrasl, 2*in.imm
			case 0x4:
				in.k, in.imm = kBrcl, 2*in.imm
			}
		}
	}
	return in
}

// decoderReady makes x/arch initialise its decoder cover table before any
// caller can decode concurrently: s390xasm.Decode sets it up lazily on
// first use without a lock.
var decoderReady = func() bool {
	_, _ = s390xasm.Decode([]byte{0x07, 0x07})
	return true
}()

// decodeOne decodes the instruction at the start of b (at least its
// length), turning what x/arch gets wrong into errors: it reads the
// all-zero halfword, which s390x defines as no instruction and the
// kernel fills free memory with (jit_fill_hole), as ".long 0x0" without
// an error. A panic in x/arch on input it does not expect is an error
// too.
func decodeOne(b []byte, pc uint64) (inst s390xasm.Inst, text string, err error) {
	if b[0] == 0 && b[1] == 0 {
		return inst, "", fmt.Errorf("the all-zero halfword is not an instruction (jit_fill_hole's fill)")
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("x/arch s390xasm failed on % x: %v", b, r)
		}
	}()
	inst, err = s390xasm.Decode(b)
	if err != nil {
		return inst, "", err
	}
	if inst.Len != len(b) {
		return inst, "", fmt.Errorf("x/arch decodes % x as %d bytes, its length code says %d", b, inst.Len, len(b))
	}
	return inst, s390xasm.GNUSyntax(inst, pc), nil
}

// Decode splits code into 2-, 4- and 6-byte instructions, their length
// given by the first byte's top bits (x/arch panics on an instruction cut
// short, so that is checked first), and decodes them with
// golang.org/x/arch. A truncated or undecodable instruction (the
// all-zero halfword included) stops it with an error naming the offset;
// the instructions before it are returned.
func Decode(code []byte, base uint64) ([]Insn, error) {
	_ = decoderReady
	var out []Insn
	for off := 0; off < len(code); {
		n := ilc(code[off])
		if len(code)-off < n {
			return out, fmt.Errorf("offset %#x: %d trailing bytes, not a whole %d-byte instruction", off, len(code)-off, n)
		}
		b := code[off : off+n]
		pc := base + uint64(off)
		inst, text, err := decodeOne(b, pc)
		if err != nil {
			return out, fmt.Errorf("offset %#x: cannot decode % x: %v", off, b, err)
		}
		in := fields(b)
		in.Off, in.Len, in.Bytes, in.Op = off, n, b, inst.Op.String()
		switch in.k {
		case kBrasl, kBrcl:
			in.PCRel = true
			in.Target = pc + uint64(in.imm)
		case kLlihf, kOilf:
			// x/arch prints the immediate signed; the instructions take
			// it unsigned, as objdump prints it.
			text = fmt.Sprintf("%s %%r%d,%d", inst.Op, in.r1, uint32(in.imm))
		case kOther:
			for _, a := range inst.Args {
				switch a.(type) {
				case s390xasm.RegIm12, s390xasm.RegIm16, s390xasm.RegIm24, s390xasm.RegIm32:
					in.k = kPCRelOther
				}
			}
		}
		// Operands separated by ", " (the listing diff takes a branch's
		// last field as its target).
		in.Text = strings.Replace(strings.TrimSpace(text), ",", ", ", -1)
		out = append(out, in)
		off += n
	}
	return out, nil
}

// ImmValue reads the value that the load_imm64 pair at byte offset off of
// code builds ("llihf %rN,hi; oilf %rN,lo": the kernel's im and struct
// bpf_prog pointers, which it exports nowhere), or false when no such
// pair starts there.
func ImmValue(code []byte, off int) (uint64, bool) {
	if off < 0 || off+12 > len(code) {
		return 0, false
	}
	hi, lo := fields(code[off:off+6]), fields(code[off+6:off+12])
	if ilc(code[off]) != 6 || ilc(code[off+6]) != 6 || hi.k != kLlihf || lo.k != kOilf || hi.r1 != lo.r1 {
		return 0, false
	}
	return uint64(uint32(hi.imm))<<32 | uint64(uint32(lo.imm)), true
}

// Return sequences: how a trampoline leaves (the end of
// __arch_prepare_bpf_trampoline).
const (
	// retParent: BPF_TRAMP_F_SKIP_FRAME, back to the traced function's
	// parent through %r14.
	retParent = iota
	// retOrigStack: BPF_TRAMP_F_ORIG_STACK without SKIP_FRAME, through
	// %r1 (the ftrace trampoline's return address).
	retOrigStack
	// retFunc: into the traced function at func+6 (brcl 15).
	retFunc
)

func returnOf(f trampoline.Flags) int {
	switch {
	case f&trampoline.FlagSkipFrame != 0:
		return retParent
	case f&trampoline.FlagOrigStack != 0:
		return retOrigStack
	}
	return retFunc
}

// Check verifies an image's structure for its plan: the code is whole
// instructions that all decode; every brcl lands on an instruction of the
// image, or leaves it only as "brcl 15" carrying a RILRel32 relocation
// with its target; every brasl is "brasl %r14" carrying such a
// relocation (no call lands anywhere but on its relocation's value);
// every Imm64Pair relocation covers a load_imm64 pair building its value;
// no other relative branch and no register branch appears but the
// return and, with BPF_TRAMP_F_ORIG_STACK, "basr %r14,%r8" after
// "lgr %r8,%r0"; each skip NOP (brcl 0) lands right after a call of an
// exit helper, one per program call; and the code opens with the
// frame's push and ends with its pop and the return the flags ask for.
func Check(im *arch.Image, base uint64, p *trampoline.Plan) error {
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
	exits := map[string]bool{}
	nodes := 0
	for _, l := range [][]trampoline.Node{p.Fentry, p.ModReturn, p.Fexit} {
		for _, n := range l {
			exits[n.Exit] = true
			nodes++
		}
	}
	savedR8, nops := false, 0
	for i, in := range insns {
		switch in.k {
		case kBrcl:
			if in.Target >= base && in.Target < end {
				t, ok := at[int(in.Target-base)]
				if !ok {
					return fmt.Errorf("offset %#x: %s lands at %#x, inside an instruction", in.Off, in.Text, in.Target-base)
				}
				if in.r1 == maskNever {
					nops++
					if t == 0 || insns[t-1].k != kBrasl || !exits[relocAt[insns[t-1].Off].Sym] {
						return fmt.Errorf("offset %#x: skip NOP %s does not land right after an exit helper's call", in.Off, in.Text)
					}
				}
				continue
			}
			r, ok := relocAt[in.Off]
			if !ok || in.r1 != maskAlways || r.Kind != RILRel32 || r.Value != in.Target {
				return fmt.Errorf("offset %#x: %s leaves the image without a relocation", in.Off, in.Text)
			}
		case kBrasl:
			r, ok := relocAt[in.Off]
			switch {
			case !ok || r.Kind != RILRel32:
				return fmt.Errorf("offset %#x: %s calls out of the image without a relocation", in.Off, in.Text)
			case r.Value != in.Target || in.r1 != r14:
				return fmt.Errorf("offset %#x: %s is not brasl %%r14 to its relocation's %s at %#x", in.Off, in.Text, r.Sym, r.Value)
			}
		case kLgr:
			if in.r1 == r8 && in.r2 == r0 {
				savedR8 = true
			}
		case kBasr:
			if in.r1 != r14 || in.r2 != r8 || !savedR8 || p.Flags&trampoline.FlagOrigStack == 0 {
				return fmt.Errorf("offset %#x: %s: only BPF_TRAMP_F_ORIG_STACK calls through a register, %%r8 after lgr %%r8,%%r0", in.Off, in.Text)
			}
		case kBcr:
			if i != len(insns)-1 {
				return fmt.Errorf("offset %#x: %s before the end of the code", in.Off, in.Text)
			}
		case kPCRelOther:
			return fmt.Errorf("offset %#x: %s: the JIT emits no such branch", in.Off, in.Text)
		}
	}
	if p.SkipNOP && nops != nodes {
		return fmt.Errorf("%d skip NOPs (brcl 0) for %d program calls", nops, nodes)
	}
	for _, r := range im.Relocs {
		i := at[r.Off]
		in := insns[i]
		switch r.Kind {
		case RILRel32:
			if (in.k != kBrasl && in.k != kBrcl) || r.Len != 6 || in.Target != r.Value {
				return fmt.Errorf("offset %#x: relocation %s (%#x) is on %q, not a brasl or brcl to it", r.Off, r.Sym, r.Value, in.Text)
			}
		case Imm64Pair:
			v, ok := ImmValue(im.Code, r.Off)
			if !ok || r.Len != 12 {
				return fmt.Errorf("offset %#x: relocation %s is on %q, not an llihf+oilf pair", r.Off, r.Sym, in.Text)
			}
			if v != r.Value {
				return fmt.Errorf("offset %#x: the pair builds %#x, its relocation %s says %#x", r.Off, v, r.Sym, r.Value)
			}
		default:
			return fmt.Errorf("offset %#x: relocation kind %s is not an s390x one", r.Off, r.Kind)
		}
	}
	return checkFrame(im, insns, relocAt, returnOf(p.Flags), layout(p).StackSize)
}

// checkFrame holds the code's ends to the frame: "lgr %r1,%r15;
// aghi %r15,-S; stg %r1,152(%r15)" first, "mvc S+64(4,%r15),...;
// aghi %r15,S" and the return last, S the plan's stack_size (and the
// image's FrameSize).
func checkFrame(im *arch.Image, insns []Insn, relocAt map[int]arch.Reloc, want, stackSize int) error {
	n := len(insns)
	if n < 8 {
		return fmt.Errorf("image of %d instructions is too short for a trampoline", n)
	}
	push, pushSP, link := insns[0], insns[1], insns[2]
	if push.k != kLgr || push.r1 != r1 || push.r2 != r15 || pushSP.k != kAghi || pushSP.r1 != r15 || pushSP.imm >= 0 ||
		link.k != kStg || link.r1 != r1 || link.b2 != r15 || link.disp != stackFrameOverhead-8 {
		return fmt.Errorf("the code does not open with the frame's push (lgr %%r1,%%r15; aghi %%r15,-S; stg %%r1,152(%%r15))")
	}
	size := -pushSP.imm
	if size != int64(stackSize) {
		return fmt.Errorf("the prologue reserves %d bytes, the plan's frame is %d (stack_size)", size, stackSize)
	}
	if im.FrameSize != 0 && int64(im.FrameSize) != size {
		return fmt.Errorf("the prologue reserves %d bytes, the image's frame says %d", size, im.FrameSize)
	}
	last := insns[n-1]
	pop, tcc := insns[n-2], insns[n-3]
	if pop.k != kAghi || pop.r1 != r15 || pop.imm != size {
		return fmt.Errorf("the return at %#x does not follow aghi %%r15,%d", last.Off, size)
	}
	if tcc.k != kMvc || tcc.b1 != r15 || tcc.d1 != size+tailCallCntOff || tcc.length != 4 {
		return fmt.Errorf("the frame's pop at %#x does not follow the caller's tail call counter's restore", pop.Off)
	}
	r, rel := relocAt[last.Off]
	switch {
	case want == retFunc:
		if last.k != kBrcl || last.r1 != maskAlways || !rel || r.Sym != "func+6" {
			return fmt.Errorf("code ends with %q at %#x, not brcl 15 to func+6", last.Text, last.Off)
		}
	default:
		reg, thunk := r14, ThunkR14
		if want == retOrigStack {
			reg, thunk = r1, ThunkR1
		}
		isBR := last.k == kBcr && last.r1 == maskAlways && last.r2 == reg
		isThunk := last.k == kBrcl && last.r1 == maskAlways && rel && r.Sym == thunk
		if !isBR && !isThunk {
			return fmt.Errorf("code ends with %q at %#x, not br %%r%d (or brcl 15 to %s)", last.Text, last.Off, reg, thunk)
		}
	}
	return nil
}
