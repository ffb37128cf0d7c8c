// Package arm64 generates arm64 BPF trampolines word for word as the
// kernel's prepare_trampoline (arch/arm64/net/bpf_jit_comp.c) does, from
// the link model's Plan and concrete addresses, and checks and explains
// the images it (or a kernel) produced.
//
// The traced function enters the trampoline with "mov x9, x30; bl tramp":
// x9 holds the parent's return address and x30 func+8. The original
// function is re-entered at func+8 by "ldr x10, [sp, #retaddr]; adr x30,
// #8; ret x10", so no symbol is called for it.
package arm64

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// Features are the build facts that change arm64 trampoline bytes
// besides the plan and the addresses.
type Features struct {
	// BTI: CONFIG_ARM64_BTI_KERNEL; the trampoline starts with "bti jc"
	// (emit_bti checks only the config, never the CPU).
	BTI bool
}

// Debian is what Debian's GCC-built arm64 kernels have: in 7.2 the
// ARM64_BTI_KERNEL option depends on !CC_IS_GCC, so no "bti jc" (seen on
// live 7.2.13 and 7.3.4 images).
var Debian = Features{}

// sz128M is SZ_128M, the reach of a bl.
const sz128M = 128 << 20

// runCtxSize is round_up(sizeof(struct bpf_tramp_run_ctx), 8): the empty
// struct bpf_run_ctx, the u64 bpf_cookie (at offset 0) and the saved
// run_ctx pointer.
const runCtxSize = 16

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

// argAux is struct arg_aux as calc_arg_aux fills it.
type argAux struct {
	argsInRegs    int // arguments passed in x0..x7
	regsForArgs   int // registers they use
	bstackForArgs int // bytes of stack arguments copied for the programs
	ostackForArgs int // bytes of stack arguments for the original call
}

// calcArgAux is calc_arg_aux: arguments take registers left to right while
// they fit in x0..x7; from the first one that does not, all are on the
// stack.
func calcArgAux(m trampoline.FuncModel) argAux {
	var a argAux
	i, nregs := 0, 0
	for ; i < m.NrArgs; i++ {
		slots := (m.ArgSize[i] + 7) / 8
		if nregs+slots > 8 {
			break
		}
		nregs += slots
	}
	a.argsInRegs, a.regsForArgs = i, nregs
	for ; i < m.NrArgs; i++ {
		n := (m.ArgSize[i] + 7) / 8 * 8
		a.bstackForArgs += n
		a.ostackForArgs += n
	}
	return a
}

// Frame is the arm64 trampoline's stack layout: offsets above the final
// sp (the stack_size arithmetic at the top of prepare_trampoline).
type Frame struct {
	OargsOff    int // outgoing stack arguments for the original call
	Ostack      int // their size (CALL_ORIG only)
	RunCtxOff   int
	CookieOff   int
	CookieCount int
	IPArg       bool
	IPOff       int
	FuncMetaOff int
	BargsOff    int // ctx
	NFuncArgs   int
	SaveRet     bool
	RetvalOff   int
	RegsOff     int // x19, x20
	StackSize   int // sub sp, sp, #StackSize (a multiple of 16)
	RetaddrOff  int // the traced function's x30 (func+8)
	aux         argAux
}

// layout computes the frame as prepare_trampoline does.
func layout(p *trampoline.Plan) Frame {
	var f Frame
	f.aux = calcArgAux(p.Func)
	s := 0
	f.OargsOff = s
	if p.Flags&trampoline.FlagCallOrig != 0 {
		f.Ostack = f.aux.ostackForArgs
		s += f.Ostack
	}
	f.RunCtxOff = s
	s += runCtxSize
	f.CookieOff = s
	f.CookieCount = p.CookieCount
	s += 8 * p.CookieCount
	f.IPOff = s
	if p.Flags&trampoline.FlagIPArg != 0 {
		f.IPArg = true
		s += 8
	}
	f.FuncMetaOff = s
	s += 8
	f.BargsOff = s
	f.NFuncArgs = f.aux.regsForArgs + f.aux.bstackForArgs/8
	s += 8 * f.NFuncArgs
	f.RetvalOff = s
	f.SaveRet = p.Flags&(trampoline.FlagCallOrig|trampoline.FlagRetFentryRet) != 0
	if f.SaveRet {
		s += 8
	}
	f.RegsOff = s
	s += 16
	f.StackSize = (s + 15) &^ 15
	f.RetaddrOff = f.StackSize + 8
	return f
}

