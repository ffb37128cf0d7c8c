package s390x

import (
	"fmt"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// maxTrampLinks is BPF_MAX_TRAMP_LINKS on s390x: the length of struct
// bpf_tramp_jit's skip[] array.
const maxTrampLinks = 27

// passLabels are the fields of struct bpf_tramp_jit that one pass leaves
// to the next: do_fexit and the skip[] labels. A branch to one of them
// is emitted before the label is reached, with the previous pass's value
// (zero in a pass that follows none).
type passLabels struct {
	doFexit int
	skip    [maxTrampLinks]int
}

// gen carries one pass of __arch_prepare_bpf_trampoline.
type gen struct {
	e    emitter
	p    *trampoline.Plan
	f    Frame
	feat Features
	// addrs is nil in a pass without a buffer, which needs no address.
	addrs *arch.Addrs
	l     *passLabels
	// nrProgs is tjit->nr_progs, reset at the start of each pass.
	nrProgs int
}

// jitErr is an error __arch_prepare_bpf_trampoline returns: errno and
// why, at attach (bpf_trampoline_update).
func jitErr(errno trampoline.Errno, format string, args ...any) error {
	return &trampoline.Error{Errno: errno, Stage: trampoline.StageAttach, Msg: fmt.Sprintf(format, args...)}
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

// argRefusal is the s390x JIT's own check of the function model, at the
// top of __arch_prepare_bpf_trampoline: at most MAX_NR_STACK_ARGS
// arguments beyond the five in registers (the stack arguments are copied
// with one mvc) and none wider than 16 bytes, else -ENOTSUPP. The
// verifier's limits (arch.CheckPlan: 12 arguments of 1 to 16 bytes) are
// stricter, so a plan that passes them never gets here.
func argRefusal(m trampoline.FuncModel) error {
	if n := m.NrArgs - min(m.NrArgs, maxNrRegArgs); n > maxNrStackArgs {
		return jitErr(trampoline.ENOTSUPP, "%d arguments: the s390x JIT copies at most %d stack arguments (MAX_NR_STACK_ARGS) beyond %d in registers",
			m.NrArgs, maxNrStackArgs, maxNrRegArgs)
	}
	for i, s := range m.ArgSize {
		if s > 16 {
			return jitErr(trampoline.ENOTSUPP, "argument %d is %d bytes: the s390x JIT passes at most 16-byte arguments to programs", i, s)
		}
	}
	return nil
}

// validate refuses plans the s390x JIT refuses or cannot have been given:
// arch.CheckPlan's, argRefusal's, a plan whose argument slots are not the
// JIT's nr_bpf_args, and kernels whose trampolines this package does not
// model (the 7.2.13 source has the skip NOPs; earlier kernels' s390x JIT
// kept im->ip_after_call and the bare argument count, which were not
// read).
func validate(p *trampoline.Plan) error {
	if err := arch.CheckPlan(p, "s390x"); err != nil {
		return err
	}
	if err := argRefusal(p.Func); err != nil {
		return err
	}
	if n := layout(p).NrBPFArgs; n != p.ArgSlots {
		return fmt.Errorf("plan says %d argument slots, the s390x JIT's nr_bpf_args is %d", p.ArgSlots, n)
	}
	if !p.SkipNOP || p.IPAfterCallNOP || p.ArgCountOnly {
		return fmt.Errorf("profile %s: the s390x generator models 7.2.13's JIT (skip NOPs, func_meta); this kernel's s390x trampolines (ip_after_call NOP or bare argument count) are not modelled", p.Profile)
	}
	if p.JmpMode {
		return fmt.Errorf("plan in jmp mode: CONFIG_DYNAMIC_FTRACE_WITH_JMP is x86_64's, s390x has no such entry")
	}
	return nil
}

// pass runs __arch_prepare_bpf_trampoline once: with a buffer (buf) at
// addrs.Image, or without one (addrs nil), with the labels l of the
// previous pass.
func pass(p *trampoline.Plan, feat Features, addrs *arch.Addrs, l *passLabels) (*gen, error) {
	g := &gen{p: p, f: layout(p), feat: feat, addrs: addrs, l: l}
	n := len(p.Fentry) + len(p.Fexit) + len(p.ModReturn)
	g.e.code = make([]byte, 0, 192+n*112)
	if addrs != nil {
		g.e.buf, g.e.base = true, addrs.Image
		g.e.relocs = make([]arch.Reloc, 0, 4+n*6)
		g.e.labels = make([]arch.Label, 0, 8+n*3)
	}
	g.emitAll()
	if g.e.err != nil {
		return nil, g.e.err
	}
	return g, nil
}

// Size is arch_bpf_trampoline_size for a Debian build (SizeWith with
// Debian).
func Size(p *trampoline.Plan) (int, error) { return SizeWith(p, Debian) }

// SizeWith is arch_bpf_trampoline_size: the length of one pass with a
// zeroed struct bpf_tramp_jit and no buffer, what the kernel allocates
// and reports as the ksym size. s390x instructions have fixed lengths and
// the pass writes nothing (ptr_to_pcrel is 0 without prg_buf), so no
// address matters and it is exactly as long as the real pass.
func SizeWith(p *trampoline.Plan, feat Features) (int, error) {
	if err := validate(p); err != nil {
		return 0, err
	}
	g, err := pass(p, feat, nil, &passLabels{})
	if err != nil {
		return 0, err
	}
	return g.e.prg(), nil
}

// Generate renders the plan's trampoline with the given addresses as
// bpf_trampoline_update has it built: arch_bpf_trampoline_size sizes the
// allocation (AllocSize), then arch_prepare_bpf_trampoline runs a pass
// without a buffer, whose labels the real pass at addrs.Image takes.
func Generate(p *trampoline.Plan, feat Features, addrs arch.Addrs) (*arch.Image, error) {
	size, err := SizeWith(p, feat)
	if err != nil {
		return nil, err
	}
	l := &passLabels{}
	first, err := pass(p, feat, nil, l)
	if err != nil {
		return nil, err
	}
	if first.e.prg() > size {
		// arch_prepare_bpf_trampoline: the code does not fit image_end.
		return nil, jitErr(trampoline.E2BIG, "trampoline of %d bytes does not fit its %d-byte allocation", first.e.prg(), size)
	}
	g, err := pass(p, feat, &addrs, l)
	if err != nil {
		return nil, err
	}
	if len(g.e.code) != size {
		return nil, fmt.Errorf("real pass (%d bytes) and size pass (%d bytes) differ in length", len(g.e.code), size)
	}
	return &arch.Image{
		Arch:      "s390x",
		Code:      g.e.code,
		AllocSize: size,
		Relocs:    g.e.relocs,
		Labels:    g.e.labels,
		Frame:     g.f.slots(),
		FrameSize: g.f.StackSize,
	}, nil
}

// storeImm64 is emit_store_stack_imm64: load_imm64 into r, then
// "stg r,off(%r15)"; sym names the value in a relocation ("" for none).
func (g *gen) storeImm64(r, off int, v uint64, sym string) {
	g.e.loadImm64(r, v, sym)
	g.e.stg(r, int64(off))
}

// loadIm is load_imm64(%r2, im) before __bpf_tramp_enter/exit. A pass
// without a buffer loads 0: the size pass loads the address of its
// on-stack struct bpf_tramp_image, which only changes the immediate.
func (g *gen) loadIm() {
	var im uint64
	if g.addrs != nil {
		im = g.addrs.Im
	}
	g.e.loadImm64(r2, im, "im")
}

// signZeroExtend is sign_zero_extend on %r2 for the return value's size
// and signedness (m->ret_size, m->ret_flags): nothing for 8 bytes, an
// extension for 1, 2 and 4, -1 for any other size, which invoke_bpf
// turns into -EINVAL.
func (g *gen) signZeroExtend() {
	m := g.p.Func
	signed := m.RetFlags&trampoline.FmodelSignedArg != 0
	switch {
	case m.RetSize == 1 && signed:
		g.e.emit(lgbr(r2, r2))
	case m.RetSize == 1:
		g.e.emit(llgcr(r2, r2))
	case m.RetSize == 2 && signed:
		g.e.emit(lghr(r2, r2))
	case m.RetSize == 2:
		g.e.emit(llghr(r2, r2))
	case m.RetSize == 4 && signed:
		g.e.emit(lgfr(r2, r2))
	case m.RetSize == 4:
		g.e.emit(llgfr(r2, r2))
	case m.RetSize == 8:
	default:
		g.e.fail(jitErr(trampoline.EINVAL, "sign_zero_extend: a %d-byte return value cannot be kept (fmod_ret on %s)", m.RetSize, g.p.Target))
	}
}

// invokeProg is invoke_bpf_prog: the skip NOP "brcl 0,skip" (patched to
// brcl 15 when the program is detached, bpf_tramp_image_add_skip), the
// link cookie to run_ctx, the enter helper on (prog, &run_ctx), its
// result in %r7 tested, a "brcl 8" over the program patched once its end
// is known, the program on ctx (its bpf_func; the programs are JITed, so
// no p->insnsi in %r3), [its result extended and kept,] the exit helper on
// (prog, %r7, &run_ctx), and the skip label.
func (g *gen) invokeProg(n trampoline.Node, saveRet bool) {
	e, f := &g.e, g.f
	pa := g.prog(n.Prog)
	idx := g.nrProgs
	g.nrProgs++
	if idx >= maxTrampLinks {
		// -E2BIG from invoke_bpf_prog, which its callers return as
		// -EINVAL.
		e.fail(jitErr(trampoline.EINVAL, "program %d (%s): more than BPF_MAX_TRAMP_LINKS (%d) program calls overflow skip[] (-E2BIG, returned as -EINVAL)",
			idx+1, n.Prog, maxTrampLinks))
		return
	}
	e.label("skip:", n.Prog, ":", string(n.Phase))
	e.brclOff(maskNever, g.l.skip[idx])
	// run_ctx.cookie = node->cookie
	g.storeImm64(r0, f.RunCtxOff+runCtxCookieOff, uint64(n.LinkCookie), "cookie:"+n.Prog)
	// start = enter(p, &run_ctx); if start == 0 goto skip
	e.loadImm64(r2, pa.Prog, "prog:"+n.Prog)
	e.la(r3, int64(f.RunCtxOff))
	e.brasl(r14, g.sym(n.Enter), n.Enter)
	e.emit(ltgr(r7, r2))
	patch := e.prg()
	e.brclOff(maskEqual, 0)
	// retval = bpf_func(args, p->insnsi)
	e.la(r2, int64(f.BPFArgsOff))
	e.brasl(r14, pa.BPFFunc, "bpf_func:"+n.Prog)
	if saveRet {
		g.signZeroExtend()
		e.stg(r2, int64(f.RetvalOff))
	}
	e.patchRIL(patch, e.prg())
	e.label("exit_helper:", n.Prog, ":", string(n.Phase))
	// exit(p, start, &run_ctx)
	e.loadImm64(r2, pa.Prog, "prog:"+n.Prog)
	e.emit(lgr(r3, r7))
	e.la(r4, int64(f.RunCtxOff))
	e.brasl(r14, g.sym(n.Exit), n.Exit)
	g.l.skip[idx] = e.prg()
	e.label("skip_target:", n.Prog, ":", string(n.Phase))
}

// invokeList is invoke_bpf: before each program that calls
// bpf_session_cookie, func_meta with its cookie's index (counting down
// from the lowest cookie slot, FirstCookieIndex), then the program.
func (g *gen) invokeList(nodes []trampoline.Node, saveRet bool, funcMeta uint64) {
	cur := g.f.FirstCookieIndex()
	for _, n := range nodes {
		if n.Cookie {
			if n.CookieIndex != cur {
				g.e.fail(fmt.Errorf("%s: the plan's cookie index is %d, the s390x frame's %d (the ip slot is always kept: Arch.IPSlotAlways)", n.Prog, n.CookieIndex, cur))
			}
			meta := funcMeta | uint64(cur)<<trampoline.CookieIndexShift
			g.storeImm64(r0, g.f.FuncMetaOff, meta, "")
			cur--
		}
		g.e.label(string(n.Phase), ":", n.Prog)
		g.invokeProg(n, saveRet)
	}
}

// jumpReg is EMIT_JUMP_REG: "br %rN", or with expolines
// "brcl 15,__s390_indirect_jump_rN".
func (g *gen) jumpReg(r int, thunk string) {
	if g.feat.Expoline {
		g.e.brclTo(maskAlways, g.sym(thunk), thunk)
		return
	}
	g.e.emit(br(r))
}

// storeArgs copies the arguments to the programs' ctx: those in %r2..%r6
// with stg (mvc from the pointer they hold for a 9- to 16-byte one),
// those on the caller's stack with mvc (through lg %r1 for a wide one).
func (g *gen) storeArgs() {
	e, f, m := &g.e, g.f, g.p.Func
	j := 0
	for i, size := range m.ArgSize {
		off := int64(f.BPFArgsOff + 8*j)
		stackOff := int64(f.OrigStackArgsOff + 8*(i-maxNrRegArgs))
		switch {
		case size <= 8 && i < maxNrRegArgs:
			e.stg(r2+i, off)
		case size <= 8:
			e.mvc(off, 8, r15, stackOff, r15)
		case i < maxNrRegArgs:
			e.mvc(off, 16, r15, 0, r2+i)
		default:
			e.lg(r1, stackOff)
			e.mvc(off, 16, r15, 0, r1)
		}
		if size <= 8 {
			j++
		} else {
			j += 2
		}
	}
}

// emitAll is __arch_prepare_bpf_trampoline for a tracing (not struct_ops)
// trampoline, step by step.
func (g *gen) emitAll() {
	e, p, f := &g.e, g.p, g.f
	flags := p.Flags
	callOrig := flags&trampoline.FlagCallOrig != 0
	origStack := flags&trampoline.FlagOrigStack != 0
	skipFrame := flags&trampoline.FlagSkipFrame != 0
	g.nrProgs = 0
	tccnt := int64(f.TccntOff)
	// The frame: backchain, the caller's tail call counter saved, the
	// argument registers, the arguments for the programs, %r7, %r8, %r14.
	e.label("prologue")
	e.emit(lgr(r1, r15))
	e.aghi(r15, int64(-f.StackSize))
	e.stg(r1, int64(f.BackchainOff))
	e.mvc(tccnt, 4, r15, int64(f.StackSize+tailCallCntOff), r15)
	if f.NrRegArgs > 0 {
		e.stmg(r2, r2+f.NrRegArgs-1, int64(f.RegArgsOff))
	}
	g.storeArgs()
	e.stmg(r7, r8, int64(f.R7R8Off))
	e.stg(r14, int64(f.R14Off))
	// BPF_TRAMP_F_ORIG_STACK: the ftrace trampoline's return address
	// (func+6) in %r0, kept in %r8.
	if origStack {
		e.emit(lgr(r8, r0))
	}
	// BPF_TRAMP_F_IP_ARG: ip = func_addr.
	if flags&trampoline.FlagIPArg != 0 {
		var fn uint64
		if g.addrs != nil {
			fn = g.addrs.Func
		}
		g.storeImm64(r0, f.IPOff, fn, "func")
	}
	// func_meta = nr_bpf_args.
	funcMeta := uint64(f.NrBPFArgs)
	e.lghi(r0, int64(funcMeta))
	e.stg(r0, int64(f.FuncMetaOff))
	// BPF_TRAMP_F_CALL_ORIG: __bpf_tramp_enter(im).
	if callOrig {
		g.loadIm()
		e.brasl(r14, g.sym(trampoline.HelperTrampEnter), trampoline.HelperTrampEnter)
	}
	// fsession: the session cookies and the return value zeroed.
	if fsessionCount(p) > 0 {
		for i := 0; i < f.CookieCount; i++ {
			g.storeImm64(r0, f.CookieOff+8*i, 0, "")
		}
		g.storeImm64(r0, f.RetvalOff, 0, "")
	}
	g.invokeList(p.Fentry, flags&trampoline.FlagRetFentryRet != 0, funcMeta)
	// fmod_ret: retval = 0, then each program, "if (retval) goto
	// do_fexit" (ltg, brcl 7 with the previous pass's do_fexit).
	if len(p.ModReturn) > 0 {
		e.xcSelf(int64(f.RetvalOff), 8)
		for _, n := range p.ModReturn {
			e.label(string(n.Phase), ":", n.Prog)
			g.invokeProg(n, true)
			e.ltg(r0, int64(f.RetvalOff))
			e.brclOff(maskNotEq, g.l.doFexit)
		}
	}
	// BPF_TRAMP_F_CALL_ORIG: retval = func_addr(args): the argument
	// registers and stack arguments back, the tail call counter in the
	// callee's frame, the call past the patch site (or through %r8), the
	// result kept and the counter saved again.
	if callOrig {
		if f.NrRegArgs > 0 {
			e.lmg(r2, r2+f.NrRegArgs-1, int64(f.RegArgsOff))
		}
		if f.NrStackArgs > 0 {
			e.mvc(int64(f.StackArgsOff), 8*f.NrStackArgs, r15, int64(f.OrigStackArgsOff), r15)
		}
		e.mvc(tailCallCntOff, 4, r15, tccnt, r15)
		e.label("call_orig")
		switch {
		case origStack && g.feat.Expoline:
			e.brasl(r14, g.sym(ThunkR8), ThunkR8)
		case origStack:
			e.emit(basr(r14, r8))
		default:
			var fn uint64
			if g.addrs != nil {
				fn = g.addrs.Func + PatchSiteEnd
			}
			e.brasl(r14, fn, "func+6")
		}
		e.stg(r2, int64(f.RetvalOff))
		e.mvc(tccnt, 4, r15, tailCallCntOff, r15)
	}
	// fsession: func_meta with is_return for the fexit list (before
	// do_fexit: an fmod_ret program's non-zero result skips it).
	funcMeta |= 1 << trampoline.IsReturnShift
	if fsessionCount(p) > 0 {
		g.storeImm64(r0, f.FuncMetaOff, funcMeta, "")
	}
	g.l.doFexit = e.prg()
	if len(p.ModReturn) > 0 {
		e.label("do_fexit")
	}
	g.invokeList(p.Fexit, false, funcMeta)
	// BPF_TRAMP_F_CALL_ORIG: __bpf_tramp_exit(im).
	if callOrig {
		e.label("epilogue")
		g.loadIm()
		e.brasl(r14, g.sym(trampoline.HelperTrampExit), trampoline.HelperTrampExit)
	}
	// BPF_TRAMP_F_RESTORE_REGS: the argument registers back.
	if flags&trampoline.FlagRestoreRegs != 0 && f.NrRegArgs > 0 {
		e.lmg(r2, r2+f.NrRegArgs-1, int64(f.RegArgsOff))
	}
	if !skipFrame && origStack {
		e.emit(lgr(r1, r8))
	}
	// %r7, %r8, %r14 and the return value back, the caller's tail call
	// counter restored, the frame popped.
	e.lmg(r7, r8, int64(f.R7R8Off))
	e.lg(r14, int64(f.R14Off))
	if flags&(trampoline.FlagCallOrig|trampoline.FlagRetFentryRet) != 0 {
		e.lg(r2, int64(f.RetvalOff))
	}
	e.mvc(int64(f.StackSize+tailCallCntOff), 4, r15, tccnt, r15)
	e.aghi(r15, int64(f.StackSize))
	e.label("return")
	switch {
	case skipFrame:
		// Back to the traced function's parent.
		g.jumpReg(r14, ThunkR14)
	case origStack:
		g.jumpReg(r1, ThunkR1)
	default:
		// Into the traced function past its patch site.
		var fn uint64
		if g.addrs != nil {
			fn = g.addrs.Func + PatchSiteEnd
		}
		e.brclTo(maskAlways, fn, "func+6")
	}
}
