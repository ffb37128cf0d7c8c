package emu

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// x86 operations the machine models.
const (
	xNop = iota + 1
	xEndbr
	xInt3
	xPush
	xPop
	xMovRR
	xMovRI
	xLoad
	xStore
	xStoreImm
	xLea
	xAluRR // alu dst, src (register forms)
	xAluRI // alu dst, imm
	xAluMI // alu [mem], imm
	xJcc
	xJmp
	xCall
	xCallR
	xRet
	xLeave
	// xCallDepth is the call-depth accounting template, sar qword
	// gs:[rip+disp32], 5, on the per-CPU counter (outside the frame).
	xCallDepth
)

// ALU operations.
const (
	aluAdd = iota + 1
	aluSub
	aluCmp
	aluXor
	aluAnd
	aluOr
	aluTest
)

// Conditions.
const (
	ccE = iota + 1
	ccNE
	ccB
	ccAE
	ccBE
	ccA
	ccL
	ccGE
	ccLE
	ccG
	ccS
	ccNS
	ccO
	ccNO
)

// xop is one decoded x86 instruction.
type xop struct {
	kind   uint8
	alu    uint8
	cc     uint8
	size   uint8 // operand bytes
	dst    uint8
	src    uint8
	base   uint8
	length uint8
	disp   int64
	imm    uint64
	target uint64 // absolute branch target
	text   string
	err    string
}

// x86Reg maps a decoder register to its number and width.
func x86Reg(r x86asm.Reg) (num, size int, ok bool) {
	switch {
	case r >= x86asm.RAX && r <= x86asm.R15:
		return int(r - x86asm.RAX), 8, true
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return int(r - x86asm.EAX), 4, true
	case r >= x86asm.AX && r <= x86asm.R15W:
		return int(r - x86asm.AX), 2, true
	case r >= x86asm.AL && r <= x86asm.BL:
		return int(r - x86asm.AL), 1, true
	case r >= x86asm.SPB && r <= x86asm.R15B:
		return int(r-x86asm.SPB) + 4, 1, true
	}
	return 0, 0, false
}

var endbr64 = []byte{0xf3, 0x0f, 0x1e, 0xfa}

