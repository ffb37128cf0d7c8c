package emu

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/arch/s390x/s390xasm"
)

// s390x operations the machine models: the z/Architecture instructions
// the kernel's trampolines (__arch_prepare_bpf_trampoline in
// arch/s390/net/bpf_jit_comp.c, with invoke_bpf_prog, invoke_bpf,
// load_imm64, sign_zero_extend and EMIT_JUMP_REG) produce. The decoder
// (s390xasm) decides that an instruction is valid and gives its text;
// the fields are read from the big-endian encoding here (a test holds
// the two readings against each other, and every instruction is checked
// to be the operation the decoder names).
const (
	sLgr   = iota + 1 // lgr
	sLtgr             // ltgr
	sExt              // lgbr, llgcr, lghr, llghr, lgfr, llgfr
	sAghi             // aghi
	sLghi             // lghi
	sLa               // la
	sLg               // lg
	sLtg              // ltg
	sStg              // stg
	sStmg             // stmg
	sLmg              // lmg
	sMvc              // mvc
	sXc               // xc
	sLlihf            // llihf
	sOilf             // oilf
	sBrasl            // brasl
	sBrcl             // brcl (jg, jgnop and the conditional forms)
	sBasr             // basr
	sBcr              // bcr (br, nopr)
)

// sop is one decoded s390x instruction.
type sop struct {
	kind uint8
	n    uint8 // length: 2, 4 or 6
	// r1 is R1 (brcl's and bcr's M1 is mask), r2 the second register
	// (R2 of RR/RRE, R3 of stmg/lmg).
	r1, r2 uint8
	// x and b are the index and base of the storage operand (the first
	// one of mvc and xc), d its displacement; b2 and d2 are mvc's and
	// xc's second operand.
	x, b, b2 uint8
	d, d2    int64
	length   int // mvc, xc: bytes (L+1)
	// ext (sExt): the source width in bytes; signed: sign-extend.
	ext    uint8
	signed bool
	mask   uint8
	imm    int64
	target uint64 // brasl, brcl
	text   string
	err    string
}

// s390Len is the instruction length the first byte's two top bits give.
func s390Len(b0 byte) int { return [4]int{2, 4, 4, 6}[b0>>6] }

// s390Decode runs the decoder, turning a panic into an error.
func s390Decode(b []byte) (inst s390xasm.Inst, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("s390xasm failed: %v", r)
		}
	}()
	return s390xasm.Decode(b)
}

// s390Text is the decoder's GNU syntax, a panic turned into "".
func s390Text(inst s390xasm.Inst, pc uint64) (s string) {
	defer func() {
		if recover() != nil {
			s = ""
		}
	}()
	return s390xasm.GNUSyntax(inst, pc)
}

// s390Warm makes s390xasm set up its lazily built table before any
// emulator decodes (it does so on first use, without a lock).
var s390Warm = func() bool {
	_, _ = s390Decode([]byte{0x07, 0x07})
	return true
}()

// s390Ops maps the decoder's operations to the machine's.
var s390Ops = map[s390xasm.Op]uint8{
	s390xasm.LGR: sLgr, s390xasm.LTGR: sLtgr,
	s390xasm.LGBR: sExt, s390xasm.LLGCR: sExt, s390xasm.LGHR: sExt, s390xasm.LLGHR: sExt, s390xasm.LGFR: sExt, s390xasm.LLGFR: sExt,
	s390xasm.AGHI: sAghi, s390xasm.LGHI: sLghi, s390xasm.LA: sLa,
	s390xasm.LG: sLg, s390xasm.LTG: sLtg, s390xasm.STG: sStg, s390xasm.STMG: sStmg, s390xasm.LMG: sLmg,
	s390xasm.MVC: sMvc, s390xasm.XC: sXc, s390xasm.LLIHF: sLlihf, s390xasm.OILF: sOilf,
	s390xasm.BRASL: sBrasl, s390xasm.BRCL: sBrcl, s390xasm.BASR: sBasr, s390xasm.BCR: sBcr,
}

