package emu

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/arch/arm64/arm64asm"
)

// arm64 operations the machine models. The decoder (arm64asm) decides
// that a word is a valid instruction and gives its text; the fields are
// read from the encoding (the decoder keeps immediates unexported).
const (
	aNop = iota + 1
	aBrk
	aStp    // stp rt, rt2, [rn, #imm] (pre, post or offset)
	aLdp    // ldp
	aStr    // str (unsigned offset)
	aLdr    // ldr (unsigned offset)
	aMovZ   // movz
	aMovN   // movn
	aMovK   // movk
	aAddImm // add rd|sp, rn|sp, #imm
	aSubImm
	aOrr // orr rd, rn, rm, <shift> #amount
	aUbfm
	aAdr
	aB
	aBl
	aBlr
	aBr
	aRet
	aCbz
	aCbnz
)

// Addressing modes of stp/ldp.
const (
	modeOffset = iota
	modePre
	modePost
)

// aop is one decoded arm64 instruction.
type aop struct {
	kind       uint8
	sf         bool // 64-bit
	rd, rn, rm uint8
	rt2        uint8
	mode       uint8
	size       uint8 // memory access bytes
	shift      uint8
	immr, imms uint8
	imm        int64
	target     uint64
	text       string
	err        string
}

func (e *Emulator) decodeA64(off int) *aop {
	if off+4 > len(e.s.Code) {
		return &aop{err: fmt.Sprintf("% x: a partial instruction word", e.s.Code[off:])}
	}
	w := binary.LittleEndian.Uint32(e.s.Code[off:])
	pc := e.s.Base + uint64(off)
	inst, err := arm64asm.Decode(e.s.Code[off : off+4])
	if err != nil {
		return &aop{err: fmt.Sprintf("%08x: cannot decode: %v", w, err)}
	}
	o := &aop{text: arm64asm.GNUSyntax(inst), sf: w>>31 != 0}
	rd, rn := uint8(w&31), uint8(w>>5&31)
	o.rd, o.rn = rd, rn
	sext := func(v uint32, bits uint) int64 { return int64(int32(v<<(32-bits)) >> (32 - bits)) }
	switch {
	case w == 0xd503201f:
		o.kind = aNop
	case w&0xfffff01f == 0xd503201f: // hint
		switch (w >> 5) & 0x7f {
		case 32, 34, 36, 38: // bti
			o.kind = aNop
		default:
			return &aop{err: fmt.Sprintf("%08x %s: hint not modelled", w, o.text)}
		}
	case w&0xffe0001f == 0xd4200000:
		o.kind, o.imm = aBrk, int64(w>>5&0xffff)
	case w&0xfe000000 == 0xa8000000 || w&0xfe000000 == 0xa9000000: // stp/ldp 64-bit
		switch w >> 23 & 7 {
		case 1:
			o.mode = modePost
		case 3:
			o.mode = modePre
		case 2:
			o.mode = modeOffset
		default:
			return &aop{err: fmt.Sprintf("%08x %s: pair form not modelled", w, o.text)}
		}
		o.kind = aStp
		if w>>22&1 != 0 {
			o.kind = aLdp
		}
		o.rt2 = uint8(w >> 10 & 31)
		o.imm = sext(w>>15&0x7f, 7) * 8
		o.size = 8
	case w&0xffc00000 == 0xf9000000, w&0xffc00000 == 0xf9400000, w&0xffc00000 == 0xb9000000, w&0xffc00000 == 0xb9400000:
		o.size = 8
		if w>>30 == 2 {
			o.size = 4
		}
		o.kind = aStr
		if w>>22&1 != 0 {
			o.kind = aLdr
		}
		o.imm = int64(w>>10&0xfff) * int64(o.size)
	case w&0x1f800000 == 0x12800000: // move wide
		switch w >> 29 & 3 {
		case 0:
			o.kind = aMovN
		case 2:
			o.kind = aMovZ
		case 3:
			o.kind = aMovK
		default:
			return &aop{err: fmt.Sprintf("%08x: unallocated move wide", w)}
		}
		o.shift = uint8(16 * (w >> 21 & 3))
		if !o.sf && o.shift > 16 {
			return &aop{err: fmt.Sprintf("%08x: 32-bit move wide with shift %d", w, o.shift)}
		}
		o.imm = int64(w >> 5 & 0xffff)
	case w&0x7f800000 == 0x11000000 || w&0x7f800000 == 0x51000000: // add/sub imm, no flags
		o.kind = aAddImm
		if w>>30&1 != 0 {
			o.kind = aSubImm
		}
		o.imm = int64(w >> 10 & 0xfff)
		if w>>22&1 != 0 {
			o.imm <<= 12
		}
	case w&0x7f200000 == 0x2a000000: // orr shifted register
		o.kind = aOrr
		o.rm = uint8(w >> 16 & 31)
		o.shift = uint8(w >> 22 & 3)
		o.imms = uint8(w >> 10 & 0x3f)
		if !o.sf && o.imms >= 32 {
			return &aop{err: fmt.Sprintf("%08x: reserved shift", w)}
		}
	case w&0x7f800000 == 0x53000000: // ubfm
		n := w >> 22 & 1
		if (n != 0) != o.sf {
			return &aop{err: fmt.Sprintf("%08x: ubfm with N != sf", w)}
		}
		o.kind = aUbfm
		o.immr, o.imms = uint8(w>>16&0x3f), uint8(w>>10&0x3f)
		if !o.sf && (o.immr >= 32 || o.imms >= 32) {
			return &aop{err: fmt.Sprintf("%08x: reserved 32-bit ubfm", w)}
		}
	case w&0x9f000000 == 0x10000000: // adr
		o.kind = aAdr
		imm := sext(w>>5&0x7ffff<<2|w>>29&3, 21)
		o.target = pc + uint64(imm)
	case w&0xfc000000 == 0x94000000, w&0xfc000000 == 0x14000000:
		o.kind = aBl
		if w>>31 == 0 {
			o.kind = aB
		}
		o.target = pc + uint64(sext(w&0x3ffffff, 26)*4)
	case w&0xfffffc1f == 0xd63f0000:
		o.kind = aBlr
	case w&0xfffffc1f == 0xd61f0000:
		o.kind = aBr
	case w&0xfffffc1f == 0xd65f0000:
		o.kind = aRet
	case w&0x7e000000 == 0x34000000:
		o.kind = aCbz
		if w>>24&1 != 0 {
			o.kind = aCbnz
		}
		o.target = pc + uint64(sext(w>>5&0x7ffff, 19)*4)
	default:
		return &aop{err: fmt.Sprintf("%08x %s: instruction not modelled", w, o.text)}
	}
	if o.target != 0 {
		o.text = fmt.Sprintf("%s (%#x)", o.text, o.target)
	}
	return o
}

