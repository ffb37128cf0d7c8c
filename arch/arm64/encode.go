package arm64

import "fmt"

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