func (e *Emulator) decodeS390(off int) *sop {
	_ = s390Warm
	code := e.s.Code[off:]
	if len(code) < 2 {
		return &sop{err: fmt.Sprintf("% x: a partial instruction halfword", code)}
	}
	n := s390Len(code[0])
	if len(code) < n {
		return &sop{err: fmt.Sprintf("% x: a partial %d-byte instruction", code, n)}
	}
	b := code[:n]
	hex := fmt.Sprintf("% x", b)
	if b[0] == 0 && b[1] == 0 {
		// Opcode 0x00 is no instruction; the kernel fills the unused
		// part of an allocation with zeroes (bpf_jit_fill_hole).
		return &sop{err: fmt.Sprintf("%s: the invalid all-zero halfword", hex)}
	}
	inst, err := s390Decode(b)
	if err != nil || inst.Op == 0 || inst.Len != n {
		switch {
		case err != nil:
		case inst.Op == 0:
			err = fmt.Errorf("no operation")
		default:
			err = fmt.Errorf("decoded as %d bytes, the length code says %d", inst.Len, n)
		}
		return &sop{err: fmt.Sprintf("%s: cannot decode: %v", hex, err)}
	}
	pc := e.s.Base + uint64(off)
	o := &sop{n: uint8(n), text: s390Text(inst, pc)}
	if o.text == "" {
		o.text = inst.Op.String()
	}
	if !o.fields(b, pc) {
		return &sop{err: fmt.Sprintf("%s %s: instruction not modelled", hex, o.text)}
	}
	if want, ok := s390Ops[inst.Op]; !ok || want != o.kind {
		return &sop{err: fmt.Sprintf("%s %s: the decoder says %s, the encoding reads otherwise", hex, o.text, inst.Op)}
	}
	if o.kind == sLlihf || o.kind == sOilf {
		// The decoder prints the immediate signed; it is unsigned (as
		// objdump prints it).
		o.text = fmt.Sprintf("%s %%r%d,%d", inst.Op, o.r1, uint32(o.imm))
	}
	return o
}

