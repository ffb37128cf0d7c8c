package s390x

import (
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/arch"
)

// Registers the trampoline uses, by their hardware numbers: the kernel's
// REG_0/REG_W0, REG_1/REG_W1, REG_2..REG_4, REG_7, REG_8, REG_14 and
// REG_15 with reg2hex applied.
const (
	r0  = 0
	r1  = 1
	r2  = 2
	r3  = 3
	r4  = 4
	r7  = 7
	r8  = 8
	r14 = 14
	r15 = 15
)

// Branch condition masks of brcl (the M1 field).
const (
	maskNever  = 0x0 // brcl 0: a NOP (the skip NOP, bpf_tramp_image_add_skip)
	maskNotEq  = 0x7 // brcl 7: condition code 1, 2 or 3 (ltg found non-zero)
	maskEqual  = 0x8 // brcl 8: condition code 0 (ltgr found zero)
	maskAlways = 0xf // brcl 15: jg
)

// word is one encoded instruction: its n bytes (2, 4 or 6) right-aligned
// in v, most significant first. s390x code is big-endian: the kernel's
// _EMIT2/_EMIT4/_EMIT6 store u16 and u32 halves in the CPU's byte order.
type word struct {
	v uint64
	n int
}

// appendTo appends the instruction's bytes, big-endian.
func (w word) appendTo(b []byte) []byte {
	for i := w.n - 1; i >= 0; i-- {
		b = append(b, byte(w.v>>(8*i)))
	}
	return b
}

// bytes is the instruction's encoding.
func (w word) bytes() []byte { return w.appendTo(make([]byte, 0, w.n)) }

// The instruction formats, fields masked as the EMIT* macros mask them
// (_EMIT4_DISP and _EMIT6_DISP_LH a 12- or 20-bit displacement,
// EMIT4_IMM a 16-bit immediate, emit6_pcrel_ril the halfword count to
// 32 bits). The emitter checks ranges before it calls them.

// rr is the RR format (2 bytes): opcode, R1 (or M1), R2.
func rr(op byte, r1, r2 int) word {
	return word{uint64(op)<<8 | uint64(r1&15)<<4 | uint64(r2&15), 2}
}

// rre is the RRE format (4 bytes): 16-bit opcode, 8 unused bits, R1, R2
// (the kernel's EMIT4 with reg(b1, b2)).
func rre(op uint16, r1, r2 int) word {
	return word{uint64(op)<<16 | uint64(r1&15)<<4 | uint64(r2&15), 4}
}

// ri is the RI-a format (4 bytes): opcode high byte, R1, opcode low
// nibble, 16-bit immediate (EMIT4_IMM).
func ri(op uint16, r1 int, imm int64) word {
	return word{uint64(op>>4)<<24 | uint64(r1&15)<<20 | uint64(op&15)<<16 | uint64(imm)&0xffff, 4}
}

// rx is the RX-a format (4 bytes): opcode, R1, X2, B2, 12-bit
// displacement (EMIT4_DISP).
func rx(op byte, r1, x2, b2 int, disp int64) word {
	return word{uint64(op)<<24 | uint64(r1&15)<<20 | uint64(x2&15)<<16 | uint64(b2&15)<<12 | uint64(disp)&0xfff, 4}
}

// rxy is the RXY-a format (6 bytes) of opcode 0xe3: R1, X2, B2, the
// displacement's low 12 and high 8 bits, the second opcode byte
// (EMIT6_DISP_LH).
func rxy(op2 byte, r1, x2, b2 int, disp int64) word {
	d := uint64(disp) & 0xfffff
	return word{0xe3<<40 | uint64(r1&15)<<36 | uint64(x2&15)<<32 | uint64(b2&15)<<28 |
		(d&0xfff)<<16 | (d>>12)<<8 | uint64(op2), 6}
}

// rsy is the RSY-a format (6 bytes) of opcode 0xeb: R1, R3, B2 and a
// 20-bit displacement (EMIT6_DISP_LH).
func rsy(op2 byte, r1, r3, b2 int, disp int64) word {
	d := uint64(disp) & 0xfffff
	return word{0xeb<<40 | uint64(r1&15)<<36 | uint64(r3&15)<<32 | uint64(b2&15)<<28 |
		(d&0xfff)<<16 | (d>>12)<<8 | uint64(op2), 6}
}

// ss is the SS-a format (6 bytes): opcode, length - 1, B1, D1, B2, D2
// (the kernel's _EMIT6 of mvc and xc with the fields or'ed in).
func ss(op byte, length int, b1 int, d1 int64, b2 int, d2 int64) word {
	return word{uint64(op)<<40 | uint64((length-1)&0xff)<<32 | uint64(b1&15)<<28 | (uint64(d1)&0xfff)<<16 |
		uint64(b2&15)<<12 | uint64(d2)&0xfff, 6}
}

// ril is the RIL format (6 bytes) of opcode 0xc0: R1 (or M1), the
// opcode's low nibble, a 32-bit immediate or halfword offset
// (EMIT6_IMM, emit6_pcrel_ril).
func ril(op4 byte, r1 int, i2 uint32) word {
	return word{0xc0<<40 | uint64(r1&15)<<36 | uint64(op4&15)<<32 | uint64(i2), 6}
}