// xr reads a register where 31 is the zero register.
func (m *machine) xr(r uint8, sf bool) uint64 {
	if r == 31 {
		return 0
	}
	if sf {
		return m.regs[r]
	}
	return m.regs[r] & 0xffffffff
}

// setX writes a register where 31 is the zero register (32-bit writes
// zero the upper half).
func (m *machine) setX(r uint8, sf bool, v uint64) {
	if r == 31 {
		return
	}
	if !sf {
		v &= 0xffffffff
	}
	m.regs[r] = v
}

// spr reads a register where 31 is sp; setSP writes one.
func (m *machine) spr(r uint8) uint64 { return m.regs[r] }

func (m *machine) setSP(r uint8, sf bool, v uint64) {
	if !sf {
		v &= 0xffffffff
	}
	m.regs[r] = v
}

// baseA64 is the base register of a memory access; sp-based accesses
// need a 16-byte aligned sp (SCTLR_EL1.SA).
func (m *machine) baseA64(rn uint8) uint64 {
	v := m.regs[rn]
	if rn == 31 && v%16 != 0 {
		m.violate(CheckAlign, "sp-based access with sp %s not 16-byte aligned", m.where(v))
	}
	return v
}

func (m *machine) checkCallA64() {
	if sp := m.regs[31]; sp%16 != 0 {
		m.violate(CheckAlign, "call with sp %s not 16-byte aligned", m.where(sp))
	}
}