// fields reads an instruction from its encoding (z/Architecture
// Principles of Operation formats RR, RRE, RI, RX, RXY, RSY, SS and
// RIL); false for an operation the machine does not model.
func (o *sop) fields(b []byte, pc uint64) bool {
	hi, lo := func(v byte) uint8 { return v >> 4 }, func(v byte) uint8 { return v & 15 }
	// disp20 is RXY's and RSY's signed DH:DL.
	disp20 := func() int64 {
		v := uint32(b[4])<<12 | uint32(b[2]&15)<<8 | uint32(b[3])
		return int64(int32(v<<12) >> 12)
	}
	disp12 := func(i int) int64 { return int64(b[i]&15)<<8 | int64(b[i+1]) }
	switch b[0] {
	case 0x07: // BCR M1,R2
		o.kind, o.mask, o.r2 = sBcr, hi(b[1]), lo(b[1])
	case 0x0d: // BASR R1,R2
		o.kind, o.r1, o.r2 = sBasr, hi(b[1]), lo(b[1])
	case 0x41: // LA R1,D2(X2,B2)
		o.kind, o.r1, o.x, o.b, o.d = sLa, hi(b[1]), lo(b[1]), hi(b[2]), disp12(2)
	case 0xa7: // RI: R1, op2, I2
		o.r1, o.imm = hi(b[1]), int64(int16(binary.BigEndian.Uint16(b[2:])))
		switch lo(b[1]) {
		case 0x9:
			o.kind = sLghi
		case 0xb:
			o.kind = sAghi
		default:
			return false
		}
	case 0xb9: // RRE: op2, unused byte, R1 R2
		o.r1, o.r2 = hi(b[3]), lo(b[3])
		switch b[1] {
		case 0x04:
			o.kind = sLgr
		case 0x02:
			o.kind = sLtgr
		case 0x06:
			o.kind, o.ext, o.signed = sExt, 1, true
		case 0x84:
			o.kind, o.ext = sExt, 1
		case 0x07:
			o.kind, o.ext, o.signed = sExt, 2, true
		case 0x85:
			o.kind, o.ext = sExt, 2
		case 0x14:
			o.kind, o.ext, o.signed = sExt, 4, true
		case 0x16:
			o.kind, o.ext = sExt, 4
		default:
			return false
		}
	case 0xc0: // RIL: R1 (or M1), op2, I2 (32 bits)
		o.r1 = hi(b[1])
		i2 := int32(binary.BigEndian.Uint32(b[2:]))
		switch lo(b[1]) {
		case 0xe:
			o.kind, o.imm = sLlihf, int64(uint32(i2))
		case 0xd:
			o.kind, o.imm = sOilf, int64(uint32(i2))
		case 0x5, 0x4: // brasl, brcl: I2 counts halfwords from the instruction
			o.kind, o.imm = sBrasl, 2*int64(i2)
			if lo(b[1]) == 0x4 {
				o.kind, o.mask, o.r1 = sBrcl, o.r1, 0
			}
			o.target = pc + uint64(o.imm)
		default:
			return false
		}
	case 0xd2, 0xd7: // SS-a: L, B1 D1, B2 D2
		o.kind = sMvc
		if b[0] == 0xd7 {
			o.kind = sXc
		}
		o.length, o.b, o.d, o.b2, o.d2 = int(b[1])+1, hi(b[2]), disp12(2), hi(b[4]), disp12(4)
	case 0xe3, 0xeb: // RXY: R1 X2 B2 DL2 DH2 op2; RSY: R1 R3 B2 DL2 DH2 op2
		o.r1, o.b, o.d = hi(b[1]), hi(b[2]), disp20()
		rxy := b[0] == 0xe3
		if rxy {
			o.x = lo(b[1])
		} else {
			o.r2 = lo(b[1])
		}
		switch {
		case rxy && b[5] == 0x04:
			o.kind = sLg
		case rxy && b[5] == 0x02:
			o.kind = sLtg
		case rxy && b[5] == 0x24:
			o.kind = sStg
		case !rxy && b[5] == 0x04:
			o.kind = sLmg
		case !rxy && b[5] == 0x24:
			o.kind = sStmg
		default:
			return false
		}
	default:
		return false
	}
	return true
}

// addrS390 is a storage operand's address: base and index 0 mean none
// (64-bit addressing mode).
func (m *machine) addrS390(x, b uint8, d int64) uint64 {
	a := uint64(d)
	if x != 0 {
		a += m.regs[x]
	}
	if b != 0 {
		a += m.regs[b]
	}
	return a
}

// setCCSigned sets the condition code of a signed result: 0 zero, 1
// negative, 2 positive.
func (m *machine) setCCSigned(v int64) {
	switch {
	case v == 0:
		m.cc = 0
	case v < 0:
		m.cc = 1
	default:
		m.cc = 2
	}
	m.ccSet = true
}

// s390BackchainOff is where a frame's backchain sits with the kernel's
// packed stack (struct stack_frame's back_chain, the last word of
// STACK_FRAME_OVERHEAD).
const (
	s390FrameOverhead = 160
	s390BackchainOff  = 152
	// s390TailCallCntOff is offsetof(struct prog_frame, tail_call_cnt):
	// a BPF caller passes the tail call counter there, in the area it
	// allocates for its callee, and reads it back after the call.
	s390TailCallCntOff = 64
)

// checkCallS390: the s390x ABI keeps %r15 8-byte aligned, and a frame's
// backchain (152(%r15) with the kernel's packed stack) points at the
// stack pointer of the frame above it, for the unwinder: every call out
// of an allocated frame must find both so.
func (m *machine) checkCallS390() {
	sp := m.regs[15]
	if sp%8 != 0 {
		m.violate(CheckAlign, "call with %%r15 %s not 8-byte aligned", m.where(sp))
		return
	}
	if sp >= m.entrySP {
		return
	}
	if v, ok := m.peek(sp + s390BackchainOff); !ok || v != m.entrySP {
		m.violate(CheckBackchain, "call with %#x (initialised: %v) in the backchain slot 152(%%r15) at %s, not the entry %%r15 %#x",
			v, ok, m.where(sp+s390BackchainOff), m.entrySP)
	}
}

