package arm64

import (
	"encoding/binary"
	"fmt"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// gen carries one pass.
type gen struct {
	e     emitter
	p     *trampoline.Plan
	f     Frame
	feat  Features
	addrs *arch.Addrs // nil in the size pass
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
	if err := arch.CheckPlan(p, "arm64"); err != nil {
		return err
	}
	m := p.Func
	if n := calcArgAux(m); n.regsForArgs+n.bstackForArgs/8 != p.ArgSlots {
		return fmt.Errorf("plan says %d argument slots, the function model gives %d", p.ArgSlots, n.regsForArgs+n.bstackForArgs/8)
	}
	return nil
}

func run(p *trampoline.Plan, feat Features, addrs *arch.Addrs) (*gen, error) {
	if err := validate(p); err != nil {
		return nil, err
	}
	g := &gen{p: p, f: layout(p), feat: feat, addrs: addrs}
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

// invokeModRet is invoke_bpf_mod_ret: the retval slot cleared, then each
// fmod_ret program with its return value kept there, loaded into x10 and
// followed by a NOP that becomes "cbnz x10, do_fexit" once the call of the
// original is emitted. It returns the NOPs' indices.
func (g *gen) invokeModRet(nodes []trampoline.Node) []int {
	e := &g.e
	e.str(xzr, sp, g.f.RetvalOff)
	branches := make([]int, 0, len(nodes))
	for _, n := range nodes {
		e.label(string(n.Phase), ":", n.Prog)
		g.invokeProg(n, true)
		e.ldr(x10, sp, g.f.RetvalOff)
		branches = append(branches, e.idx())
		e.emit(insnNOP)
	}
	return branches
}

// patchBranches turns invoke_bpf_mod_ret's NOPs into cbnz x10 to the
// current instruction (the "update the branches saved in
// invoke_bpf_mod_ret with cbnz" loop; the size pass has no words to patch
// in the kernel either, only their count matters).
func (g *gen) patchBranches(branches []int) {
	e := &g.e
	e.label("do_fexit")
	if e.sizePass {
		return
	}
	for _, b := range branches {
		e.words[b] = cbnz(x10, e.idx()-b)
	}
}

// callOrig is the BPF_TRAMP_F_CALL_ORIG block after the fentry and fmod_ret
// programs: the arguments back into registers (save_args with
// for_call_origin), the original function re-entered at func+8 with x30
// pointing just past the ret, its return value stored, and the NOP
// reserved for bpf_tramp_image_put (im->ip_after_call).
func (g *gen) callOrig() {
	e, f := &g.e, g.f
	g.saveArgs(true)
	e.label("call_orig")
	e.ldr(x10, sp, f.RetaddrOff)
	e.emit(adr(lr, 8))
	e.emit(ret(x10))
	e.str(x0, sp, f.RetvalOff)
	if g.p.IPAfterCallNOP {
		e.label("ip_after_call")
		e.emit(insnNOP)
	}
}

// restoreArgs is restore_args: the register arguments back from the ctx
// slots (BPF_TRAMP_F_RESTORE_REGS).
func (g *gen) restoreArgs() {
	for reg := 0; reg < g.f.aux.regsForArgs; reg++ {
		g.e.ldr(reg, sp, g.f.BargsOff+8*reg)
	}
}

// emitAll is prepare_trampoline for a tracing (not struct_ops)
// trampoline, step by step.
func (g *gen) emitAll() {
	e, p, f := &g.e, g.p, g.f
	callOrig := p.Flags&trampoline.FlagCallOrig != 0
	// emit_bti(A64_BTI_JC): the trampoline is entered by bl, blr or br.
	if g.feat.BTI {
		e.emit(insnBTIJC)
	}
	// The two frames, the parent's (x29, x9) and the traced function's
	// (x29, x30), then the stack.
	e.label("prologue")
	e.emit(stpPre(fp, x9, sp))
	e.emit(movSP(fp, sp))
	e.emit(stpPre(fp, lr, sp))
	e.emit(movSP(fp, sp))
	e.emitE(addSubImm(true, sp, sp, f.StackSize))
	// BPF_TRAMP_F_IP_ARG: the traced function's address to ip_off.
	if f.IPArg {
		var ip uint64
		if g.addrs != nil {
			ip = g.addrs.Func
		}
		e.addrMov(x10, ip, "func")
		e.str(x10, sp, f.IPOff)
	}
	// The argument count (6.18: emit(A64_MOVZ(1, x10, nfuncargs, 0)) and a
	// store), or store_func_meta with the entry value.
	if p.ArgCountOnly {
		e.emit(movewide(true, movZ, x10, uint16(f.NFuncArgs), 0))
		e.str(x10, sp, f.FuncMetaOff)
	} else {
		g.storeFuncMeta(uint64(p.EntryFuncMeta))
	}
	// save_args for the programs, then the callee-saved x19 and x20.
	g.saveArgs(false)
	e.str(x19, sp, f.RegsOff)
	e.str(x20, sp, f.RegsOff+8)
	// BPF_TRAMP_F_CALL_ORIG: __bpf_tramp_enter(im).
	if callOrig {
		g.loadIm()
		e.call(g.sym(trampoline.HelperTrampEnter), trampoline.HelperTrampEnter)
	}
	// fsession: the cookie slots and the retval slot zeroed.
	if p.FsessionCount > 0 {
		e.emit(movewide(true, movZ, x10, 0, 0))
		for j := 0; j < f.CookieCount; j++ {
			e.str(x10, sp, f.CookieOff+8*j)
		}
		e.str(x10, sp, f.RetvalOff)
	}
	// The fentry loop, then invoke_bpf_mod_ret.
	g.invokeList(p.Fentry, p.Flags&trampoline.FlagRetFentryRet != 0)
	var branches []int
	if len(p.ModReturn) > 0 {
		branches = g.invokeModRet(p.ModReturn)
	}
	if callOrig {
		g.callOrig()
	}
	if len(branches) > 0 {
		g.patchBranches(branches)
	}
	// fsession: store_func_meta with the exit value; the fexit loop.
	if p.FsessionCount > 0 {
		g.storeFuncMeta(uint64(p.ExitFuncMeta))
	}
	g.invokeList(p.Fexit, false)
	// BPF_TRAMP_F_CALL_ORIG: im->ip_epilogue, __bpf_tramp_exit(im).
	if callOrig {
		e.label("epilogue")
		g.loadIm()
		e.call(g.sym(trampoline.HelperTrampExit), trampoline.HelperTrampExit)
	}
	if p.Flags&trampoline.FlagRestoreRegs != 0 {
		g.restoreArgs()
	}
	// x19 and x20 restored, the return value reloaded (save_ret), sp reset
	// and both frames popped.
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
		// BPF_TRAMP_F_SKIP_FRAME: the traced function is skipped, back to
		// its parent.
		g.mov(lr, x9)
		e.emit(ret(x9))
	} else {
		// Back into the traced function at func+8 (PatchSiteEnd), with
		// x30 the parent's return address again.
		g.mov(x10, lr)
		g.mov(lr, x9)
		e.emit(ret(x10))
	}
}

// mov is A64_MOV for general registers: orr xd, xzr, xm; before 7.0 the
// macro was an add of #0.
func (g *gen) mov(rd, rm int) {
	if g.p.A64MovIsAdd {
		g.e.emitE(addSubImm(false, rd, rm, 0))
		return
	}
	g.e.emit(movReg(rd, rm))
}
