package arm64

import (
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/arch"
)

// Register numbers as the A64 encodings use them. Register 31 is sp or
// xzr depending on the instruction; the encoders below say which.
const (
	x0  = 0
	x1  = 1
	x2  = 2
	x9  = 9
	x10 = 10
	x19 = 19
	x20 = 20
	fp  = 29 // x29
	lr  = 30 // x30
	sp  = 31
	xzr = 31
)

// Fixed instruction words.
const (
	insnNOP    uint32 = 0xd503201f // hint #0 (aarch64_insn_gen_nop)
	insnBTIJC  uint32 = 0xd50324df // hint #38 (A64_BTI_JC)
	insnBrk100 uint32 = 0xd4202000 // brk #0x100 (AARCH64_BREAK_FAULT, jit_fill_hole)
)

// Move-wide opcodes (aarch64_insn_gen_movewide's AARCH64_INSN_MOVEWIDE_*).
const (
	movN = 0 // inverse
	movZ = 2 // zero
	movK = 3 // keep
)

// movewide encodes movn/movz/movk (aarch64_insn_gen_movewide): sf selects
// the 64-bit form; shift is 0/16 (32-bit) or 0/16/32/48 (64-bit).
func movewide(sf bool, opc int, rd int, imm16 uint16, shift int) uint32 {
	w := uint32(0x12800000) | uint32(opc)<<29 | uint32(shift/16)<<21 | uint32(imm16)<<5 | uint32(rd)
	if sf {
		w |= 1 << 31
	}
	return w
}

// addSubImm encodes add/sub (immediate), 64-bit, with the kernel's rule
// for a shifted imm12 (aarch64_insn_gen_add_sub_imm): an immediate above
// 4095 must be a multiple of 4096 below 2^24.
func addSubImm(sub bool, rd, rn int, imm int) (uint32, error) {
	w := uint32(0x91000000)
	if sub {
		w = 0xd1000000
	}
	if imm < 0 {
		return 0, fmt.Errorf("add/sub immediate %d is negative", imm)
	}
	if imm&^0xfff != 0 {
		if imm&0xfff != 0 || imm>>24 != 0 {
			return 0, fmt.Errorf("add/sub immediate %#x is not encodable", imm)
		}
		imm >>= 12
		w |= 1 << 22
	}
	return w | uint32(imm)<<10 | uint32(rn)<<5 | uint32(rd), nil
}

// ldstImm64 encodes a 64-bit ldr/str with an unsigned scaled offset
// (aarch64_insn_gen_load_store_imm with AARCH64_INSN_SIZE_64): the offset
// must be a multiple of 8 below 32768.
func ldstImm64(load bool, rt, rn int, off int) (uint32, error) {
	if off < 0 || off%8 != 0 || off/8 > 0xfff {
		return 0, fmt.Errorf("ldr/str offset %d is not encodable", off)
	}
	w := uint32(0xf9000000)
	if load {
		w = 0xf9400000
	}
	return w | uint32(off/8)<<10 | uint32(rn)<<5 | uint32(rt), nil
}

// stpPre is A64_PUSH: stp rt, rt2, [rn, #-16]!.
func stpPre(rt, rt2, rn int) uint32 {
	return 0xa9800000 | uint32(0x7e)<<15 | uint32(rt2)<<10 | uint32(rn)<<5 | uint32(rt)
}

// ldpPost is A64_POP: ldp rt, rt2, [rn], #16.
func ldpPost(rt, rt2, rn int) uint32 {
	return 0xa8c00000 | uint32(2)<<15 | uint32(rt2)<<10 | uint32(rn)<<5 | uint32(rt)
}

// movReg is A64_MOV(1, rd, rm) for general registers: orr rd, xzr, rm
// (aarch64_insn_gen_move_reg).
func movReg(rd, rm int) uint32 { return 0xaa0003e0 | uint32(rm)<<16 | uint32(rd) }

// movSP is A64_MOV(1, rd, rn) when either is sp: add rd, rn, #0.
func movSP(rd, rn int) uint32 { return 0x91000000 | uint32(rn)<<5 | uint32(rd) }

