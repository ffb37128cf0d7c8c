package emu

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/arch/riscv64/riscv64asm"
)

// riscv64 operations the machine models: the RV64I and RVC instructions
// (and Zba's add.uw, zext.w) the kernel's trampolines
// (__arch_prepare_bpf_trampoline in arch/riscv/net/bpf_jit_comp64.c)
// and their emit_* helpers produce. The decoder (riscv64asm) decides that
// a parcel is a valid instruction and gives its text; the fields are read
// from the encoding here, for the 32-bit and the compressed forms alike
// (the decoder's rewriting of compressed forms is not relied on; a test
// holds the two readings against each other).
const (
	rAddi  = iota + 1 // addi, c.addi, c.li, c.nop, c.addi16sp, c.addi4spn, mv
	rAddiw            // addiw, c.addiw, sext.w
	rLui              // lui, c.lui
	rAuipc
	rSlli // slli, c.slli
	rSrli // srli, c.srli
	rSrai // srai, c.srai
	rAdd  // add, c.add, c.mv
	rSub  // sub, c.sub
	rAddUw
	rLoad  // ld, lw, lwu, c.ld, c.lw, c.ldsp, c.lwsp
	rStore // sd, sw, c.sd, c.sw, c.sdsp, c.swsp
	rJal   // jal, c.j
	rJalr  // jalr, c.jr, c.jalr
	rBeq   // beq, c.beqz
	rBne   // bne, c.bnez
	rEbreak
)

// rop is one decoded riscv64 instruction.
type rop struct {
	kind         uint8
	n            uint8 // length: 2 (RVC) or 4
	rd, rs1, rs2 uint8
	size         uint8 // memory access bytes
	signed       bool  // loads: sign-extend
	imm          int64
	target       uint64 // jal and branches
	text         string
	err          string
}

// sext sign-extends the low bits of v.
func sext(v uint32, bits uint) int64 { return int64(int32(v<<(32-bits)) >> (32 - bits)) }

// bit is bit i of w.
func bit(w uint32, i uint) uint32 { return w >> i & 1 }

func (e *Emulator) decodeRV(off int) *rop {
	code := e.s.Code[off:]
	if len(code) < 2 {
		return &rop{err: fmt.Sprintf("% x: a partial instruction parcel", code)}
	}
	n := 2
	if code[0]&3 == 3 {
		n = 4
	}
	if len(code) < n {
		return &rop{err: fmt.Sprintf("% x: a partial %d-byte instruction", code, n)}
	}
	var w uint32
	if n == 4 {
		w = binary.LittleEndian.Uint32(code)
	} else {
		w = uint32(binary.LittleEndian.Uint16(code))
	}
	hex := fmt.Sprintf("%0*x", 2*n, w)
	if n == 2 && w == 0 {
		// The all-zero parcel is defined illegal (bpf_fill_ill_insns fills
		// the allocation's tail with it).
		return &rop{err: fmt.Sprintf("%s: the illegal all-zero parcel", hex)}
	}
	inst, err := riscv64asm.Decode(code[:n])
	if err != nil || inst.Len != n {
		return &rop{err: fmt.Sprintf("%s: cannot decode: %v", hex, err)}
	}
	pc := e.s.Base + uint64(off)
	o := &rop{n: uint8(n), text: riscv64asm.GNUSyntax(inst)}
	var ok bool
	if n == 4 {
		ok = o.fields32(w, pc)
	} else {
		ok = o.fields16(w, pc)
	}
	if !ok {
		return &rop{err: fmt.Sprintf("%s %s: instruction not modelled", hex, o.text)}
	}
	// Only the operands the operation has (the 32-bit reader takes every
	// field position).
	switch o.kind {
	case rAddi, rAddiw, rSlli, rSrli, rSrai, rLoad, rJalr:
		o.rs2 = 0
	case rLui, rAuipc, rJal:
		o.rs1, o.rs2 = 0, 0
	case rStore, rBeq, rBne:
		o.rd = 0
	case rEbreak:
		o.rd, o.rs1, o.rs2 = 0, 0, 0
	}
	if o.target != 0 {
		o.text = fmt.Sprintf("%s (%#x)", o.text, o.target)
	}
	return o
}

