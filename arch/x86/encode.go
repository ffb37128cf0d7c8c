package x86

// The encoders the trampoline sequence is built from, each named after
// the arch/x86/net/bpf_jit_comp.c helper (emit_*, EMIT*) it models.
// testdata/encode.txt pins every one of them, bytes and x/arch text.

import (
	"fmt"

	"github.com/bpftramp/tramp/arch"
)

// Register numbers as the CPU encodes them.
const (
	rax = 0
	rcx = 1
	rdx = 2
	rbx = 3
	rbp = 5
	rsi = 6
	rdi = 7
	r8  = 8
	r9  = 9
)

// argReg is the register of argument slot n (0..5): the BPF R1..R5
// mapping (rdi, rsi, rdx, rcx, r8) with r9 for the sixth.
var argReg = [6]int{rdi, rsi, rdx, rcx, r8, r9}

// insnSafety is BPF_INSN_SAFETY: the size pass returns code + 64.
const insnSafety = 64

// maxNopLen is ASM_NOP_MAX.
const maxNopLen = 11

// nops are the kernel's x86_64 NOP sequences (asm/nops.h), by length.
var nops = [maxNopLen + 1][]byte{
	nil,
	{0x90},
	{0x66, 0x90},
	{0x0f, 0x1f, 0x00},
	{0x0f, 0x1f, 0x40, 0x00},
	{0x0f, 0x1f, 0x44, 0x00, 0x00},
	{0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00},
	{0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00},
	{0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
	{0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
	{0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
	{0x66, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
}

// emitter accumulates code and relocations for an image at base.
type emitter struct {
	base uint64
	// callDepth: emit call-depth accounting; callDepthVar is the address
	// of the per-CPU counter it shifts.
	callDepth    bool
	callDepthVar uint64
	// callThunks are the call targets that get no accounting.
	callThunks map[string]bool

	code   []byte
	relocs []arch.Reloc
	labels []arch.Label
	err    error
}

func (e *emitter) emit(b ...byte) { e.code = append(e.code, b...) }

func (e *emitter) le32(v uint32) { e.emit(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }

func (e *emitter) label(name string) {
	e.labels = append(e.labels, arch.Label{Off: len(e.code), Name: name})
}

func (e *emitter) reloc(off, n int, kind arch.RelocKind, sym string, v uint64) {
	e.relocs = append(e.relocs, arch.Reloc{Off: off, Len: n, Kind: kind, Sym: sym, Value: v})
}

func isImm8(v int) bool { return v >= -128 && v <= 127 }

func rexW(r int) byte { // add_1mod(0x48, reg)
	if r >= 8 {
		return 0x49
	}
	return 0x48
}

// rex2 is add_2mod(b, r1, r2).
func rex2(b byte, r1, r2 int) byte {
	if r1 >= 8 {
		b |= 1
	}
	if r2 >= 8 {
		b |= 4
	}
	return b
}

// modrm2 is add_2reg(b, dst, src).
func modrm2(b byte, dst, src int) byte { return b + byte(dst&7) + byte(src&7)<<3 }

// nopsN emits n bytes of NOPs in chunks of at most maxNopLen (emit_nops).
func (e *emitter) nopsN(n int) {
	for n > 0 {
		k := min(n, maxNopLen)
		e.emit(nops[k]...)
		n -= k
	}
}

// movImm32 is emit_mov_imm32; field reports where the immediate went.
func (e *emitter) movImm32(signProp bool, reg int, imm uint32) (field int) {
	if signProp && int32(imm) < 0 {
		e.emit(rexW(reg), 0xc7, 0xc0+byte(reg&7))
		field = len(e.code)
		e.le32(imm)
		return field
	}
	if imm == 0 {
		if reg >= 8 {
			e.emit(rex2(0x40, reg, reg))
		}
		e.emit(0x31, modrm2(0xc0, reg, reg))
		return -1
	}
	if reg >= 8 {
		e.emit(0x41)
	}
	e.emit(0xb8 + byte(reg&7))
	field = len(e.code)
	e.le32(imm)
	return field
}

// movImm64 is emit_mov_imm64. When sym is set the immediate is recorded
// as a relocation.
func (e *emitter) movImm64(reg int, v uint64, sym string) {
	switch {
	case v <= 0xffffffff:
		if f := e.movImm32(false, reg, uint32(v)); f >= 0 && sym != "" {
			e.reloc(f, 4, arch.Imm32, sym, v)
		}
	case int64(v) == int64(int32(v)):
		if f := e.movImm32(true, reg, uint32(v)); f >= 0 && sym != "" {
			e.reloc(f, 4, arch.Imm32, sym, v)
		}
	default:
		e.emit(rexW(reg), 0xb8+byte(reg&7))
		if sym != "" {
			e.reloc(len(e.code), 8, arch.Imm64, sym, v)
		}
		e.le32(uint32(v))
		e.le32(uint32(v >> 32))
	}
}

// suffix is emit_insn_suffix: the ModR/M byte and displacement.
func (e *emitter) suffix(ptr, val, off int) {
	if isImm8(off) {
		e.emit(modrm2(0x40, ptr, val), byte(int8(off)))
		return
	}
	e.emit(modrm2(0x80, ptr, val))
	e.le32(uint32(int32(off)))
}

// stx is emit_stx(BPF_DW, rbp, src, off): mov [rbp+off], src.
func (e *emitter) stx(src, off int) {
	e.emit(rex2(0x48, rbp, src), 0x89)
	e.suffix(rbp, src, off)
}

// ldx is emit_ldx(BPF_DW, dst, rbp, off): mov dst, [rbp+off].
func (e *emitter) ldx(dst, off int) {
	e.emit(rex2(0x48, rbp, dst), 0x8b)
	e.suffix(rbp, dst, off)
}

// storeImm64 is emit_store_stack_imm64: mov reg, imm; mov [rbp+off], reg.
func (e *emitter) storeImm64(reg, off int, v uint64, sym string) {
	e.movImm64(reg, v, sym)
	e.stx(reg, off)
}

// movReg is emit_mov_reg(is64): mov dst, src.
func (e *emitter) movReg(dst, src int) {
	e.emit(rex2(0x48, dst, src), 0x89, modrm2(0xc0, dst, src))
}

// lea emits lea reg, [rbp+off] with the kernel's fixed encodings.
func (e *emitter) lea(reg, off int) {
	if isImm8(off) {
		e.emit(0x48, 0x8d, modrm2(0x40, rbp, reg), byte(int8(off)))
		return
	}
	e.emit(0x48, 0x8d, modrm2(0x80, rbp, reg))
	e.le32(uint32(int32(off)))
}

// rel32 gives target - (field end) or records an error when out of range
// (emit_patch's -ERANGE).
func (e *emitter) rel32(target uint64, end int) uint32 {
	d := int64(target - (e.base + uint64(end)))
	if d != int64(int32(d)) {
		if e.err == nil {
			e.err = fmt.Errorf("call target %#x is out of rel32 range of the image at %#x", target, e.base)
		}
	}
	return uint32(int32(d))
}

// callDepthAccounting is x86_call_depth_emit_accounting
// (arch/x86/kernel/callthunks.c): the skl_call_thunk_template, sar qword
// gs:[rip+disp32], 5 (65 48 c1 3d disp32 05), relocated to where it lands,
// so that disp32 reaches the per-CPU __x86_call_depth from the end of the
// instruction. Only with call-depth tracking (callDepth set).
func (e *emitter) callDepthAccounting() {
	if !e.callDepth {
		return
	}
	e.emit(0x65, 0x48, 0xc1, 0x3d)
	e.reloc(len(e.code), 4, arch.RelRIP32Imm8, CallDepthVar, e.callDepthVar)
	e.le32(e.rel32(e.callDepthVar, len(e.code)+5))
	e.emit(0x05)
}

// call is emit_rsb_call: the call-depth accounting template (when on and
// the target's padding holds no call thunk), then e8 rel32.
func (e *emitter) call(target uint64, sym string) {
	if !e.callThunks[sym] {
		e.callDepthAccounting()
	}
	e.emit(0xe8)
	e.reloc(len(e.code), 4, arch.RelCall32, sym, target)
	e.le32(e.rel32(target, len(e.code)+4))
}

// subRsp is the prologue's sub rsp, imm8 or imm32 (EMIT4 / EMIT3_off32
// in __arch_prepare_bpf_trampoline).
func (e *emitter) subRsp(n int) {
	if isImm8(n) {
		e.emit(0x48, 0x83, 0xec, byte(n))
		return
	}
	e.emit(0x48, 0x81, 0xec)
	e.le32(uint32(n))
}

// movStackImm32 is mov dword [rbp+off], imm (clean_stack_garbage's store).
func (e *emitter) movStackImm32(off int, imm uint32) {
	if isImm8(off) {
		e.emit(0xc7, 0x45, byte(int8(off)))
	} else {
		e.emit(0xc7, 0x85)
		e.le32(uint32(int32(off)))
	}
	e.le32(imm)
}

// patchJE8 turns the two NOPs at 'at' into je rel8 to the current end of
// the code (invoke_bpf_prog's jmp_insn[0] = X86_JE).
func (e *emitter) patchJE8(at int) {
	e.code[at] = 0x74
	e.code[at+1] = byte(len(e.code) - at - 2)
}

// patchJNE32 turns the six NOPs at 'at' into jne rel32 to target
// (emit_cond_near_jump with X86_JNE, over the NOPs invoke_bpf_mod_ret
// left).
func (e *emitter) patchJNE32(at, target int) {
	rel := uint32(int32(target - (at + 6)))
	copy(e.code[at:], []byte{0x0f, 0x85, byte(rel), byte(rel >> 8), byte(rel >> 16), byte(rel >> 24)})
}

// align pads with NOPs to a multiple of n from the image start
// (emit_align: it aligns the write pointer of the kvmalloc'd buffer,
// which SLUB aligns, so the start is the reference).
func (e *emitter) align(n int) {
	if r := len(e.code) % n; r != 0 {
		e.nopsN(n - r)
	}
}

// ret is emit_return: with return thunks a jmp to the thunk
// x86_return_thunk points at (thunk, at address thunkAddr), otherwise
// ret and, with SLS, an int3.
func (e *emitter) ret(rethunk bool, thunk string, thunkAddr uint64, sls bool) {
	if rethunk {
		e.emit(0xe9)
		e.reloc(len(e.code), 4, arch.RelJump32, thunk, thunkAddr)
		e.le32(e.rel32(thunkAddr, len(e.code)+4))
		return
	}
	e.emit(0xc3)
	if sls {
		e.emit(0xcc)
	}
}
