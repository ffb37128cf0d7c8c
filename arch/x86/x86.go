// Package x86 generates x86_64 BPF trampolines byte for byte as the
// kernel's __arch_prepare_bpf_trampoline (arch/x86/net/bpf_jit_comp.c)
// does, from the link model's Plan and concrete addresses.
package x86

import (
	"fmt"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// Features are the build and CPU facts that change x86 trampoline bytes
// besides the plan.
type Features struct {
	// EndbrAtFunc: the traced function starts with ENDBR64 (or the
	// kernel's sealed-ENDBR poison), so the original function is called
	// at func+9 instead of func+5 (is_endbr in the kernel).
	EndbrAtFunc bool
	// SLS: CONFIG_MITIGATION_SLS, an int3 after every ret.
	SLS bool
	// Rethunk: the CPU wants return thunks (X86_FEATURE_RETHUNK): the
	// return is a jmp to what x86_return_thunk points at, ReturnThunk
	// (emit_return).
	Rethunk     bool
	ReturnThunk string
	// CallDepth: call-depth accounting (X86_FEATURE_CALL_DEPTH,
	// retbleed=stuff): the 9-byte template that shifts the per-CPU
	// __x86_call_depth at the start and before calls
	// (x86_call_depth_emit_accounting, emit_rsb_call).
	CallDepth bool
}

// Debian is what Debian's amd64 kernels under QEMU -cpu max show:
// IBT-built functions and SLS, no return thunk.
var Debian = Features{EndbrAtFunc: true, SLS: true}

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

// Frame is the x86 trampoline's stack layout: offsets below rbp (all
// positive numbers; a slot at N lives at [rbp-N]).
type Frame struct {
	SaveRet     bool
	NrRegs      int // argument slots
	RegsOff     int // ctx = rbp - RegsOff
	FuncMetaOff int
	IPOff       int // equals FuncMetaOff + 8 when IP_ARG
	CookieOff   int
	CookieCount int
	RbxOff      int
	RunCtxOff   int
	ArgStackOff int // outgoing stack arguments for the original call
	StackSize   int // sub rsp, StackSize
	// TailCallCntPtrOff: with TAIL_CALL_CTX, where "push rax" after the
	// sub leaves the tail-call counter pointer (rbp - round_up(stack, 8)
	// - 8); 0 otherwise.
	TailCallCntPtrOff int
}

// nrUsedRegs is get_nr_used_regs: argument registers taken before the
// first argument that does not fit.
func nrUsedRegs(m trampoline.FuncModel) int {
	n := 0
	for i := 0; i < min(m.NrArgs, trampoline.MaxFuncArgs); i++ {
		words := (m.ArgSize[i] + 7) / 8
		if n+words <= 6 {
			n += words
		}
		if n >= 6 {
			break
		}
	}
	return n
}

// layout computes the frame (the stack_size arithmetic at the top of
// __arch_prepare_bpf_trampoline).
func layout(p *trampoline.Plan) Frame {
	var f Frame
	s := 0
	f.SaveRet = p.Flags&(trampoline.FlagCallOrig|trampoline.FlagRetFentryRet) != 0
	if f.SaveRet {
		s += 8
	}
	f.NrRegs = p.ArgSlots
	s += 8 * f.NrRegs
	f.RegsOff = s
	s += 8
	f.FuncMetaOff = s
	if p.Flags&trampoline.FlagIPArg != 0 {
		s += 8
	}
	f.IPOff = s
	f.CookieCount = p.CookieCount
	s += 8 * p.CookieCount
	f.CookieOff = s
	s += 8
	f.RbxOff = s
	s += 16 // struct bpf_tramp_run_ctx
	f.RunCtxOff = s
	if f.NrRegs > 6 && p.Flags&trampoline.FlagCallOrig != 0 {
		s += 8 * (f.NrRegs - nrUsedRegs(p.Func))
		if p.JmpMode {
			if s%16 != 0 {
				s += 8
			}
		} else if s%16 == 0 {
			s += 8
		}
	}
	f.ArgStackOff = s
	f.StackSize = s
	if p.Flags&trampoline.FlagTailCallCtx != 0 {
		f.TailCallCntPtrOff = (s+7)&^7 + 8
	}
	return f
}

func (f Frame) slots() []arch.Slot {
	out := make([]arch.Slot, 0, 8+f.CookieCount+16)
	add := func(name string, off, size int) {
		if size > 0 {
			out = append(out, arch.Slot{Name: name, Off: -off, Size: size})
		}
	}
	if f.SaveRet {
		add("retval", 8, 8)
	}
	for i := 0; i < f.NrRegs; i++ {
		add(arch.SlotName("arg", i), f.RegsOff-8*i, 8)
	}
	add("func_meta", f.FuncMetaOff, 8)
	if f.IPOff != f.FuncMetaOff {
		add("ip", f.IPOff, 8)
	}
	for j := 0; j < f.CookieCount; j++ {
		add(arch.SlotName("cookie", j), f.CookieOff-8*j, 8)
	}
	add("rbx", f.RbxOff, 8)
	add("run_ctx", f.RunCtxOff, 16)
	if f.ArgStackOff != f.RunCtxOff {
		add("stack_args", f.ArgStackOff, f.ArgStackOff-f.RunCtxOff)
	}
	if f.TailCallCntPtrOff != 0 {
		add("tail_call_cnt_ptr", f.TailCallCntPtrOff, 8)
	}
	return out
}

// gen carries one generation.
type gen struct {
	e     emitter
	p     *trampoline.Plan
	f     Frame
	feat  Features
	addrs arch.Addrs
}

// Generate renders the plan's trampoline with the given addresses.
func Generate(p *trampoline.Plan, feat Features, addrs arch.Addrs) (*arch.Image, error) {
	if p.Arch != "x86_64" {
		return nil, fmt.Errorf("x86 generator given a plan for %s", p.Arch)
	}
	if p.ArgSlots > trampoline.MaxFuncArgs {
		return nil, &trampoline.Error{Errno: trampoline.ENOTSUPP, Stage: trampoline.StageAttach,
			Msg: fmt.Sprintf("%d argument slots, x86_64 takes at most %d", p.ArgSlots, trampoline.MaxFuncArgs)}
	}
	n := len(p.Fentry) + len(p.Fexit) + len(p.ModReturn)
	e := emitter{base: addrs.Image, callDepth: feat.CallDepth, callThunks: addrs.CallThunks,
		code: make([]byte, 0, 160+n*80), relocs: make([]arch.Reloc, 0, 6+n*5), labels: make([]arch.Label, 0, 8+n*2)}
	g := &gen{e: e, p: p, f: layout(p), feat: feat, addrs: addrs}
	if feat.CallDepth {
		g.e.callDepthVar = g.sym(CallDepthVar)
	}
	if err := g.emitAll(); err != nil {
		return nil, err
	}
	if g.e.err != nil {
		return nil, g.e.err
	}
	return &arch.Image{
		Arch:      "x86_64",
		Code:      g.e.code,
		AllocSize: len(g.e.code) + insnSafety,
		Relocs:    g.e.relocs,
		Labels:    g.e.labels,
		Frame:     g.f.slots(),
		FrameSize: g.f.StackSize,
	}, nil
}

func (g *gen) sym(name string) uint64 {
	v, err := g.addrs.Symbol(name)
	if err != nil && g.e.err == nil {
		g.e.err = err
	}
	return v
}

func (g *gen) prog(name string) arch.ProgAddrs {
	v, err := g.addrs.Prog(name)
	if err != nil && g.e.err == nil {
		g.e.err = err
	}
	return v
}

// saveArgs is save_args: register arguments (unless forCallOrigin) and
// stack-passed ones to [rbp - stackSize ...].
func (g *gen) saveArgs(stackSize int, forCallOrigin bool) {
	m := g.p.Func
	nrRegs, nrStack, firstOff := 0, 0, 0
	for i := 0; i < min(m.NrArgs, trampoline.MaxFuncArgs); i++ {
		words := (m.ArgSize[i] + 7) / 8
		if nrRegs+words > 6 {
			for j := 0; j < words; j++ {
				// Stack arguments start at rbp+16 (jmp mode: no return
				// address pushed by the traced function) or rbp+24.
				src := nrStack*8 + 16
				if !g.p.JmpMode {
					src += 8
				}
				g.e.ldx(rax, src)
				g.e.stx(rax, -stackSize)
				if nrStack == 0 {
					firstOff = stackSize
				}
				stackSize -= 8
				nrStack++
			}
			continue
		}
		if forCallOrigin {
			nrRegs += words
			continue
		}
		for j := 0; j < words; j++ {
			g.e.stx(argReg[nrRegs], -stackSize)
			stackSize -= 8
			nrRegs++
		}
	}
	// clean_stack_garbage: one stack slot holding an argument of at most
	// 4 bytes gets its upper half zeroed.
	if nrStack == 1 && m.ArgSize[m.NrArgs-1] <= 4 {
		off := -(firstOff - 4)
		if isImm8(off) {
			g.e.emit(0xc7, 0x45, byte(int8(off)))
		} else {
			g.e.emit(0xc7, 0x85)
			g.e.le32(uint32(int32(off)))
		}
		g.e.le32(0)
	}
}

// restoreRegs is restore_regs: reload the register arguments.
func (g *gen) restoreRegs(stackSize int) {
	m := g.p.Func
	nrRegs := 0
	for i := 0; i < min(m.NrArgs, trampoline.MaxFuncArgs); i++ {
		words := (m.ArgSize[i] + 7) / 8
		if nrRegs+words <= 6 {
			for j := 0; j < words; j++ {
				g.e.ldx(argReg[nrRegs], -stackSize)
				stackSize -= 8
				nrRegs++
			}
		} else {
			stackSize -= 8 * words
		}
		if nrRegs >= 6 {
			break
		}
	}
}

// invokeProg is invoke_bpf_prog.
func (g *gen) invokeProg(n trampoline.Node, saveRet bool) {
	e := &g.e
	pa := g.prog(n.Prog)
	if g.p.SkipNOP {
		e.label("skip:" + n.Prog + ":" + string(n.Phase))
		e.nopsN(5)
	}
	e.movImm64(rdi, uint64(n.LinkCookie), "")
	e.stx(rdi, -g.f.RunCtxOff) // run_ctx.bpf_cookie is at offset 0
	e.movImm64(rdi, pa.Prog, "prog:"+n.Prog)
	e.lea(rsi, -g.f.RunCtxOff)
	e.call(g.sym(n.Enter), n.Enter)
	e.movReg(rbx, rax)
	e.emit(0x48, 0x85, 0xc0) // test rax, rax
	je := len(e.code)
	e.nopsN(2)
	e.lea(rdi, -g.f.RegsOff)
	e.call(pa.BPFFunc, "bpf_func:"+n.Prog)
	if saveRet {
		e.stx(rax, -8)
	}
	e.code[je] = 0x74 // je rel8 over the program call
	e.code[je+1] = byte(len(e.code) - je - 2)
	e.movImm64(rdi, pa.Prog, "prog:"+n.Prog)
	e.movReg(rsi, rbx)
	if isImm8(-g.f.RunCtxOff) {
		e.emit(0x48, 0x8d, 0x55, byte(int8(-g.f.RunCtxOff)))
	} else {
		e.emit(0x48, 0x8d, 0x95)
		e.le32(uint32(int32(-g.f.RunCtxOff)))
	}
	e.call(g.sym(n.Exit), n.Exit)
}

// invokeList is invoke_bpf: func_meta with the cookie index before each
// cookie-using program, then the program.
func (g *gen) invokeList(nodes []trampoline.Node, saveRet bool) {
	for _, n := range nodes {
		if n.StoreFuncMeta {
			g.e.storeImm64(rax, -g.f.FuncMetaOff, uint64(n.FuncMeta), "")
		}
		g.e.label(string(n.Phase) + ":" + n.Prog)
		g.invokeProg(n, saveRet)
	}
}

func (g *gen) emitAll() error {
	e, p, f := &g.e, g.p, g.f
	callOrig := p.Flags&trampoline.FlagCallOrig != 0
	// A direct-call fentry stub accounts for the __fentry__ call
	// (x86_call_depth_emit_accounting(&prog, NULL, image)).
	e.callDepthAccounting()
	e.label("prologue")
	e.emit(0x55)             // push rbp
	e.emit(0x48, 0x89, 0xe5) // mov rbp, rsp
	if isImm8(f.StackSize) {
		e.emit(0x48, 0x83, 0xec, byte(f.StackSize))
	} else {
		e.emit(0x48, 0x81, 0xec)
		e.le32(uint32(f.StackSize))
	}
	if p.Flags&trampoline.FlagTailCallCtx != 0 {
		e.emit(0x50) // push rax
	}
	e.stx(rbx, -f.RbxOff)
	e.storeImm64(rax, -f.FuncMetaOff, uint64(p.EntryFuncMeta), "")
	if p.Flags&trampoline.FlagIPArg != 0 {
		e.storeImm64(rax, -f.IPOff, g.addrs.Func, "func")
	}
	g.saveArgs(f.RegsOff, false)
	im := g.addrs.Im
	if callOrig {
		e.movImm64(rdi, im, "im")
		e.call(g.sym(trampoline.HelperTrampEnter), trampoline.HelperTrampEnter)
	}
	if p.FsessionCount > 0 {
		for j := 0; j < f.CookieCount; j++ {
			e.storeImm64(rax, -f.CookieOff+8*j, 0, "")
		}
		e.storeImm64(rax, -8, 0, "")
	}
	g.invokeList(p.Fentry, p.Flags&trampoline.FlagRetFentryRet != 0)
	var branches []int
	if len(p.ModReturn) > 0 {
		e.movImm32(false, rax, 0)
		e.stx(rax, -8)
		for _, n := range p.ModReturn {
			e.label("modret:" + n.Prog)
			g.invokeProg(n, true)
			e.emit(0x48, 0x83, 0x7d, 0xf8, 0x00) // cmp qword [rbp-8], 0
			branches = append(branches, len(e.code))
			e.nopsN(6)
		}
	}
	if callOrig {
		g.restoreRegs(f.RegsOff)
		g.saveArgs(f.ArgStackOff, true)
		if p.Flags&trampoline.FlagTailCallCtx != 0 {
			g.loadTailCallCntPtr()
		}
		e.label("call_orig")
		if p.Flags&trampoline.FlagOrigStack != 0 {
			e.ldx(rbx, 8)
			e.emit(0xff, 0xd3) // call rbx
		} else {
			skip := uint64(5)
			sym := "func+5"
			if g.feat.EndbrAtFunc {
				skip, sym = 9, "func+9"
			}
			e.call(g.addrs.Func+skip, sym)
		}
		e.stx(rax, -8)
		if p.IPAfterCallNOP {
			e.label("ip_after_call")
			e.nopsN(5)
		}
	}
	if len(p.ModReturn) > 0 {
		// emit_align(16) aligns the write pointer of the kvmalloc'd
		// buffer, which SLUB aligns: relative to the image start.
		if r := len(e.code) % 16; r != 0 {
			e.nopsN(16 - r)
		}
		e.label("do_fexit")
		target := len(e.code)
		for _, b := range branches {
			e.code[b], e.code[b+1] = 0x0f, 0x85 // jne do_fexit
			rel := uint32(int32(target - (b + 6)))
			e.code[b+2], e.code[b+3], e.code[b+4], e.code[b+5] = byte(rel), byte(rel>>8), byte(rel>>16), byte(rel>>24)
		}
	}
	if p.FsessionCount > 0 {
		e.storeImm64(rax, -f.FuncMetaOff, uint64(p.ExitFuncMeta), "")
	}
	g.invokeList(p.Fexit, false)
	if p.Flags&trampoline.FlagRestoreRegs != 0 {
		g.restoreRegs(f.RegsOff)
	}
	if callOrig {
		e.label("epilogue")
		e.movImm64(rdi, im, "im")
		e.call(g.sym(trampoline.HelperTrampExit), trampoline.HelperTrampExit)
	} else if p.Flags&trampoline.FlagTailCallCtx != 0 {
		g.loadTailCallCntPtr()
	}
	if f.SaveRet {
		e.ldx(rax, -8)
	}
	e.ldx(rbx, -f.RbxOff)
	e.emit(0xc9) // leave
	if p.Flags&trampoline.FlagSkipFrame != 0 {
		e.emit(0x48, 0x83, 0xc4, 0x08) // add rsp, 8
	}
	e.label("return")
	if g.feat.Rethunk {
		// emit_return: jmp x86_return_thunk, i.e. to the thunk the
		// pointer holds.
		name := g.feat.ReturnThunk
		if name == "" {
			name = ThunkGeneric
		}
		e.emit(0xe9)
		thunk := g.sym(name)
		e.reloc(len(e.code), 4, arch.RelJump32, name, thunk)
		e.le32(e.rel32(thunk, len(e.code)+4))
	} else {
		e.emit(0xc3)
		if g.feat.SLS {
			e.emit(0xcc)
		}
	}
	return nil
}

// loadTailCallCntPtr is LOAD_TRAMP_TAIL_CALL_CNT_PTR: mov rax, [rbp -
// round_up(stack, 8) - 8], always with a 32-bit displacement.
func (g *gen) loadTailCallCntPtr() {
	g.e.emit(0x48, 0x8b, 0x85)
	g.e.le32(uint32(int32(-g.f.TailCallCntPtrOff)))
}