// pcrel32 is emit6_pcrel_ril's field: the byte offset halved, as s32.
func pcrel32(off int64) uint32 { return uint32(int32(off / 2)) }

// The instructions of the trampoline, under their mnemonics (the
// kernel's comments name each).
func lgr(r1, r2 int) word               { return rre(0xb904, r1, r2) }
func ltgr(r1, r2 int) word              { return rre(0xb902, r1, r2) }
func lgbr(r1, r2 int) word              { return rre(0xb906, r1, r2) }
func llgcr(r1, r2 int) word             { return rre(0xb984, r1, r2) }
func lghr(r1, r2 int) word              { return rre(0xb907, r1, r2) }
func llghr(r1, r2 int) word             { return rre(0xb985, r1, r2) }
func lgfr(r1, r2 int) word              { return rre(0xb914, r1, r2) }
func llgfr(r1, r2 int) word             { return rre(0xb916, r1, r2) }
func aghi(r1 int, imm int64) word       { return ri(0xa7b, r1, imm) }
func lghi(r1 int, imm int64) word       { return ri(0xa79, r1, imm) }
func la(r1, b2 int, disp int64) word    { return rx(0x41, r1, 0, b2, disp) }
func stg(r1, b2 int, disp int64) word   { return rxy(0x24, r1, 0, b2, disp) }
func lg(r1, b2 int, disp int64) word    { return rxy(0x04, r1, 0, b2, disp) }
func ltg(r1, b2 int, disp int64) word   { return rxy(0x02, r1, 0, b2, disp) }
func stmg(r1, r3, b2 int, d int64) word { return rsy(0x24, r1, r3, b2, d) }
func lmg(r1, r3, b2 int, d int64) word  { return rsy(0x04, r1, r3, b2, d) }
func llihf(r1 int, imm uint32) word     { return ril(0xe, r1, imm) }
func oilf(r1 int, imm uint32) word      { return ril(0xd, r1, imm) }
func brasl(r1 int, off int64) word      { return ril(0x5, r1, pcrel32(off)) }
func brcl(mask int, off int64) word     { return ril(0x4, mask, pcrel32(off)) }
func basr(r1, r2 int) word              { return rr(0x0d, r1, r2) }
func br(r2 int) word                    { return rr(0x07, maskAlways, r2) }
func mvc(d1 int64, length, b1 int, d2 int64, b2 int) word {
	return ss(0xd2, length, b1, d1, b2, d2)
}
func xc(d1 int64, length, b1 int, d2 int64, b2 int) word {
	return ss(0xd7, length, b1, d1, b2, d2)
}

// Field ranges the emitter holds operands to (the kernel does not check
// them: every trampoline the verifier lets through stays inside them).
func isDisp12(d int64) bool { return d >= 0 && d <= 0xfff }
func isDisp20(d int64) bool { return d >= -(1<<19) && d < 1<<19 }
func isImm16(v int64) bool  { return v >= -(1<<15) && v < 1<<15 }

// isRIL says whether a byte offset fits emit6_pcrel_ril's field: even
// (instructions are halfword-aligned) and within ±4 GiB.
func isRIL(off int64) bool { return off&1 == 0 && off >= -(1<<32) && off < 1<<32 }

// Relocation kinds of s390x images (package arch defines them).
const (
	// RILRel32 is a brasl or brcl whose target is an address outside
	// the image (arch.S390RIL).
	RILRel32 = arch.S390RIL
	// Imm64Pair is load_imm64 (arch.S390Imm64Pair).
	Imm64Pair = arch.S390Imm64Pair
)

// emitter accumulates code as the kernel's struct bpf_jit does: jit->prg
// is len(code). A pass without a buffer (buf false: prg_buf NULL, the
// size pass and arch_prepare_bpf_trampoline's first pass) still builds
// code, so that its length is exact, but keeps no relocations or labels,
// and its PC-relative fields to addresses are 0 (ptr_to_pcrel).
type emitter struct {
	buf    bool
	base   uint64 // the image's address (prg_buf) in a pass with a buffer
	code   []byte
	relocs []arch.Reloc
	labels []arch.Label
	err    error
}

func (e *emitter) emit(w word) { e.code = w.appendTo(e.code) }

// prg is jit->prg: the offset of the next instruction.
func (e *emitter) prg() int { return len(e.code) }

func (e *emitter) fail(err error) {
	if err != nil && e.err == nil {
		e.err = err
	}
}

func (e *emitter) failf(format string, args ...any) {
	e.fail(fmt.Errorf("offset %#x: "+format, append([]any{e.prg()}, args...)...))
}

// label names the next instruction (only in the pass with a buffer).
func (e *emitter) label(parts ...string) {
	if e.buf {
		e.labels = append(e.labels, arch.Label{Off: e.prg(), Name: strings.Join(parts, "")})
	}
}

func (e *emitter) reloc(start int, kind arch.RelocKind, sym string, v uint64) {
	if e.buf {
		e.relocs = append(e.relocs, arch.Reloc{Off: start, Len: e.prg() - start, Kind: kind, Sym: sym, Value: v})
	}
}