// fields32 reads a 32-bit instruction.
func (o *rop) fields32(w uint32, pc uint64) bool {
	opcode, funct3, funct7 := w&0x7f, w>>12&7, w>>25
	o.rd, o.rs1, o.rs2 = uint8(w>>7&31), uint8(w>>15&31), uint8(w>>20&31)
	iImm := int64(int32(w) >> 20)
	switch opcode {
	case 0x13: // OP-IMM
		switch {
		case funct3 == 0:
			o.kind, o.imm = rAddi, iImm
		case funct3 == 1 && w>>26 == 0:
			o.kind, o.imm = rSlli, int64(w>>20&63)
		case funct3 == 5 && w>>26 == 0:
			o.kind, o.imm = rSrli, int64(w>>20&63)
		case funct3 == 5 && w>>26 == 0x10:
			o.kind, o.imm = rSrai, int64(w>>20&63)
		default:
			return false
		}
	case 0x1b: // OP-IMM-32
		if funct3 != 0 {
			return false
		}
		o.kind, o.imm = rAddiw, iImm
	case 0x37:
		o.kind, o.imm = rLui, int64(int32(w&0xfffff000))
	case 0x17:
		o.kind, o.imm = rAuipc, int64(int32(w&0xfffff000))
		o.target = pc + uint64(o.imm)
	case 0x33: // OP
		switch {
		case funct3 == 0 && funct7 == 0:
			o.kind = rAdd
		case funct3 == 0 && funct7 == 0x20:
			o.kind = rSub
		default:
			return false
		}
	case 0x3b: // OP-32
		if funct3 != 0 || funct7 != 0x04 {
			return false
		}
		o.kind = rAddUw
	case 0x03: // LOAD
		o.kind, o.imm = rLoad, iImm
		switch funct3 {
		case 3:
			o.size = 8
		case 2:
			o.size, o.signed = 4, true
		case 6:
			o.size = 4
		default:
			return false
		}
	case 0x23: // STORE
		o.kind, o.imm = rStore, int64(int32(w)>>25<<5)|int64(w>>7&31)
		switch funct3 {
		case 3:
			o.size = 8
		case 2:
			o.size = 4
		default:
			return false
		}
	case 0x6f:
		imm := bit(w, 31)<<20 | (w>>21&0x3ff)<<1 | bit(w, 20)<<11 | (w>>12&0xff)<<12
		o.kind, o.imm = rJal, sext(imm, 21)
		o.target = pc + uint64(o.imm)
	case 0x67:
		if funct3 != 0 {
			return false
		}
		o.kind, o.imm = rJalr, iImm
	case 0x63: // BRANCH
		imm := bit(w, 31)<<12 | (w>>25&0x3f)<<5 | (w>>8&0xf)<<1 | bit(w, 7)<<11
		o.imm = sext(imm, 13)
		o.target = pc + uint64(o.imm)
		switch funct3 {
		case 0:
			o.kind = rBeq
		case 1:
			o.kind = rBne
		default:
			return false
		}
	case 0x73:
		if w != 0x00100073 {
			return false
		}
		o.kind = rEbreak
	default:
		return false
	}
	return true
}