func (m *machine) stepA64() {
	e := m.e
	off := m.curOff
	if off%4 != 0 {
		m.fatal(CheckControl, "pc %#x is not on an instruction boundary", m.pc)
		return
	}
	o := e.a64[off/4]
	if o == nil {
		o = e.decodeA64(off)
		e.a64[off/4] = o
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
	next := m.pc + 4
	switch o.kind {
	case aNop:
	case aBrk:
		m.fatal(CheckControl, "executed brk #%#x", o.imm)
	case aStp, aLdp:
		base := m.baseA64(o.rn)
		addr := base
		if o.mode != modePost {
			addr += uint64(o.imm)
		}
		if o.mode == modePre {
			// Writeback first: the pair lands in the new frame.
			m.regs[o.rn] = addr
		}
		if o.kind == aStp {
			m.write(addr, 8, m.xr(o.rd, true), o.text)
			m.write(addr+8, 8, m.xr(o.rt2, true), o.text)
		} else {
			a := m.read(addr, 8, o.text)
			b := m.read(addr+8, 8, o.text)
			m.setX(o.rd, true, a)
			m.setX(o.rt2, true, b)
		}
		if o.mode == modePost {
			m.regs[o.rn] = base + uint64(o.imm)
		}
	case aStr:
		addr := m.baseA64(o.rn) + uint64(o.imm)
		m.write(addr, int(o.size), m.xr(o.rd, true), o.text)
	case aLdr:
		addr := m.baseA64(o.rn) + uint64(o.imm)
		m.setX(o.rd, o.size == 8, m.read(addr, int(o.size), o.text))
	case aMovZ:
		m.setX(o.rd, o.sf, uint64(o.imm)<<o.shift)
	case aMovN:
		m.setX(o.rd, o.sf, ^(uint64(o.imm) << o.shift))
	case aMovK:
		v := m.xr(o.rd, o.sf)&^(0xffff<<o.shift) | uint64(o.imm)<<o.shift
		m.setX(o.rd, o.sf, v)
	case aAddImm:
		m.setSP(o.rd, o.sf, m.spr(o.rn)+uint64(o.imm))
	case aSubImm:
		m.setSP(o.rd, o.sf, m.spr(o.rn)-uint64(o.imm))
	case aOrr:
		b := m.xr(o.rm, o.sf)
		width := uint64(32)
		if o.sf {
			width = 64
		}
		sh := uint64(o.imms)
		switch o.shift {
		case 0:
			b <<= sh
		case 1:
			b >>= sh
		case 2:
			if o.sf {
				b = uint64(int64(b) >> sh)
			} else {
				b = uint64(uint32(int32(uint32(b)) >> sh))
			}
		case 3:
			b = b>>sh | b<<(width-sh)
		}
		m.setX(o.rd, o.sf, m.xr(o.rn, o.sf)|b)
	case aUbfm:
		width := uint64(32)
		if o.sf {
			width = 64
		}
		src := m.xr(o.rn, o.sf)
		r, s := uint64(o.immr), uint64(o.imms)
		var v uint64
		if s >= r {
			v = (src >> r) & (1<<(s-r+1) - 1)
			if s-r+1 == 64 {
				v = src >> r
			}
		} else {
			v = (src & (1<<(s+1) - 1)) << (width - r)
		}
		m.setX(o.rd, o.sf, v)
	case aAdr:
		m.setX(o.rd, true, o.target)
	case aB:
		next = o.target
	case aBl:
		m.checkCallA64()
		m.regs[30] = next
		next = o.target
	case aBlr:
		t := m.xr(o.rn, true)
		m.checkCallA64()
		m.regs[30] = next
		next = t
	case aBr, aRet:
		next = m.xr(o.rn, true)
	case aCbz:
		if m.xr(o.rd, o.sf) == 0 {
			next = o.target
		}
	case aCbnz:
		if m.xr(o.rd, o.sf) != 0 {
			next = o.target
		}
	}
	if tracing {
		m.trace(o.text, &before)
	}
	m.pc = next
}