// slots names the frame's areas, the two pushed frames above it included.
func (f Frame) slots() []arch.Slot {
	out := make([]arch.Slot, 0, 8+f.CookieCount+16)
	add := func(name string, off, size int) {
		if size > 0 {
			out = append(out, arch.Slot{Name: name, Off: off, Size: size})
		}
	}
	add("stack_args", f.OargsOff, f.Ostack)
	add("run_ctx", f.RunCtxOff, runCtxSize)
	for j := 0; j < f.CookieCount; j++ {
		add(arch.SlotName("cookie", j), f.CookieOff+8*j, 8)
	}
	if f.IPArg {
		add("ip", f.IPOff, 8)
	}
	add("func_meta", f.FuncMetaOff, 8)
	for i := 0; i < f.NFuncArgs; i++ {
		add(arch.SlotName("arg", i), f.BargsOff+8*i, 8)
	}
	if f.SaveRet {
		add("retval", f.RetvalOff, 8)
	}
	add("x19", f.RegsOff, 8)
	add("x20", f.RegsOff+8, 8)
	add("fp", f.StackSize, 8)
	add("retaddr", f.RetaddrOff, 8)
	add("parent_fp", f.StackSize+16, 8)
	add("parent_ip", f.StackSize+24, 8)
	return out
}

// gen carries one pass.
type gen struct {
	e      emitter
	p      *trampoline.Plan
	f      Frame
	feat   Features
	addrs  *arch.Addrs // nil in the size pass
	legacy bool        // the arg count is stored with "movz x10" (no func_meta)
}

func (g *gen) sym(name string) uint64 {
	if g.addrs == nil {
		return 0
	}
	v, err := g.addrs.Symbol(name)
	g.e.fail(err)
	return v
}

func (g *gen) prog(name string) arch.ProgAddrs {
	if g.addrs == nil {
		return arch.ProgAddrs{}
	}
	v, err := g.addrs.Prog(name)
	g.e.fail(err)
	return v
}

// validate refuses plans the arm64 JIT cannot have been given.
func validate(p *trampoline.Plan) error {
	if p.Arch != "arm64" {
		return fmt.Errorf("arm64 generator given a plan for %s", p.Arch)
	}
	m := p.Func
	if m.NrArgs != len(m.ArgSize) {
		return fmt.Errorf("function model has %d arguments but %d sizes", m.NrArgs, len(m.ArgSize))
	}
	if m.NrArgs > trampoline.MaxFuncArgs {
		return fmt.Errorf("%d arguments, the verifier allows at most %d", m.NrArgs, trampoline.MaxFuncArgs)
	}
	for i, s := range m.ArgSize {
		if s <= 0 || s > 16 {
			return fmt.Errorf("argument %d is %d bytes; the verifier allows 1 to 16", i, s)
		}
	}
	if p.Flags&trampoline.FlagIndirect != 0 {
		return fmt.Errorf("BPF_TRAMP_F_INDIRECT (struct_ops trampolines) is not modelled")
	}
	if p.Flags&trampoline.FlagCallOrig == 0 && (len(p.ModReturn) > 0 || len(p.Fexit) > 0) {
		return fmt.Errorf("fexit or fmod_ret programs without BPF_TRAMP_F_CALL_ORIG")
	}
	if n := calcArgAux(m); n.regsForArgs+n.bstackForArgs/8 != p.ArgSlots {
		return fmt.Errorf("plan says %d argument slots, the function model gives %d", p.ArgSlots, n.regsForArgs+n.bstackForArgs/8)
	}
	return nil
}