// decodeX86 decodes the instruction at off.
func (e *Emulator) decodeX86(off int) *xop {
	code := e.s.Code[off:]
	pc := e.s.Base + uint64(off)
	if bytes.HasPrefix(code, endbr64) {
		return &xop{kind: xEndbr, length: 4, text: "endbr64"}
	}
	if len(code) >= 9 && bytes.HasPrefix(code, []byte{0x65, 0x48, 0xc1, 0x3d}) && code[8] == 0x05 {
		return &xop{kind: xCallDepth, length: 9, text: "sar qword ptr gs:[rip+disp32], 0x5 (call-depth accounting)"}
	}
	inst, err := x86asm.Decode(code, 64)
	if err != nil {
		n := min(len(code), 15)
		return &xop{err: fmt.Sprintf("cannot decode % x: %v", code[:n], err)}
	}
	o := &xop{length: uint8(inst.Len), text: x86asm.IntelSyntax(inst, pc, nil)}
	raw := hex.EncodeToString(code[:inst.Len])
	bad := func(why string) *xop {
		return &xop{err: fmt.Sprintf("%s (%s): %s", o.text, raw, why)}
	}
	for _, p := range inst.Prefix {
		if p == 0 {
			break
		}
		b := p & 0xff
		switch {
		case b&0xf0 == 0x40: // REX
		case b == 0x66 || b == 0x2e:
			if inst.Op != x86asm.NOP {
				return bad("operand-size or segment prefix outside a NOP")
			}
		default:
			return bad(fmt.Sprintf("unmodelled prefix %#x", b))
		}
	}
	args := inst.Args
	reg := func(i int) (int, int, bool) {
		r, ok := args[i].(x86asm.Reg)
		if !ok {
			return 0, 0, false
		}
		return x86Reg(r)
	}
	mem := func(i int) (x86asm.Mem, bool) {
		mm, ok := args[i].(x86asm.Mem)
		if !ok || mm.Segment != 0 || mm.Index != 0 {
			return mm, false
		}
		if _, sz, ok := x86Reg(mm.Base); !ok || sz != 8 {
			return mm, false
		}
		return mm, true
	}
	immArg := func(i int) (uint64, bool) {
		v, ok := args[i].(x86asm.Imm)
		return uint64(v), ok
	}
	switch inst.Op {
	case x86asm.NOP:
		o.kind = xNop
	case x86asm.INT:
		if v, _ := immArg(0); v != 3 {
			return bad("only int3")
		}
		o.kind = xInt3
	case x86asm.PUSH, x86asm.POP:
		r, sz, ok := reg(0)
		if !ok || sz != 8 {
			return bad("only 64-bit register push/pop")
		}
		o.kind, o.dst, o.size = xPush, uint8(r), 8
		if inst.Op == x86asm.POP {
			o.kind = xPop
		}
	case x86asm.MOV:
		if d, dsz, ok := reg(0); ok {
			o.dst, o.size = uint8(d), uint8(dsz)
			if s, ssz, ok := reg(1); ok && ssz == dsz {
				o.kind, o.src = xMovRR, uint8(s)
			} else if v, ok := immArg(1); ok {
				o.kind, o.imm = xMovRI, v
			} else if mm, ok := mem(1); ok && inst.MemBytes == dsz {
				b, _, _ := x86Reg(mm.Base)
				o.kind, o.base, o.disp = xLoad, uint8(b), mm.Disp
			} else {
				return bad("unmodelled mov form")
			}
		} else if mm, ok := mem(0); ok {
			b, _, _ := x86Reg(mm.Base)
			o.base, o.disp, o.size = uint8(b), mm.Disp, uint8(inst.MemBytes)
			if s, ssz, ok := reg(1); ok && ssz == inst.MemBytes {
				o.kind, o.src = xStore, uint8(s)
			} else if v, ok := immArg(1); ok {
				o.kind, o.imm = xStoreImm, v
			} else {
				return bad("unmodelled mov form")
			}
		} else {
			return bad("unmodelled mov form")
		}
	case x86asm.LEA:
		d, sz, ok := reg(0)
		mm, mok := mem(1)
		if !ok || sz != 8 || !mok {
			return bad("only lea r64, [base+disp]")
		}
		b, _, _ := x86Reg(mm.Base)
		o.kind, o.dst, o.size, o.base, o.disp = xLea, uint8(d), 8, uint8(b), mm.Disp
	case x86asm.ADD, x86asm.SUB, x86asm.CMP, x86asm.XOR, x86asm.AND, x86asm.OR, x86asm.TEST:
		o.alu = map[x86asm.Op]uint8{x86asm.ADD: aluAdd, x86asm.SUB: aluSub, x86asm.CMP: aluCmp,
			x86asm.XOR: aluXor, x86asm.AND: aluAnd, x86asm.OR: aluOr, x86asm.TEST: aluTest}[inst.Op]
		if d, dsz, ok := reg(0); ok {
			o.dst, o.size = uint8(d), uint8(dsz)
			if s, ssz, ok := reg(1); ok && ssz == dsz {
				o.kind, o.src = xAluRR, uint8(s)
			} else if v, ok := immArg(1); ok {
				o.kind, o.imm = xAluRI, v
			} else {
				return bad("unmodelled ALU form")
			}
		} else if mm, ok := mem(0); ok {
			v, iok := immArg(1)
			if !iok {
				return bad("unmodelled ALU form")
			}
			b, _, _ := x86Reg(mm.Base)
			o.kind, o.base, o.disp, o.size, o.imm = xAluMI, uint8(b), mm.Disp, uint8(inst.MemBytes), v
		} else {
			return bad("unmodelled ALU form")
		}
	case x86asm.JE, x86asm.JNE, x86asm.JB, x86asm.JAE, x86asm.JBE, x86asm.JA, x86asm.JL, x86asm.JGE,
		x86asm.JLE, x86asm.JG, x86asm.JS, x86asm.JNS, x86asm.JO, x86asm.JNO, x86asm.JMP, x86asm.CALL:
		rel, ok := args[0].(x86asm.Rel)
		if !ok {
			if r, sz, rok := reg(0); rok && sz == 8 && inst.Op == x86asm.CALL {
				o.kind, o.src = xCallR, uint8(r)
				break
			}
			return bad("only relative branches and call r64")
		}
		o.target = pc + uint64(inst.Len) + uint64(int64(rel))
		switch inst.Op {
		case x86asm.JMP:
			o.kind = xJmp
		case x86asm.CALL:
			o.kind = xCall
		default:
			o.kind = xJcc
			o.cc = map[x86asm.Op]uint8{x86asm.JE: ccE, x86asm.JNE: ccNE, x86asm.JB: ccB, x86asm.JAE: ccAE,
				x86asm.JBE: ccBE, x86asm.JA: ccA, x86asm.JL: ccL, x86asm.JGE: ccGE, x86asm.JLE: ccLE,
				x86asm.JG: ccG, x86asm.JS: ccS, x86asm.JNS: ccNS, x86asm.JO: ccO, x86asm.JNO: ccNO}[inst.Op]
		}
	case x86asm.RET:
		if args[0] != nil {
			return bad("ret imm16 is not modelled")
		}
		o.kind = xRet
	case x86asm.LEAVE:
		o.kind = xLeave
	default:
		return bad("instruction not modelled")
	}
	return o
}