// blr, ret: aarch64_insn_gen_branch_reg.
func blr(rn int) uint32 { return 0xd63f0000 | uint32(rn)<<5 }
func ret(rn int) uint32 { return 0xd65f0000 | uint32(rn)<<5 }

// bl encodes a bl over a byte distance that must be a multiple of 4 in
// [-128 MiB, 128 MiB) (aarch64_insn_gen_branch_imm with BRANCH_LINK).
func bl(dist int64) uint32 { return 0x94000000 | uint32(dist>>2)&0x3ffffff }

// adr encodes adr rd, #off (aarch64_insn_gen_adr, ADR_TYPE_ADR).
func adr(rd int, off int) uint32 {
	return 0x10000000 | uint32(off&3)<<29 | uint32(off>>2)&0x7ffff<<5 | uint32(rd)
}

// cbz, cbnz: 64-bit compare-and-branch over a distance in instructions
// (A64_CBZ / A64_CBNZ: aarch64_insn_gen_comp_branch_imm).
func cbz(rt int, insns int) uint32  { return 0xb4000000 | uint32(insns)&0x7ffff<<5 | uint32(rt) }
func cbnz(rt int, insns int) uint32 { return 0xb5000000 | uint32(insns)&0x7ffff<<5 | uint32(rt) }

// lsl, lsr are A64_LSL / A64_LSR (64-bit): ubfm with the alias's fields.
func lsl(rd, rn, shift int) uint32 { return ubfm(rd, rn, (64-shift)%64, 63-shift) }
func lsr(rd, rn, shift int) uint32 { return ubfm(rd, rn, shift, 63) }

func ubfm(rd, rn, immr, imms int) uint32 {
	return 0xd3400000 | uint32(immr)<<16 | uint32(imms)<<10 | uint32(rn)<<5 | uint32(rd)
}

// sz128M is SZ_128M, the reach of a bl.
const sz128M = 128 << 20

// emitter accumulates instruction words. In the size pass (sizePass) it
// behaves as the kernel's jit_ctx with image and ro_image NULL.
type emitter struct {
	sizePass bool
	base     uint64 // ro_image; 0 when unknown
	words    []uint32
	relocs   []arch.Reloc
	labels   []arch.Label
	err      error
	// shortBy counts, in the real pass, the words the size pass emits
	// beyond this pass: 3 per call that is a bl, and what the load of im
	// saves on 4. The size pass's length is then known without running
	// it (TestSizeFromRealPass holds the two equal).
	shortBy int
}

func (e *emitter) emit(w uint32) { e.words = append(e.words, w) }

func (e *emitter) idx() int { return len(e.words) }

// pc is &ro_image[ctx->idx].
func (e *emitter) pc() uint64 { return e.base + 4*uint64(len(e.words)) }

func (e *emitter) fail(err error) {
	if err != nil && e.err == nil {
		e.err = err
	}
}

// emitE emits an encoder's word or records its error.
func (e *emitter) emitE(w uint32, err error) {
	e.fail(err)
	e.emit(w)
}

// label names the next instruction, the name being its parts joined (not
// built at all in the size pass, which keeps no labels).
func (e *emitter) label(parts ...string) {
	if e.sizePass {
		return
	}
	e.labels = append(e.labels, arch.Label{Off: 4 * e.idx(), Name: strings.Join(parts, "")})
}

func (e *emitter) reloc(startIdx int, kind arch.RelocKind, sym string, v uint64) {
	if e.sizePass {
		return
	}
	e.relocs = append(e.relocs, arch.Reloc{Off: 4 * startIdx, Len: 4 * (e.idx() - startIdx), Kind: kind, Sym: sym, Value: v})
}

// movI32 is emit_a64_mov_i: a 32-bit (is64 false) or 64-bit value from a
// sign-extended 32-bit immediate, high halfword decides movn or movz.
func (e *emitter) movI32(is64 bool, reg int, val uint32) {
	hi, lo := uint16(val>>16), uint16(val)
	if hi&0x8000 != 0 {
		if hi == 0xffff {
			e.emit(movewide(is64, movN, reg, ^lo, 0))
			return
		}
		e.emit(movewide(is64, movN, reg, ^hi, 16))
		if lo != 0xffff {
			e.emit(movewide(is64, movK, reg, lo, 0))
		}
		return
	}
	e.emit(movewide(is64, movZ, reg, lo, 0))
	if hi != 0 {
		e.emit(movewide(is64, movK, reg, hi, 16))
	}
}