// legacyArgCount says whether the profile predates func_meta: the
// argument count is stored with the 64-bit "movz x10, #n", and register
// moves are "add xd, xn, #0" (6.18; live: every mov in the 6.18.15 images
// is an add).
func legacyArgCount(p *trampoline.Plan) bool {
	prof, err := trampoline.LookupProfile(p.Profile)
	return err == nil && !prof.FuncMeta
}

func run(p *trampoline.Plan, feat Features, addrs *arch.Addrs) (*gen, error) {
	if err := validate(p); err != nil {
		return nil, err
	}
	g := &gen{p: p, f: layout(p), feat: feat, addrs: addrs, legacy: legacyArgCount(p)}
	n := len(p.Fentry) + len(p.Fexit) + len(p.ModReturn)
	g.e.words, g.e.relocs = make([]uint32, 0, 48+n*24), make([]arch.Reloc, 0, 6+n*6)
	if addrs != nil {
		g.e.labels = make([]arch.Label, 0, 8+n*2)
	}
	if addrs == nil {
		g.e.sizePass = true
	} else {
		g.e.base = addrs.Image
	}
	g.emitAll()
	if g.e.err != nil {
		return nil, g.e.err
	}
	return g, nil
}

// Size is arch_bpf_trampoline_size: the length in bytes of the pass with
// image and ro_image NULL, in which every call takes the indirect form (4
// instructions) and each load of im is counted as 4 instructions. It is
// what the kernel allocates and reports as the ksym size; the tail after
// the real code is filled with brk #0x100.
func Size(p *trampoline.Plan) (int, error) {
	return SizeWith(p, Debian)
}

// SizeWith is Size for a build with the given features.
func SizeWith(p *trampoline.Plan, feat Features) (int, error) {
	g, err := run(p, feat, nil)
	if err != nil {
		return 0, err
	}
	return 4 * len(g.e.words), nil
}

// Generate renders the plan's trampoline with the given addresses, as the
// real pass of arch_prepare_bpf_trampoline writes it at addrs.Image.
// AllocSize is the size pass's length.
func Generate(p *trampoline.Plan, feat Features, addrs arch.Addrs) (*arch.Image, error) {
	g, err := run(p, feat, &addrs)
	if err != nil {
		return nil, err
	}
	size := 4 * (len(g.e.words) + g.e.shortBy)
	code := make([]byte, 4*len(g.e.words))
	for i, w := range g.e.words {
		binary.LittleEndian.PutUint32(code[4*i:], w)
	}
	if len(code) > size {
		return nil, fmt.Errorf("real pass (%d bytes) is longer than the size pass (%d bytes)", len(code), size)
	}
	return &arch.Image{
		Arch:      "arm64",
		Code:      code,
		AllocSize: size,
		Relocs:    g.e.relocs,
		Labels:    g.e.labels,
		Frame:     g.f.slots(),
		FrameSize: g.f.StackSize,
	}, nil
}

// Fill returns the whole allocation as the kernel leaves it: the code,
// then brk #0x100 words up to AllocSize (jit_fill_hole).
func Fill(im *arch.Image) []byte {
	out := append([]byte(nil), im.Code...)
	for len(out)+4 <= im.AllocSize {
		out = binary.LittleEndian.AppendUint32(out, insnBrk100)
	}
	return out
}

// loadIm is the load of im into x0 before __bpf_tramp_enter/exit:
// emit_a64_mov_i64 in the real pass, 4 uncounted words in the size pass
// ("assume the worst case").
func (g *gen) loadIm() {
	e := &g.e
	if e.sizePass {
		for range 4 {
			e.emit(insnNOP)
		}
		return
	}
	start := e.idx()
	e.movI64(x0, g.addrs.Im)
	e.reloc(start, arch.A64MovWide, "im", g.addrs.Im)
	e.shortBy += 4 - (e.idx() - start)
}

// storeFuncMeta is store_func_meta: x10 <- value; str x10 to func_meta.
func (g *gen) storeFuncMeta(v uint64) {
	g.e.movI64(x10, v)
	g.e.str(x10, sp, g.f.FuncMetaOff)
}

