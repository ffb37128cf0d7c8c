package riscv64

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/arch"
)

// Register numbers (x0..x31) under their ABI names, as the kernel's
// RV_REG_* constants.
const (
	zero = 0
	ra   = 1
	sp   = 2
	t0   = 5
	t1   = 6
	fp   = 8 // s0
	s1   = 9
	a0   = 10
	a1   = 11
	a2   = 12
	a5   = 15
	a6   = 16 // RV_REG_TCC: the tail call counter
)

// regNames are the ABI names of x0..x31.
var regNames = [32]string{
	"zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
	"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
	"s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
	"t3", "t4", "t5", "t6",
}

// insnNOP is rv_nop: addi zero, zero, 0 (always the 32-bit form; the JIT
// reserves branch and patch slots with it).
const insnNOP uint32 = 0x00000013

// Range predicates of bpf_jit.h (is_6b_int, is_9b_uint, ...).
func isInt(v int64, bits uint) bool  { return -(int64(1)<<(bits-1)) <= v && v < int64(1)<<(bits-1) }
func isUint(v int64, bits uint) bool { return 0 <= v && v < int64(1)<<bits }

// isCReg is is_creg: x8..x15, the registers RVC's 3-bit fields reach.
func isCReg(r int) bool { return r >= 8 && r <= 15 }

// Base-ISA formats (rv_r_insn, rv_i_insn, rv_s_insn, rv_b_insn, rv_u_insn,
// rv_j_insn).
func iType(imm int64, rs1, funct3, rd int, opcode uint32) uint32 {
	return uint32(imm&0xfff)<<20 | uint32(rs1)<<15 | uint32(funct3)<<12 | uint32(rd)<<7 | opcode
}

func sType(imm int64, rs2, rs1, funct3 int, opcode uint32) uint32 {
	u := uint32(imm & 0xfff)
	return u>>5<<25 | uint32(rs2)<<20 | uint32(rs1)<<15 | uint32(funct3)<<12 | (u&0x1f)<<7 | opcode
}

func bType(off int64, rs2, rs1, funct3 int) uint32 {
	u := uint32(off)
	return (u>>12&1)<<31 | (u>>5&0x3f)<<25 | uint32(rs2)<<20 | uint32(rs1)<<15 | uint32(funct3)<<12 |
		(u>>1&0xf)<<8 | (u>>11&1)<<7 | 0x63
}

func uType(imm20 int64, rd int, opcode uint32) uint32 {
	return uint32(imm20&0xfffff)<<12 | uint32(rd)<<7 | opcode
}

// 32-bit instructions (rv_addi, rv_addiw, rv_slli, rv_ld, rv_sd, rv_lui,
// rv_auipc, rv_jal, rv_jalr, rv_beq, rv_bne). Offsets are in bytes.
func rvAddi(rd, rs int, imm int64) uint32  { return iType(imm, rs, 0, rd, 0x13) }
func rvAddiw(rd, rs int, imm int64) uint32 { return iType(imm, rs, 0, rd, 0x1b) }
func rvSlli(rd, rs int, sh int64) uint32   { return iType(sh&0x3f, rs, 1, rd, 0x13) }
func rvLd(rd int, off int64, rs int) uint32 {
	return iType(off, rs, 3, rd, 0x03)
}
func rvSd(rs1 int, off int64, rs2 int) uint32 { return sType(off, rs2, rs1, 3, 0x23) }
func rvLui(rd int, imm20 int64) uint32        { return uType(imm20, rd, 0x37) }
func rvAuipc(rd int, imm20 int64) uint32      { return uType(imm20, rd, 0x17) }
func rvJalr(rd, rs int, imm int64) uint32     { return iType(imm, rs, 0, rd, 0x67) }
func rvBeq(rs1, rs2 int, off int64) uint32    { return bType(off, rs2, rs1, 0) }
func rvBne(rs1, rs2 int, off int64) uint32    { return bType(off, rs2, rs1, 1) }
func rvJal(rd int, off int64) uint32 {
	u := uint32(off)
	return (u>>20&1)<<31 | (u>>1&0x3ff)<<21 | (u>>11&1)<<20 | (u>>12&0xff)<<12 | uint32(rd)<<7 | 0x6f
}