// halfwordsNot counts the halfwords of v that differ from h
// (i64_i16_blocks).
func halfwordsNot(v uint64, h uint16) int {
	n := 0
	for s := 0; s < 64; s += 16 {
		if uint16(v>>s) != h {
			n++
		}
	}
	return n
}

// fls64 is the kernel's fls64: the 1-based index of the highest set bit,
// 0 for 0.
func fls64(v uint64) int {
	n := 0
	for v != 0 {
		n++
		v >>= 1
	}
	return n
}

// movI64 is emit_a64_mov_i64: values below 2^32 take the 32-bit path;
// otherwise movn is used when fewer halfwords differ from 0xffff than from
// 0, the top non-trivial halfword comes first and movk fills the others
// from high to low, skipping the trivial ones. 1 to 4 instructions.
func (e *emitter) movI64(reg int, val uint64) {
	if val>>32 == 0 {
		e.movI32(false, reg, uint32(val))
		return
	}
	inverse := halfwordsNot(val, 0xffff) < halfwordsNot(val, 0)
	var top int
	if inverse {
		top = fls64(^val) - 1
	} else {
		top = fls64(val) - 1
	}
	shift := max(top/16*16, 0)
	if inverse {
		e.emit(movewide(true, movN, reg, uint16(^val>>shift), shift))
	} else {
		e.emit(movewide(true, movZ, reg, uint16(val>>shift), shift))
	}
	trivial := uint16(0)
	if inverse {
		trivial = 0xffff
	}
	for shift -= 16; shift >= 0; shift -= 16 {
		if h := uint16(val >> shift); h != trivial {
			e.emit(movewide(true, movK, reg, h, shift))
		}
	}
}

// addrMov is emit_addr_mov_i64: always movn + movk lsl 16 + movk lsl 32,
// which leaves 0xffff in the top halfword. A value whose top halfword is
// something else cannot be loaded this way: the kernel would load a
// different address, so that is an error here.
func (e *emitter) addrMov(reg int, val uint64, sym string) {
	start := e.idx()
	if !e.sizePass && val>>48 != 0xffff {
		e.fail(fmt.Errorf("%s = %#x: the fixed movn/movk/movk load only builds addresses whose top 16 bits are 0xffff", sym, val))
	}
	e.emit(movewide(true, movN, reg, ^uint16(val), 0))
	e.emit(movewide(true, movK, reg, uint16(val>>16), 16))
	e.emit(movewide(true, movK, reg, uint16(val>>32), 32))
	e.reloc(start, arch.A64MovWide, sym, val)
}

// indirect is should_emit_indirect_call: no ro_image (the size pass), an
// unknown target, or a target beyond a bl's reach from this instruction.
func (e *emitter) indirect(target uint64) bool {
	if e.sizePass || e.base == 0 || target == 0 {
		return true
	}
	d := int64(target - e.pc())
	return d < -sz128M || d >= sz128M
}

// call is emit_call: a bl when the target is in reach, else x10 <- target
// (emit_addr_mov_i64) and blr x10.
func (e *emitter) call(target uint64, sym string) {
	if e.indirect(target) {
		e.addrMov(x10, target, sym)
		e.emit(blr(x10))
		return
	}
	start := e.idx()
	e.emit(bl(int64(target - e.pc())))
	e.reloc(start, arch.A64Branch26, sym, target)
	e.shortBy += 3
}

// str and ldr are A64_STR64I / A64_LDR64I with sp or x29 as base.
func (e *emitter) str(rt, rn, off int) { e.emitE(ldstImm64(false, rt, rn, off)) }
func (e *emitter) ldr(rt, rn, off int) { e.emitE(ldstImm64(true, rt, rn, off)) }

// addSP is A64_ADD_I(1, rd, sp, off).
func (e *emitter) addSP(rd, off int) { e.emitE(addSubImm(false, rd, sp, off)) }