// branchS390 says whether a mask selects the current condition code;
// masks 0 (never) and 15 (always) do not need one.
func (m *machine) branchS390(mask uint8, text string) (bool, bool) {
	switch mask {
	case 0:
		return false, true
	case 15:
		return true, true
	}
	if !m.ccSet {
		m.fatal(CheckControl, "%s: a conditional branch on a condition code nothing set (a call leaves it undefined)", text)
		return false, false
	}
	return mask>>(3-m.cc)&1 != 0, true
}

// mvcS390 copies n bytes left to right, one byte at a time, as MVC
// does (an overlapping copy propagates).
func (m *machine) mvcS390(dst, src uint64, n int, text string) {
	if !inStack(src, n) {
		m.fatal(CheckFrame, "%s: read of %d bytes at %#x, outside the stack", text, n, src)
		return
	}
	if !inStack(dst, n) {
		m.fatal(CheckFrame, "%s: write of %d bytes at %#x, outside the stack", text, n, dst)
		return
	}
	m.checkWrite(dst, n, desc{what: text})
	so, do := src-stackLow, dst-stackLow
	bad := false
	m.touch(dst)
	for i := uint64(0); i < uint64(n); i++ {
		if !m.init[so+i] {
			bad = true
		}
		m.stack[do+i] = m.stack[so+i]
		m.init[do+i] = true
	}
	if bad {
		m.violate(CheckUninit, "%s: read of %d bytes at %s includes uninitialised bytes", text, n, m.where(src))
	}
}

// xcS390 is XC: op1 ^= op2; with both operands at the same place it
// clears op1 whatever it held (the JIT's idiom), without reading it.
func (m *machine) xcS390(dst, src uint64, n int, text string) {
	if !inStack(dst, n) || !inStack(src, n) {
		m.fatal(CheckFrame, "%s: %d bytes at %#x and %#x, outside the stack", text, n, dst, src)
		return
	}
	m.checkWrite(dst, n, desc{what: text})
	so, do := src-stackLow, dst-stackLow
	m.touch(dst)
	nonzero := false
	if dst == src {
		clear(m.stack[do : do+uint64(n)])
		for i := range n {
			m.init[do+uint64(i)] = true
		}
	} else {
		bad := false
		for i := uint64(0); i < uint64(n); i++ {
			if !m.init[so+i] || !m.init[do+i] {
				bad = true
			}
			m.stack[do+i] ^= m.stack[so+i]
			m.init[do+i] = true
			nonzero = nonzero || m.stack[do+i] != 0
		}
		if bad {
			m.violate(CheckUninit, "%s: operands at %s and %s include uninitialised bytes", text, m.where(dst), m.where(src))
		}
	}
	m.cc, m.ccSet = 0, true
	if nonzero {
		m.cc = 1
	}
}