func sizeMask(n uint8) uint64 {
	if n >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint64(n)) - 1
}

// setReg writes a register with x86 width rules: 32-bit writes zero the
// upper half, 8- and 16-bit writes merge.
func (m *machine) setReg(r, size uint8, v uint64) {
	switch size {
	case 8:
		m.regs[r] = v
	case 4:
		m.regs[r] = v & 0xffffffff
	default:
		mask := sizeMask(size)
		m.regs[r] = m.regs[r]&^mask | v&mask
	}
}

// alu computes an ALU operation and the flags.
func (m *machine) alu(op, size uint8, a, b uint64) (uint64, bool) {
	mask := sizeMask(size)
	a, b = a&mask, b&mask
	top := uint64(1) << (8*uint64(size) - 1)
	var r uint64
	switch op {
	case aluAdd:
		r = (a + b) & mask
		m.cf = r < a
		m.of = (^(a ^ b) & (a ^ r) & top) != 0
	case aluSub, aluCmp:
		r = (a - b) & mask
		m.cf = a < b
		m.of = ((a ^ b) & (a ^ r) & top) != 0
	case aluXor:
		r = a ^ b
		m.cf, m.of = false, false
	case aluAnd, aluTest:
		r = a & b
		m.cf, m.of = false, false
	case aluOr:
		r = a | b
		m.cf, m.of = false, false
	}
	m.zf = r == 0
	m.sf = r&top != 0
	return r, op != aluCmp && op != aluTest
}

func (m *machine) cond(cc uint8) bool {
	switch cc {
	case ccE:
		return m.zf
	case ccNE:
		return !m.zf
	case ccB:
		return m.cf
	case ccAE:
		return !m.cf
	case ccBE:
		return m.cf || m.zf
	case ccA:
		return !m.cf && !m.zf
	case ccL:
		return m.sf != m.of
	case ccGE:
		return m.sf == m.of
	case ccLE:
		return m.zf || m.sf != m.of
	case ccG:
		return !m.zf && m.sf == m.of
	case ccS:
		return m.sf
	case ccNS:
		return !m.sf
	case ccO:
		return m.of
	case ccNO:
		return !m.of
	}
	return false
}