// fields16 reads a compressed (RVC) instruction from its encoding: the
// immediates are scattered over the parcel differently per format (the
// "C" chapter of the unprivileged ISA); rd', rs1', rs2' are x8-x15.
func (o *rop) fields16(w uint32, pc uint64) bool {
	quad, funct3 := w&3, w>>13
	rdFull := uint8(w >> 7 & 31)
	rs2Full := uint8(w >> 2 & 31)
	rdP, rs1P := uint8(8+w>>2&7), uint8(8+w>>7&7)
	ci6 := sext(bit(w, 12)<<5|w>>2&31, 6)                  // CI-format signed imm[5:0]
	sh6 := int64(bit(w, 12)<<5 | w>>2&31)                  // shamt[5:0]
	lsw := int64(w>>10&7<<3 | bit(w, 6)<<2 | bit(w, 5)<<6) // c.lw/c.sw offset
	lsd := int64(w>>10&7<<3 | w>>5&3<<6)                   // c.ld/c.sd offset
	switch quad {
	case 0:
		switch funct3 {
		case 0: // c.addi4spn rd', sp, nzuimm
			imm := w>>11&3<<4 | w>>7&15<<6 | bit(w, 6)<<2 | bit(w, 5)<<3
			o.kind, o.rd, o.rs1, o.imm = rAddi, rdP, 2, int64(imm)
		case 2:
			o.kind, o.rd, o.rs1, o.imm, o.size, o.signed = rLoad, rdP, rs1P, lsw, 4, true
		case 3:
			o.kind, o.rd, o.rs1, o.imm, o.size = rLoad, rdP, rs1P, lsd, 8
		case 6:
			o.kind, o.rs1, o.rs2, o.imm, o.size = rStore, rs1P, rdP, lsw, 4
		case 7:
			o.kind, o.rs1, o.rs2, o.imm, o.size = rStore, rs1P, rdP, lsd, 8
		default:
			return false
		}
	case 1:
		switch funct3 {
		case 0: // c.addi (c.nop with rd = 0)
			o.kind, o.rd, o.rs1, o.imm = rAddi, rdFull, rdFull, ci6
		case 1: // c.addiw
			o.kind, o.rd, o.rs1, o.imm = rAddiw, rdFull, rdFull, ci6
		case 2: // c.li
			o.kind, o.rd, o.rs1, o.imm = rAddi, rdFull, 0, ci6
		case 3:
			if rdFull == 2 { // c.addi16sp
				imm := bit(w, 12)<<9 | bit(w, 6)<<4 | bit(w, 5)<<6 | w>>3&3<<7 | bit(w, 2)<<5
				o.kind, o.rd, o.rs1, o.imm = rAddi, 2, 2, sext(imm, 10)
			} else { // c.lui
				o.kind, o.rd, o.imm = rLui, rdFull, ci6<<12
			}
		case 4:
			o.rd, o.rs1 = rs1P, rs1P
			switch w >> 10 & 3 {
			case 0:
				o.kind, o.imm = rSrli, sh6
			case 1:
				o.kind, o.imm = rSrai, sh6
			case 3:
				if bit(w, 12) != 0 || w>>5&3 != 0 {
					return false // c.subw, c.addw, c.xor, c.or, c.and
				}
				o.kind, o.rs2 = rSub, rdP
			default:
				return false // c.andi
			}
		case 5: // c.j
			imm := bit(w, 12)<<11 | bit(w, 11)<<4 | w>>9&3<<8 | bit(w, 8)<<10 |
				bit(w, 7)<<6 | bit(w, 6)<<7 | w>>3&7<<1 | bit(w, 2)<<5
			o.kind, o.rd, o.imm = rJal, 0, sext(imm, 12)
			o.target = pc + uint64(o.imm)
		case 6, 7: // c.beqz, c.bnez
			imm := bit(w, 12)<<8 | w>>10&3<<3 | w>>5&3<<6 | w>>3&3<<1 | bit(w, 2)<<5
			o.kind, o.rs1, o.rs2, o.imm = rBeq, rs1P, 0, sext(imm, 9)
			if funct3 == 7 {
				o.kind = rBne
			}
			o.target = pc + uint64(o.imm)
		}
	case 2:
		switch funct3 {
		case 0: // c.slli
			o.kind, o.rd, o.rs1, o.imm = rSlli, rdFull, rdFull, sh6
		case 2: // c.lwsp
			imm := bit(w, 12)<<5 | w>>4&7<<2 | w>>2&3<<6
			o.kind, o.rd, o.rs1, o.imm, o.size, o.signed = rLoad, rdFull, 2, int64(imm), 4, true
		case 3: // c.ldsp
			imm := bit(w, 12)<<5 | w>>5&3<<3 | w>>2&7<<6
			o.kind, o.rd, o.rs1, o.imm, o.size = rLoad, rdFull, 2, int64(imm), 8
		case 4:
			switch {
			case bit(w, 12) == 0 && rs2Full == 0: // c.jr
				o.kind, o.rd, o.rs1 = rJalr, 0, rdFull
			case bit(w, 12) == 0: // c.mv
				o.kind, o.rd, o.rs1, o.rs2 = rAdd, rdFull, 0, rs2Full
			case rdFull == 0 && rs2Full == 0:
				o.kind = rEbreak
			case rs2Full == 0: // c.jalr
				o.kind, o.rd, o.rs1 = rJalr, 1, rdFull
			default: // c.add
				o.kind, o.rd, o.rs1, o.rs2 = rAdd, rdFull, rdFull, rs2Full
			}
		case 6: // c.swsp
			imm := w>>9&15<<2 | w>>7&3<<6
			o.kind, o.rs1, o.rs2, o.imm, o.size = rStore, 2, rs2Full, int64(imm), 4
		case 7: // c.sdsp
			imm := w>>10&7<<3 | w>>7&7<<6
			o.kind, o.rs1, o.rs2, o.imm, o.size = rStore, 2, rs2Full, int64(imm), 8
		default:
			return false
		}
	default:
		return false
	}
	return true
}