// RVC instructions (rvc_addi16sp, rvc_addi4spn, rvc_addi, rvc_addiw,
// rvc_li, rvc_lui, rvc_slli, rvc_mv, rvc_jr, rvc_jalr, rvc_ldsp, rvc_sdsp,
// rvc_ld, rvc_sd), from the C extension's formats.
func ciType(funct3 int, imm6 int64, rd int, op uint16) uint16 {
	u := uint16(imm6)
	return uint16(funct3)<<13 | (u>>5&1)<<12 | uint16(rd)<<7 | (u&0x1f)<<2 | op
}

func rvcAddi(rd int, imm int64) uint16  { return ciType(0, imm, rd, 1) }
func rvcAddiw(rd int, imm int64) uint16 { return ciType(1, imm, rd, 1) }
func rvcLi(rd int, imm int64) uint16    { return ciType(2, imm, rd, 1) }
func rvcLui(rd int, imm6 int64) uint16  { return ciType(3, imm6, rd, 1) }
func rvcSlli(rd int, sh int64) uint16   { return ciType(0, sh, rd, 2) }

func rvcAddi16sp(imm int64) uint16 {
	u := uint16(imm)
	return 3<<13 | (u>>9&1)<<12 | sp<<7 | (u>>4&1)<<6 | (u>>6&1)<<5 | (u>>7&3)<<3 | (u>>5&1)<<2 | 1
}

func rvcAddi4spn(rd int, imm int64) uint16 {
	u := uint16(imm)
	return (u>>4&3)<<11 | (u>>6&0xf)<<7 | (u>>2&1)<<6 | (u>>3&1)<<5 | uint16(rd-8)<<2
}

func rvcMv(rd, rs int) uint16 { return 4<<13 | uint16(rd)<<7 | uint16(rs)<<2 | 2 }
func rvcJr(rs int) uint16     { return 4<<13 | uint16(rs)<<7 | 2 }
func rvcJalr(rs int) uint16   { return 4<<13 | 1<<12 | uint16(rs)<<7 | 2 }

func rvcLdsp(rd int, off int64) uint16 {
	u := uint16(off)
	return 3<<13 | (u>>5&1)<<12 | uint16(rd)<<7 | (u>>3&3)<<5 | (u>>6&7)<<2 | 2
}

func rvcSdsp(off int64, rs2 int) uint16 {
	u := uint16(off)
	return 7<<13 | (u>>3&7)<<10 | (u>>6&7)<<7 | uint16(rs2)<<2 | 2
}

func rvcLd(rd int, off int64, rs1 int) uint16 {
	u := uint16(off)
	return 3<<13 | (u>>3&7)<<10 | uint16(rs1-8)<<7 | (u>>6&3)<<5 | uint16(rd-8)<<2
}

func rvcSd(rs1 int, off int64, rs2 int) uint16 {
	u := uint16(off)
	return 7<<13 | (u>>3&7)<<10 | uint16(rs1-8)<<7 | (u>>6&3)<<5 | uint16(rs2-8)<<2
}

// emitter accumulates code as the kernel's rv_jit_context does: 16-bit
// parcels (ninsns), RVC instructions one parcel, the others two. In the
// size pass (sizePass) it behaves as the context with insns NULL.
type emitter struct {
	rvc      bool // rvc_enabled(): CONFIG_RISCV_ISA_C
	sizePass bool
	base     uint64 // ro_insns; 0 in the size pass
	code     []byte
	relocs   []arch.Reloc
	labels   []arch.Label
	err      error
}

func (e *emitter) emit(w uint32)  { e.code = binary.LittleEndian.AppendUint32(e.code, w) }
func (e *emitter) emitc(w uint16) { e.code = binary.LittleEndian.AppendUint16(e.code, w) }

// off is ninsns_rvoff(ctx->ninsns): the byte offset of the next
// instruction.
func (e *emitter) off() int { return len(e.code) }

// pc is &ro_insns[ctx->ninsns].
func (e *emitter) pc() uint64 { return e.base + uint64(len(e.code)) }