// checkCall checks the stack at a call: the kernel is built for 8-byte
// stack alignment, but a call to the original function that passes
// arguments on the stack must see them 16-byte aligned (the padding the
// trampoline adds for that).
func (m *machine) checkCallX86(target uint64) {
	sp := m.regs[4]
	if sp%8 != 0 {
		m.violate(CheckAlign, "call with rsp %s not 8-byte aligned", m.where(sp))
	}
	if target == m.e.s.OrigEntry && m.e.stackArgWords > 0 && sp%16 != 0 {
		m.violate(CheckAlign, "call of the original function with stack arguments and rsp %s not 16-byte aligned", m.where(sp))
	}
}

func (m *machine) push(v uint64, what string) {
	m.regs[4] -= 8
	m.write(m.regs[4], 8, v, what)
}

func (m *machine) stepX86() {
	e := m.e
	off := m.curOff
	o := e.x86[off]
	if o == nil {
		o = e.decodeX86(off)
		e.x86[off] = o
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
	pc := m.pc
	next := pc + uint64(o.length)
	if next > e.s.Base+uint64(len(e.s.Code)) {
		m.fatal(CheckDecode, "instruction runs past the end of the image")
		return
	}
	addr := func() uint64 { return m.regs[o.base] + uint64(o.disp) }
	switch o.kind {
	case xNop, xEndbr:
	case xCallDepth:
		// INCREMENT_CALL_DEPTH: an arithmetic shift of the per-CPU depth.
		m.cf = m.callDepth>>4&1 != 0
		m.callDepth = uint64(int64(m.callDepth) >> 5)
		m.zf, m.sf, m.of = m.callDepth == 0, int64(m.callDepth) < 0, false
		m.callDepthOps++
	case xInt3:
		m.fatal(CheckControl, "executed int3")
	case xPush:
		m.push(m.regs[o.dst], "push "+x86RegNames[o.dst])
	case xPop:
		v := m.read(m.regs[4], 8, "pop "+x86RegNames[o.dst])
		m.regs[4] += 8
		m.regs[o.dst] = v
	case xMovRR:
		m.setReg(o.dst, o.size, m.regs[o.src])
	case xMovRI:
		m.setReg(o.dst, o.size, o.imm)
	case xLoad:
		m.setReg(o.dst, o.size, m.read(addr(), int(o.size), o.text))
	case xStore:
		m.write(addr(), int(o.size), m.regs[o.src], o.text)
	case xStoreImm:
		m.write(addr(), int(o.size), o.imm, o.text)
	case xLea:
		m.regs[o.dst] = addr()
	case xAluRR:
		if r, w := m.alu(o.alu, o.size, m.regs[o.dst], m.regs[o.src]); w {
			m.setReg(o.dst, o.size, r)
		}
	case xAluRI:
		if r, w := m.alu(o.alu, o.size, m.regs[o.dst], o.imm); w {
			m.setReg(o.dst, o.size, r)
		}
	case xAluMI:
		a := addr()
		if r, w := m.alu(o.alu, o.size, m.read(a, int(o.size), o.text), o.imm); w {
			m.write(a, int(o.size), r, o.text)
		}
	case xJcc:
		if m.cond(o.cc) {
			next = o.target
		}
	case xJmp:
		next = o.target
	case xCall, xCallR:
		t := o.target
		if o.kind == xCallR {
			t = m.regs[o.src]
		}
		m.checkCallX86(t)
		m.push(next, "call: return address")
		next = t
	case xRet:
		next = m.read(m.regs[4], 8, "ret: return address")
		m.regs[4] += 8
	case xLeave:
		m.regs[4] = m.regs[5]
		m.regs[5] = m.read(m.regs[4], 8, "leave: saved rbp")
		m.regs[4] += 8
	}
	if tracing {
		m.trace(o.text, &before)
	}
	m.pc = next
}