func (m *machine) stepS390() {
	e := m.e
	off := m.curOff
	if off%2 != 0 {
		m.fatal(CheckControl, "pc %#x is not on an instruction boundary (halfword)", m.pc)
		return
	}
	o := e.sz[off/2]
	if o == nil {
		o = e.decodeS390(off)
		e.sz[off/2] = o
	}
	if o.err != "" {
		m.fatal(CheckDecode, "%s", o.err)
		return
	}
	var before [32]uint64
	tracing := m.run.Trace != nil
	if tracing {
		before = m.regs
	}
	r := &m.regs
	next := m.pc + uint64(o.n)
	switch o.kind {
	case sLgr:
		r[o.r1] = r[o.r2]
	case sLtgr:
		r[o.r1] = r[o.r2]
		m.setCCSigned(int64(r[o.r1]))
	case sExt:
		v := r[o.r2]
		switch {
		case o.ext == 1 && o.signed:
			v = uint64(int64(int8(v)))
		case o.ext == 1:
			v = uint64(uint8(v))
		case o.ext == 2 && o.signed:
			v = uint64(int64(int16(v)))
		case o.ext == 2:
			v = uint64(uint16(v))
		case o.signed:
			v = uint64(int64(int32(v)))
		default:
			v = uint64(uint32(v))
		}
		r[o.r1] = v
	case sAghi:
		a, b := int64(r[o.r1]), o.imm
		s := a + b
		r[o.r1] = uint64(s)
		if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
			m.cc, m.ccSet = 3, true
		} else {
			m.setCCSigned(s)
		}
	case sLghi:
		r[o.r1] = uint64(o.imm)
	case sLa:
		r[o.r1] = m.addrS390(o.x, o.b, o.d)
	case sLg, sLtg:
		r[o.r1] = m.read(m.addrS390(o.x, o.b, o.d), 8, o.text)
		if o.kind == sLtg {
			m.setCCSigned(int64(r[o.r1]))
		}
	case sStg:
		m.write(m.addrS390(o.x, o.b, o.d), 8, r[o.r1], o.text)
	case sStmg, sLmg:
		// R1 to R3, wrapping from %r15 to %r0.
		a := m.addrS390(0, o.b, o.d)
		if o.kind == sStmg {
			for i, reg := 0, o.r1; ; i, reg = i+1, (reg+1)&15 {
				m.write(a+8*uint64(i), 8, r[reg], o.text)
				if reg == o.r2 || m.stop {
					break
				}
			}
			break
		}
		for i, reg := 0, o.r1; ; i, reg = i+1, (reg+1)&15 {
			r[reg] = m.read(a+8*uint64(i), 8, o.text)
			if reg == o.r2 || m.stop {
				break
			}
		}
	case sMvc:
		m.mvcS390(m.addrS390(0, o.b, o.d), m.addrS390(0, o.b2, o.d2), o.length, o.text)
	case sXc:
		m.xcS390(m.addrS390(0, o.b, o.d), m.addrS390(0, o.b2, o.d2), o.length, o.text)
	case sLlihf:
		r[o.r1] = uint64(o.imm) << 32
	case sOilf:
		r[o.r1] |= uint64(o.imm)
		m.cc, m.ccSet = 0, true
		if uint32(r[o.r1]) != 0 {
			m.cc = 1
		}
	case sBrasl:
		m.checkCallS390()
		r[o.r1] = next
		next = o.target
	case sBrcl:
		take, ok := m.branchS390(o.mask, o.text)
		if !ok {
			return
		}
		if take {
			next = o.target
		}
	case sBasr:
		t := r[o.r2]
		if o.r2 != 0 {
			m.checkCallS390()
		}
		r[o.r1] = next
		if o.r2 != 0 {
			next = t
		}
	case sBcr:
		take, ok := m.branchS390(o.mask, o.text)
		if !ok {
			return
		}
		if take && o.r2 != 0 {
			next = r[o.r2]
		}
	}
	if tracing {
		m.trace(o.text, &before)
	}
	m.pc = next
}

// s390RegNames are %r0..%r15.
var s390RegNames = func() (n [16]string) {
	for i := range n {
		n[i] = "r" + strconv.Itoa(i)
	}
	return
}()

// s390CallerSaved are the registers a callee may change: %r0-%r5 (%r2
// carries the return value). %r14 holds the return address, which a
// callee returns through and leaves there (the kernel restores it with
// the other saved registers before "br %r14").
var s390CallerSaved = [...]int{0, 1, 2, 3, 4, 5}

// s390ThunkReg parses an expoline thunk's register
// (__s390_indirect_jump_rN, GEN_BR_THUNK): it branches to %rN.
func s390ThunkReg(name string) (int, bool) {
	const prefix = "__s390_indirect_jump_r"
	if !strings.HasPrefix(name, prefix) {
		return 0, false
	}
	n, err := strconv.Atoi(name[len(prefix):])
	if err != nil || n < 1 || n > 15 {
		return 0, false
	}
	return n, true
}
