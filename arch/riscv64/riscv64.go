package riscv64

import (
	"fmt"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// maxCountImm is RV_MAX_COUNT_IMM: the size pass loads it in place of im,
// the value for which emit_imm emits the most instructions.
const maxCountImm = 0x7FFF7FF7FF7FF7FF

// gen carries one pass. Both passes have addresses: the size pass loads
// the real prog pointers and function address too.
type gen struct {
	e     emitter
	p     *trampoline.Plan
	f     Frame
	addrs *arch.Addrs
}

func (g *gen) sym(name string) uint64 {
	v, err := g.addrs.Symbol(name)
	g.e.fail(err)
	return v
}

func (g *gen) prog(name string) arch.ProgAddrs {
	v, err := g.addrs.Prog(name)
	g.e.fail(err)
	return v
}

// validate refuses plans the riscv64 JIT refuses or cannot have been
// given (the error paths at the top of __arch_prepare_bpf_trampoline).
func validate(p *trampoline.Plan) error {
	if err := arch.CheckPlan(p, "riscv64"); err != nil {
		return err
	}
	slots := 0
	for _, s := range p.Func.ArgSize {
		slots += (s + 7) / 8
	}
	if p.Flags&(trampoline.FlagOrigStack|trampoline.FlagShareIPModify) != 0 {
		return fmt.Errorf("flags %s: the riscv64 JIT refuses BPF_TRAMP_F_ORIG_STACK and BPF_TRAMP_F_SHARE_IPMODIFY with -ENOTSUPP", p.Flags)
	}
	if slots != p.ArgSlots {
		return fmt.Errorf("plan says %d argument slots, the function model gives %d", p.ArgSlots, slots)
	}
	return nil
}

func run(p *trampoline.Plan, feat Features, addrs *arch.Addrs, sizePass bool) (*gen, error) {
	if err := validate(p); err != nil {
		return nil, err
	}
	g := &gen{p: p, f: layout(p), addrs: addrs}
	n := len(p.Fentry) + len(p.Fexit) + len(p.ModReturn)
	g.e.rvc, g.e.sizePass = feat.RVC, sizePass
	g.e.code = make([]byte, 0, 128+n*96)
	if !sizePass {
		g.e.base = addrs.Image
		g.e.relocs = make([]arch.Reloc, 0, 4+n*6)
		g.e.labels = make([]arch.Label, 0, 8+n*2)
	}
	g.emitAll()
	if g.e.err != nil {
		return nil, g.e.err
	}
	return g, nil
}

// Size is arch_bpf_trampoline_size for a Debian boot with placeholder
// addresses (SizeWith with PlaceholderAddrs).
func Size(p *trampoline.Plan) (int, error) {
	if err := validate(p); err != nil {
		return 0, err
	}
	return SizeWith(p, Debian, PlaceholderAddrs(p))
}

// SizeWith is arch_bpf_trampoline_size: the length in bytes of the pass
// with insns NULL, in which every call is an auipc+jalr pair (emit_call
// has no ro_insns, so the offset is 0 and never takes jal) and im is
// loaded as RV_MAX_COUNT_IMM. The struct bpf_prog pointers and the traced
// function's address are the real ones in that pass too, and emit_imm's
// length depends on them, so the size needs addrs (Prog and Func).
func SizeWith(p *trampoline.Plan, feat Features, addrs arch.Addrs) (int, error) {
	g, err := run(p, feat, &addrs, true)
	if err != nil {
		return 0, err
	}
	return len(g.e.code), nil
}

// Generate renders the plan's trampoline with the given addresses, as the
// real pass of arch_prepare_bpf_trampoline writes it at addrs.Image.
// AllocSize is the size pass's length with the same addresses.
func Generate(p *trampoline.Plan, feat Features, addrs arch.Addrs) (*arch.Image, error) {
	g, err := run(p, feat, &addrs, false)
	if err != nil {
		return nil, err
	}
	size, err := SizeWith(p, feat, addrs)
	if err != nil {
		return nil, err
	}
	if len(g.e.code) > size {
		return nil, fmt.Errorf("real pass (%d bytes) is longer than the size pass (%d bytes)", len(g.e.code), size)
	}
	return &arch.Image{
		Arch:      "riscv64",
		Code:      g.e.code,
		AllocSize: size,
		Relocs:    g.e.relocs,
		Labels:    g.e.labels,
		Frame:     g.f.slots(),
		FrameSize: 16 + g.f.StackSize,
	}, nil
}

// Fill returns the whole allocation as the kernel leaves it: the code,
// then zero bytes up to AllocSize (bpf_fill_ill_insns: riscv's
// all-zero parcel is an illegal instruction; free pack memory is zeroed
// the same way).
func Fill(im *arch.Image) []byte {
	out := append([]byte(nil), im.Code...)
	return append(out, make([]byte, max(im.AllocSize-len(im.Code), 0))...)
}

// loadIm is emit_imm(a0, im) before __bpf_tramp_enter/exit; the size pass
// loads RV_MAX_COUNT_IMM instead.
func (g *gen) loadIm() {
	if g.e.sizePass {
		g.e.imm(a0, maxCountImm)
		return
	}
	g.e.immReloc(a0, g.addrs.Im, "im")
}

// storeFuncMeta stores a func_meta value to its slot (emit_imm into t1,
// then sd; the entry count is emit_li when it fits, which emit_imm
// reduces to for such values).
func (g *gen) storeFuncMeta(v uint64) {
	g.e.imm(t1, int64(v))
	g.e.sd(fp, int64(-g.f.FuncMetaOff), t1)
}

// storeArgs is store_args: a0..a7 to their slots, then each further slot
// from the caller's stack (s0+16+8k) through t1.
func (g *gen) storeArgs() {
	e, off := &g.e, g.f.ArgsOff
	for i := 0; i < g.f.NrArgSlots; i++ {
		if i < maxRegArgs {
			e.sd(fp, int64(-off), a0+i)
		} else {
			e.ld(t1, int64(16+(i-maxRegArgs)*8), fp)
			e.sd(fp, int64(-off), t1)
		}
		off -= 8
	}
}

// restoreArgs is restore_args: the register slots back into a0..a7.
func (g *gen) restoreArgs() {
	off := g.f.ArgsOff
	for i := 0; i < min(g.f.NrArgSlots, maxRegArgs); i++ {
		g.e.ld(a0+i, int64(-off), fp)
		off -= 8
	}
}

// restoreStackArgs is restore_stack_args: the stack slots copied to the
// bottom of the frame, where the original function finds them.
func (g *gen) restoreStackArgs() {
	argsOff, stk := g.f.ArgsOff, g.f.StkArgOff
	for i := 0; i < g.f.StackArgs; i++ {
		g.e.ld(t1, int64(-(argsOff - maxRegArgs*8)), fp)
		g.e.sd(fp, int64(-stk), t1)
		argsOff -= 8
		stk -= 8
	}
}

// invokeProg is invoke_bpf_prog: [the skip NOP,] the link cookie to
// run_ctx, the enter helper on (prog, &run_ctx), its result kept in s1, a
// NOP that becomes "beqz a0" over the program, the program on ctx, [its
// a0 and a5 to the retval slots,] the exit helper on (prog, s1,
// &run_ctx).
func (g *gen) invokeProg(n trampoline.Node, saveRet bool) {
	e, f := &g.e, g.f
	pa := g.prog(n.Prog)
	if g.p.SkipNOP {
		e.label("skip:", n.Prog, ":", string(n.Phase))
		e.emit(insnNOP)
	}
	if n.LinkCookie != 0 {
		e.imm(t1, int64(n.LinkCookie))
		e.sd(fp, int64(-f.RunCtxOff), t1)
	} else {
		e.sd(fp, int64(-f.RunCtxOff), zero)
	}
	e.immReloc(a0, pa.Prog, "prog:"+n.Prog)
	e.addi(a1, fp, int64(-f.RunCtxOff))
	e.call(g.sym(n.Enter), n.Enter)
	e.mv(s1, a0)
	branch := e.off()
	e.emit(insnNOP)
	e.addi(a0, fp, int64(-f.ArgsOff))
	e.call(pa.BPFFunc, "bpf_func:"+n.Prog)
	if saveRet {
		e.sd(fp, int64(-f.RetvalOff), a0)
		e.sd(fp, int64(-(f.RetvalOff - 8)), a5)
	}
	e.patch(branch, rvBeq(a0, zero, int64(e.off()-branch)))
	e.immReloc(a0, pa.Prog, "prog:"+n.Prog)
	e.mv(a1, s1)
	e.addi(a2, fp, int64(-f.RunCtxOff))
	e.call(g.sym(n.Exit), n.Exit)
}

// invokeList runs one list: func_meta with the cookie index before each
// cookie-using program, then the program (invoke_bpf).
func (g *gen) invokeList(nodes []trampoline.Node, saveRet bool) {
	for _, n := range nodes {
		if n.StoreFuncMeta {
			g.storeFuncMeta(uint64(n.FuncMeta))
		}
		g.e.label(string(n.Phase), ":", n.Prog)
		g.invokeProg(n, saveRet)
	}
}

// emitAll is __arch_prepare_bpf_trampoline for a tracing (not struct_ops)
// trampoline, step by step.
func (g *gen) emitAll() {
	e, p, f := &g.e, g.p, g.f
	callOrig := p.Flags&trampoline.FlagCallOrig != 0
	// The two frames: the parent's (ra, s0) and the traced function's
	// (t0, s0), then the stack.
	e.label("prologue")
	e.addi(sp, sp, -16)
	e.sd(sp, 8, ra)
	e.sd(sp, 0, fp)
	e.addi(fp, sp, 16)
	e.addi(sp, sp, int64(-f.StackSize))
	e.sd(sp, int64(f.StackSize-8), t0)
	e.sd(sp, int64(f.StackSize-16), fp)
	e.addi(fp, sp, int64(f.StackSize))
	// BPF_TRAMP_F_TAIL_CALL_CTX (7.3+): the tail call counter kept.
	if f.TCC {
		e.sd(fp, int64(-f.TCCOff), a6)
	}
	// s1 saved: it carries the enter helper's result.
	e.sd(fp, int64(-f.SregOff), s1)
	// BPF_TRAMP_F_IP_ARG: the traced function's address.
	if f.IPArg {
		e.immReloc(t1, g.addrs.Func, "func")
		e.sd(fp, int64(-f.IPOff), t1)
	}
	// The argument count (before 7.0: emit_li) or func_meta's entry value.
	if p.ArgCountOnly {
		e.li(t1, int64(f.NrArgSlots))
		e.sd(fp, int64(-f.FuncMetaOff), t1)
	} else {
		g.storeFuncMeta(uint64(p.EntryFuncMeta))
	}
	g.storeArgs()
	// fsession: the cookie slots and the return value slot zeroed.
	if p.FsessionCount > 0 {
		for j := 0; j < f.CookieCount; j++ {
			e.sd(fp, int64(-f.CookieOff+8*j), zero)
		}
		e.sd(fp, int64(-f.RetvalOff), zero)
	}
	// BPF_TRAMP_F_CALL_ORIG: __bpf_tramp_enter(im).
	if callOrig {
		g.loadIm()
		e.call(g.sym(trampoline.HelperTrampEnter), trampoline.HelperTrampEnter)
	}
	g.invokeList(p.Fentry, p.Flags&trampoline.FlagRetFentryRet != 0)
	// invoke_bpf_mod_ret: the retval slot cleared, each program's result
	// reloaded into t1 and followed by a NOP that becomes "bnez t1,
	// do_fexit".
	var branches []int
	if len(p.ModReturn) > 0 {
		e.sd(fp, int64(-f.RetvalOff), zero)
		for _, n := range p.ModReturn {
			e.label(string(n.Phase), ":", n.Prog)
			g.invokeProg(n, true)
			e.ld(t1, int64(-f.RetvalOff), fp)
			branches = append(branches, e.off())
			e.emit(insnNOP)
		}
	}
	if callOrig {
		// The arguments back, the original function called past its
		// patch site (BPF_TRAMP_F_SKIP_FRAME: func+8), its a0 and a5
		// kept; up to 7.2.9 two NOPs for im->ip_after_call.
		g.restoreArgs()
		g.restoreStackArgs()
		e.label("call_orig")
		orig, sym := g.addrs.Func, "func"
		if p.Flags&trampoline.FlagSkipFrame != 0 {
			orig += PatchSiteEnd
			sym = "func+8"
		}
		// The tail call counter handed to the original program and
		// taken back from it (7.3+).
		if f.TCC {
			e.ld(a6, int64(-f.TCCOff), fp)
		}
		e.call(orig, sym)
		if f.TCC {
			e.sd(fp, int64(-f.TCCOff), a6)
		}
		e.sd(fp, int64(-f.RetvalOff), a0)
		e.sd(fp, int64(-(f.RetvalOff - 8)), a5)
		if p.IPAfterCallNOP {
			e.label("ip_after_call")
			e.emit(insnNOP)
			e.emit(insnNOP)
		}
	}
	if len(branches) > 0 {
		e.label("do_fexit")
		for _, b := range branches {
			e.patch(b, rvBne(t1, zero, int64(e.off()-b)))
		}
	}
	// fsession: func_meta's exit value, then the fexit list.
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
	// The return value (BPF R0 first, then a0), s1, both frames popped.
	if f.SaveRet {
		e.ld(a5, int64(-(f.RetvalOff - 8)), fp)
		e.ld(a0, int64(-f.RetvalOff), fp)
	}
	e.ld(s1, int64(-f.SregOff), fp)
	if f.TCC {
		e.ld(a6, int64(-f.TCCOff), fp)
	}
	e.ld(t0, int64(f.StackSize-8), sp)
	e.ld(fp, int64(f.StackSize-16), sp)
	e.addi(sp, sp, int64(f.StackSize))
	e.ld(ra, 8, sp)
	e.ld(fp, 0, sp)
	e.addi(sp, sp, 16)
	e.label("return")
	if p.Flags&trampoline.FlagSkipFrame != 0 {
		// Back to the traced function's parent.
		e.jalr(zero, ra, 0)
	} else {
		// Back into the traced function at func+8.
		e.jalr(zero, t0, 0)
	}
}