// saveArgs is save_args: the register arguments to (or, forCallOrigin,
// back from) the ctx slots, then each stack argument from the caller's
// frame (x29 + 32 + 8k) to ctx or to the outgoing area; for the programs
// the last word of each stack argument is cleared above its size
// (clear_garbage, little-endian: lsl then lsr).
func (g *gen) saveArgs(forCallOrigin bool) {
	e, f, m := &g.e, g.f, g.p.Func
	off := f.BargsOff
	for reg := 0; reg < f.aux.regsForArgs; reg++ {
		if forCallOrigin {
			e.ldr(reg, sp, off)
		} else {
			e.str(reg, sp, off)
		}
		off += 8
	}
	soff := 32
	doff := off
	if forCallOrigin {
		doff = f.OargsOff
	}
	for i := f.aux.argsInRegs; i < m.NrArgs; i++ {
		for slots := (m.ArgSize[i] + 7) / 8; slots > 0; slots-- {
			e.ldr(x10, fp, soff)
			if slots == 1 && !forCallOrigin {
				if b := m.ArgSize[i] % 8; b != 0 {
					e.emit(lsl(x10, x10, 64-8*b))
					e.emit(lsr(x10, x10, 64-8*b))
				}
			}
			e.str(x10, sp, doff)
			soff += 8
			doff += 8
		}
	}
}

// invokeProg is invoke_bpf_prog: [skip NOP,] the link cookie to run_ctx,
// x19 <- prog, enter helper, skip the program when it returns 0 (cbz),
// the program on ctx, [its return value to the retval slot,] exit helper.
func (g *gen) invokeProg(n trampoline.Node, saveRet bool) {
	e, f := &g.e, g.f
	pa := g.prog(n.Prog)
	if g.p.SkipNOP {
		e.label("skip:", n.Prog, ":", string(n.Phase))
		e.emit(insnNOP)
	}
	if n.LinkCookie == 0 {
		e.str(xzr, sp, f.RunCtxOff)
	} else {
		e.movI64(x10, uint64(n.LinkCookie))
		e.str(x10, sp, f.RunCtxOff)
	}
	e.addrMov(x19, pa.Prog, "prog:"+n.Prog)
	g.mov(x0, x19)
	e.addSP(x1, f.RunCtxOff)
	e.call(g.sym(n.Enter), n.Enter)
	g.mov(x20, x0)
	branch := e.idx()
	e.emit(insnNOP)
	e.addSP(x0, f.BargsOff)
	e.call(pa.BPFFunc, "bpf_func:"+n.Prog)
	if saveRet {
		e.str(x0, sp, f.RetvalOff)
	}
	if !e.sizePass {
		e.words[branch] = cbz(x0, e.idx()-branch)
	}
	g.mov(x0, x19)
	g.mov(x1, x20)
	e.addSP(x2, f.RunCtxOff)
	e.call(g.sym(n.Exit), n.Exit)
}

// invokeList runs one list: func_meta with the cookie index before each
// cookie-using program, then the program (the FENTRY and FEXIT loops of
// prepare_trampoline).
func (g *gen) invokeList(nodes []trampoline.Node, saveRet bool) {
	for _, n := range nodes {
		if n.StoreFuncMeta {
			g.storeFuncMeta(uint64(n.FuncMeta))
		}
		g.e.label(string(n.Phase), ":", n.Prog)
		g.invokeProg(n, saveRet)
	}
}