// Checked emitters: the operands must fit their fields, or the pass
// fails with an error naming the instruction.

func (e *emitter) disp12(name string, d int64) {
	if !isDisp12(d) {
		e.failf("%s: displacement %d does not fit 12 unsigned bits", name, d)
	}
}

func (e *emitter) disp20(name string, d int64) {
	if !isDisp20(d) {
		e.failf("%s: displacement %d does not fit 20 signed bits", name, d)
	}
}

func (e *emitter) imm16(name string, v int64) {
	if !isImm16(v) {
		e.failf("%s: immediate %d does not fit 16 signed bits", name, v)
	}
}

// stg, lg and ltg of a general register at disp(%r15) (EMIT6_DISP_LH with
// REG_0 as the index, that is none).
func (e *emitter) stg(r int, disp int64) { e.disp20("stg", disp); e.emit(stg(r, r15, disp)) }
func (e *emitter) lg(r int, disp int64)  { e.disp20("lg", disp); e.emit(lg(r, r15, disp)) }
func (e *emitter) ltg(r int, disp int64) { e.disp20("ltg", disp); e.emit(ltg(r, r15, disp)) }

// stmg and lmg of %rA..%rB at disp(%r15).
func (e *emitter) stmg(ra, rb int, disp int64) {
	e.disp20("stmg", disp)
	e.emit(stmg(ra, rb, r15, disp))
}
func (e *emitter) lmg(ra, rb int, disp int64) { e.disp20("lmg", disp); e.emit(lmg(ra, rb, r15, disp)) }

// la r, disp(%r15) (EMIT4_DISP).
func (e *emitter) la(r int, disp int64) { e.disp12("la", disp); e.emit(la(r, r15, disp)) }

// aghi and lghi (EMIT4_IMM).
func (e *emitter) aghi(r int, imm int64) { e.imm16("aghi", imm); e.emit(aghi(r, imm)) }
func (e *emitter) lghi(r int, imm int64) { e.imm16("lghi", imm); e.emit(lghi(r, imm)) }

// mvc d1(length,b1),d2(b2) (_EMIT6 with the fields or'ed in).
func (e *emitter) mvc(d1 int64, length, b1 int, d2 int64, b2 int) {
	if length < 1 || length > 256 {
		e.failf("mvc: length %d is not 1 to 256", length)
	}
	e.disp12("mvc", d1)
	e.disp12("mvc", d2)
	e.emit(mvc(d1, length, b1, d2, b2))
}

// xc d(length,%r15),d(%r15): zeroes the field.
func (e *emitter) xcSelf(d int64, length int) {
	e.disp12("xc", d)
	e.emit(xc(d, length, r15, d, r15))
}

// loadImm64 is load_imm64: llihf with the high word, oilf with the low
// one; sym, when not empty, names the value in a relocation.
func (e *emitter) loadImm64(r int, v uint64, sym string) {
	start := e.prg()
	e.emit(llihf(r, uint32(v>>32)))
	e.emit(oilf(r, uint32(v)))
	if sym != "" {
		e.reloc(start, Imm64Pair, sym, v)
	}
}

// ril emits a brasl or brcl (RIL) to an absolute target: ptr_to_pcrel,
// the target less this instruction's address, 0 without a buffer. The
// kernel does not check the reach; a target beyond ±4 GiB would be
// truncated, so here it is an error.
func (e *emitter) rilTo(enc func(int, int64) word, r int, target uint64, sym string) {
	start := e.prg()
	var off int64
	if e.buf {
		off = int64(target - (e.base + uint64(start)))
		if !isRIL(off) {
			e.failf("branch to %s at %#x: offset %#x is odd or beyond ±4 GiB (emit6_pcrel_ril would truncate it)", sym, target, off)
		}
	}
	e.emit(enc(r, off))
	e.reloc(start, RILRel32, sym, target)
}

// brasl is "brasl %rN,target" (EMIT6_PCREL_RILB_PTR).
func (e *emitter) brasl(r int, target uint64, sym string) { e.rilTo(brasl, r, target, sym) }

// brclTo is "brcl mask,target" to an address (EMIT6_PCREL_RILC_PTR).
func (e *emitter) brclTo(mask int, target uint64, sym string) { e.rilTo(brcl, mask, target, sym) }

// brclOff is "brcl mask,off" to an offset of the image
// (EMIT6_PCREL_RILC: off_to_pcrel, off - jit->prg, whatever the pass).
func (e *emitter) brclOff(mask, off int) { e.emit(brcl(mask, int64(off-e.prg()))) }

// patchRIL rewrites the offset field of the RIL instruction at at to
// reach to: the kernel's "*(u32 *)&jit->prg_buf[patch + 2] = (jit->prg -
// patch) >> 1", only when there is a buffer.
func (e *emitter) patchRIL(at, to int) {
	if !e.buf {
		return
	}
	v := uint32((to - at) >> 1)
	e.code[at+2], e.code[at+3], e.code[at+4], e.code[at+5] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}