func (e *emitter) fail(err error) {
	if err != nil && e.err == nil {
		e.err = err
	}
}

// patch overwrites the 32-bit word at byte offset off (the JIT's
// "*(u32 *)(ctx->insns + off) = insn" for reserved NOPs). The size pass
// has no code to patch.
func (e *emitter) patch(off int, w uint32) {
	if e.sizePass {
		return
	}
	binary.LittleEndian.PutUint32(e.code[off:], w)
}

// label names the next instruction (not kept in the size pass).
func (e *emitter) label(parts ...string) {
	if e.sizePass {
		return
	}
	e.labels = append(e.labels, arch.Label{Off: e.off(), Name: strings.Join(parts, "")})
}

func (e *emitter) reloc(start int, kind arch.RelocKind, sym string, v uint64) {
	if e.sizePass {
		return
	}
	e.relocs = append(e.relocs, arch.Reloc{Off: start, Len: e.off() - start, Kind: kind, Sym: sym, Value: v})
}

// The emit_* helpers of bpf_jit.h: the RVC form where rvc_enabled() and
// the operands fit it, else the 32-bit one.

// addi is emit_addi: c.addi16sp, c.addi4spn, c.addi or addi.
func (e *emitter) addi(rd, rs int, imm int64) {
	if !isInt(imm, 12) {
		e.fail(fmt.Errorf("addi %s, %s, %d: the immediate does not fit 12 bits", regNames[rd], regNames[rs], imm))
	}
	switch {
	case e.rvc && rd == sp && rd == rs && isInt(imm, 10) && imm != 0 && imm&0xf == 0:
		e.emitc(rvcAddi16sp(imm))
	case e.rvc && isCReg(rd) && rs == sp && isUint(imm, 10) && imm&3 == 0 && imm != 0:
		e.emitc(rvcAddi4spn(rd, imm))
	case e.rvc && rd != zero && rd == rs && imm != 0 && isInt(imm, 6):
		e.emitc(rvcAddi(rd, imm))
	default:
		e.emit(rvAddi(rd, rs, imm))
	}
}

// li is emit_li: c.li or addi rd, zero, imm.
func (e *emitter) li(rd int, imm int64) {
	if e.rvc && rd != zero && isInt(imm, 6) {
		e.emitc(rvcLi(rd, imm))
		return
	}
	e.emit(rvAddi(rd, zero, imm))
}

// lui is emit_lui: c.lui or lui (imm is the 20-bit upper value).
func (e *emitter) lui(rd int, imm int64) {
	if e.rvc && rd != zero && rd != sp && isInt(imm, 6) && imm != 0 {
		e.emitc(rvcLui(rd, imm))
		return
	}
	e.emit(rvLui(rd, imm))
}

// addiw is emit_addiw: c.addiw or addiw.
func (e *emitter) addiw(rd, rs int, imm int64) {
	if e.rvc && rd != zero && rd == rs && isInt(imm, 6) {
		e.emitc(rvcAddiw(rd, imm))
		return
	}
	e.emit(rvAddiw(rd, rs, imm))
}

// slli is emit_slli: c.slli or slli.
func (e *emitter) slli(rd, rs int, sh int64) {
	if e.rvc && rd != zero && rd == rs && sh != 0 && sh < 64 {
		e.emitc(rvcSlli(rd, sh))
		return
	}
	e.emit(rvSlli(rd, rs, sh))
}

// mv is emit_mv: c.mv or addi rd, rs, 0.
func (e *emitter) mv(rd, rs int) {
	if e.rvc && rd != zero && rs != zero {
		e.emitc(rvcMv(rd, rs))
		return
	}
	e.emit(rvAddi(rd, rs, 0))
}

// jalr is emit_jalr: c.jalr, c.jr or jalr.
func (e *emitter) jalr(rd, rs int, imm int64) {
	switch {
	case e.rvc && rd == ra && rs != zero && imm == 0:
		e.emitc(rvcJalr(rs))
	case e.rvc && rd == zero && rs != zero && imm == 0:
		e.emitc(rvcJr(rs))
	default:
		e.emit(rvJalr(rd, rs, imm))
	}
}