// emitAll is prepare_trampoline for a tracing (not struct_ops) trampoline.
func (g *gen) emitAll() {
	e, p, f := &g.e, g.p, g.f
	callOrig := p.Flags&trampoline.FlagCallOrig != 0
	if g.feat.BTI {
		e.emit(insnBTIJC)
	}
	e.label("prologue")
	e.emit(stpPre(fp, x9, sp)) // parent frame: x29, x9
	e.emit(movSP(fp, sp))
	e.emit(stpPre(fp, lr, sp)) // traced function's frame: x29, x30
	e.emit(movSP(fp, sp))
	e.emitE(addSubImm(true, sp, sp, f.StackSize))
	if f.IPArg {
		var ip uint64
		if g.addrs != nil {
			ip = g.addrs.Func
		}
		e.addrMov(x10, ip, "func")
		e.str(x10, sp, f.IPOff)
	}
	if g.legacy {
		// 6.18: emit(A64_MOVZ(1, x10, nfuncargs, 0)).
		e.emit(movewide(true, movZ, x10, uint16(f.NFuncArgs), 0))
		e.str(x10, sp, f.FuncMetaOff)
	} else {
		g.storeFuncMeta(uint64(p.EntryFuncMeta))
	}
	g.saveArgs(false)
	e.str(x19, sp, f.RegsOff)
	e.str(x20, sp, f.RegsOff+8)
	if callOrig {
		g.loadIm()
		e.call(g.sym(trampoline.HelperTrampEnter), trampoline.HelperTrampEnter)
	}
	if p.FsessionCount > 0 {
		e.emit(movewide(true, movZ, x10, 0, 0))
		for j := 0; j < f.CookieCount; j++ {
			e.str(x10, sp, f.CookieOff+8*j)
		}
		e.str(x10, sp, f.RetvalOff)
	}
	g.invokeList(p.Fentry, p.Flags&trampoline.FlagRetFentryRet != 0)
	var branches []int
	if len(p.ModReturn) > 0 {
		// invoke_bpf_mod_ret
		e.str(xzr, sp, f.RetvalOff)
		for _, n := range p.ModReturn {
			e.label(string(n.Phase), ":", n.Prog)
			g.invokeProg(n, true)
			e.ldr(x10, sp, f.RetvalOff)
			branches = append(branches, e.idx())
			e.emit(insnNOP)
		}
	}
	if callOrig {
		g.saveArgs(true)
		e.label("call_orig")
		e.ldr(x10, sp, f.RetaddrOff)
		e.emit(adr(lr, 8))
		e.emit(ret(x10))
		e.str(x0, sp, f.RetvalOff)
		if p.IPAfterCallNOP {
			e.label("ip_after_call")
			e.emit(insnNOP)
		}
	}
	if len(branches) > 0 {
		e.label("do_fexit")
		if !e.sizePass {
			for _, b := range branches {
				e.words[b] = cbnz(x10, e.idx()-b)
			}
		}
	}
	if p.FsessionCount > 0 {
		g.storeFuncMeta(uint64(p.ExitFuncMeta))
	}
	g.invokeList(p.Fexit, false)
	if callOrig {
		e.label("epilogue")
		g.loadIm()
		e.call(g.sym(trampoline.HelperTrampExit), trampoline.HelperTrampExit)
	}
	if p.Flags&trampoline.FlagRestoreRegs != 0 {
		// restore_args
		for reg := 0; reg < f.aux.regsForArgs; reg++ {
			e.ldr(reg, sp, f.BargsOff+8*reg)
		}
	}
	e.ldr(x19, sp, f.RegsOff)
	e.ldr(x20, sp, f.RegsOff+8)
	if f.SaveRet {
		e.ldr(x0, sp, f.RetvalOff)
	}
	e.emit(movSP(sp, fp))
	e.emit(ldpPost(fp, lr, sp))
	e.emit(ldpPost(fp, x9, sp))
	e.label("return")
	if p.Flags&trampoline.FlagSkipFrame != 0 {
		// Skip the traced function: back to its parent.
		g.mov(lr, x9)
		e.emit(ret(x9))
	} else {
		// Back into the traced function at func+8.
		g.mov(x10, lr)
		g.mov(lr, x9)
		e.emit(ret(x10))
	}
}

// mov is A64_MOV for general registers: orr xd, xzr, xm; before 7.0 the
// macro was an add of #0.
func (g *gen) mov(rd, rm int) {
	if g.legacy {
		g.e.emitE(addSubImm(false, rd, rm, 0))
		return
	}
	g.e.emit(movReg(rd, rm))
}