// rr reads a register (x0 is zero).
func (m *machine) rr(r uint8) uint64 {
	if r == 0 {
		return 0
	}
	return m.regs[r]
}

// setR writes a register (writes to x0 are dropped).
func (m *machine) setR(r uint8, v uint64) {
	if r != 0 {
		m.regs[r] = v
	}
}

// checkCallRV: the kernel's riscv64 ABI keeps sp 16-byte aligned, and
// every call must find it so.
func (m *machine) checkCallRV() {
	if sp := m.regs[2]; sp%16 != 0 {
		m.violate(CheckAlign, "call with sp %s not 16-byte aligned", m.where(sp))
	}
}

func (m *machine) stepRV() {
	e := m.e
	off := m.curOff
	if off%2 != 0 {
		m.fatal(CheckControl, "pc %#x is not on an instruction boundary", m.pc)
		return
	}
	o := e.rv[off/2]
	if o == nil {
		o = e.decodeRV(off)
		e.rv[off/2] = o
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
	next := m.pc + uint64(o.n)
	switch o.kind {
	case rAddi:
		m.setR(o.rd, m.rr(o.rs1)+uint64(o.imm))
	case rAddiw:
		m.setR(o.rd, uint64(int64(int32(m.rr(o.rs1)+uint64(o.imm)))))
	case rLui:
		m.setR(o.rd, uint64(o.imm))
	case rAuipc:
		m.setR(o.rd, o.target)
	case rSlli:
		m.setR(o.rd, m.rr(o.rs1)<<uint(o.imm))
	case rSrli:
		m.setR(o.rd, m.rr(o.rs1)>>uint(o.imm))
	case rSrai:
		m.setR(o.rd, uint64(int64(m.rr(o.rs1))>>uint(o.imm)))
	case rAdd:
		m.setR(o.rd, m.rr(o.rs1)+m.rr(o.rs2))
	case rSub:
		m.setR(o.rd, m.rr(o.rs1)-m.rr(o.rs2))
	case rAddUw:
		m.setR(o.rd, m.rr(o.rs1)&0xffffffff+m.rr(o.rs2))
	case rLoad:
		v := m.read(m.rr(o.rs1)+uint64(o.imm), int(o.size), o.text)
		if o.signed && o.size == 4 {
			v = uint64(int64(int32(v)))
		}
		m.setR(o.rd, v)
	case rStore:
		m.write(m.rr(o.rs1)+uint64(o.imm), int(o.size), m.rr(o.rs2), o.text)
	case rJal:
		if o.rd != 0 {
			m.checkCallRV()
		}
		m.setR(o.rd, next)
		next = o.target
	case rJalr:
		t := (m.rr(o.rs1) + uint64(o.imm)) &^ 1
		if o.rd != 0 {
			m.checkCallRV()
		}
		m.setR(o.rd, next)
		next = t
	case rBeq:
		if m.rr(o.rs1) == m.rr(o.rs2) {
			next = o.target
		}
	case rBne:
		if m.rr(o.rs1) != m.rr(o.rs2) {
			next = o.target
		}
	case rEbreak:
		m.fatal(CheckControl, "executed ebreak")
	}
	if tracing {
		m.trace(o.text, &before)
	}
	m.pc = next
}

// rvRegNames are the psABI names of x0..x31.
var rvRegNames = [32]string{"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
	"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7",
	"s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"}

// rvCallerSaved are the registers a callee may change: t0-t6 and a0-a7
// (ra is the return address, which a callee returns through).
var rvCallerSaved = [...]int{5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 28, 29, 30, 31}