// ld is emit_ld: c.ldsp, c.ld or ld.
func (e *emitter) ld(rd int, off int64, rs int) {
	if !isInt(off, 12) {
		e.fail(fmt.Errorf("ld %s, %d(%s): the offset does not fit 12 bits", regNames[rd], off, regNames[rs]))
	}
	switch {
	case e.rvc && rs == sp && rd != zero && isUint(off, 9) && off&7 == 0:
		e.emitc(rvcLdsp(rd, off))
	case e.rvc && isCReg(rd) && isCReg(rs) && isUint(off, 8) && off&7 == 0:
		e.emitc(rvcLd(rd, off, rs))
	default:
		e.emit(rvLd(rd, off, rs))
	}
}

// sd is emit_sd(rs1, off, rs2): c.sdsp, c.sd or sd.
func (e *emitter) sd(rs1 int, off int64, rs2 int) {
	if !isInt(off, 12) {
		e.fail(fmt.Errorf("sd %s, %d(%s): the offset does not fit 12 bits", regNames[rs2], off, regNames[rs1]))
	}
	switch {
	case e.rvc && rs1 == sp && isUint(off, 9) && off&7 == 0:
		e.emitc(rvcSdsp(off, rs2))
	case e.rvc && isCReg(rs1) && isCReg(rs2) && isUint(off, 8) && off&7 == 0:
		e.emitc(rvcSd(rs1, off, rs2))
	default:
		e.emit(rvSd(rs1, off, rs2))
	}
}

// imm is emit_imm: a value of 32 bits by lui+addiw or li; a wider one by
// building its upper part recursively, then slli and, when the low 12
// bits are not zero, addi.
func (e *emitter) imm(rd int, val int64) {
	upper := (val + 1<<11) >> 12
	lower := val & 0xfff << 52 >> 52
	if isInt(val, 32) {
		if upper != 0 {
			e.lui(rd, upper)
			e.addiw(rd, rd, lower)
			return
		}
		e.li(rd, lower)
		return
	}
	shift := int64(0)
	for upper>>shift&1 == 0 {
		shift++
	}
	upper >>= shift
	shift += 12
	e.imm(rd, upper)
	e.slli(rd, rd, shift)
	if lower != 0 {
		e.addi(rd, rd, lower)
	}
}

// immReloc is imm with a relocation naming the value.
func (e *emitter) immReloc(rd int, val uint64, sym string) {
	start := e.off()
	e.imm(rd, int64(val))
	e.reloc(start, RVImm, sym, val)
}

// Reach of jal and of an auipc+jalr pair (is_21b_int, in_auipc_jalr_range).
func inJalRange(off int64) bool { return isInt(off, 21) }
func inAuipcJalrRange(off int64) bool {
	return -(int64(1)<<31)-(1<<11) <= off && off < (int64(1)<<31)-(1<<11)
}

// call is emit_call(addr, fixed_addr = true): the offset from this
// instruction (0 in the size pass, which has no ro_insns) goes to
// emit_jump_and_link with ra: a jal when it is non-zero and within
// ±1 MiB, else auipc t1 + jalr ra when within ±2 GiB, else -ERANGE.
func (e *emitter) call(target uint64, sym string) {
	var off int64
	if !e.sizePass && target != 0 {
		off = int64(target - e.pc())
	}
	start := e.off()
	switch {
	case off != 0 && inJalRange(off):
		e.emit(rvJal(ra, off))
		e.reloc(start, RVJal, sym, target)
	case inAuipcJalrRange(off):
		upper := (off + 1<<11) >> 12
		lower := off & 0xfff
		e.emit(rvAuipc(t1, upper))
		e.emit(rvJalr(ra, t1, lower))
		e.reloc(start, RVAuipcJalr, sym, target)
	default:
		e.fail(fmt.Errorf("call of %s at %#x: target offset %#x is out of auipc+jalr range (-ERANGE)", sym, target, off))
	}
}

// Relocation kinds of riscv64 images (the arch package's kinds).
const (
	RVJal       = arch.RVJal
	RVAuipcJalr = arch.RVAuipcJalr
	RVImm       = arch.RVImm
)
