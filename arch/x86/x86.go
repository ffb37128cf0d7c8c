package x86

import (
	"fmt"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

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
	if err := arch.CheckPlan(p, "x86_64"); err != nil {
		return nil, err
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
		g.e.movStackImm32(-(firstOff - 4), 0)
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
	e.patchJE8(je) // je over the program call
	e.movImm64(rdi, pa.Prog, "prog:"+n.Prog)
	e.movReg(rsi, rbx)
	e.lea(rdx, -g.f.RunCtxOff)
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

// invokeModRet is invoke_bpf_mod_ret: zero the return value slot, then
// each fmod_ret program followed by cmp qword [rbp-8], 0 and six NOPs
// that become jne do_fexit once do_fexit's place is known. It returns
// where those NOPs are.
func (g *gen) invokeModRet(nodes []trampoline.Node) []int {
	e := &g.e
	branches := make([]int, 0, len(nodes))
	e.movImm32(false, rax, 0)
	e.stx(rax, -8)
	for _, n := range nodes {
		e.label("modret:" + n.Prog)
		g.invokeProg(n, true)
		e.emit(0x48, 0x83, 0x7d, 0xf8, 0x00) // cmp qword [rbp-8], 0
		branches = append(branches, len(e.code))
		e.nopsN(6)
	}
	return branches
}

// callOrig calls the traced function past its patch site
// (orig_call + X86_PATCH_SIZE, + ENDBR_INSN_SIZE with IBT) or, with
// BPF_TRAMP_F_ORIG_STACK, through the return address the traced
// function's caller left at [rbp+8].
func (g *gen) callOrig() {
	e := &g.e
	e.label("call_orig")
	if g.p.Flags&trampoline.FlagOrigStack != 0 {
		e.ldx(rbx, 8)
		e.emit(0xff, 0xd3) // call rbx
		return
	}
	end, sym := PatchSiteEnd(g.feat), "func+5"
	if end == 9 {
		sym = "func+9"
	}
	e.call(g.addrs.Func+uint64(end), sym)
}

// emitAll is the body of __arch_prepare_bpf_trampoline after the size
// checks, step by step.
func (g *gen) emitAll() error {
	e, p, f := &g.e, g.p, g.f
	callOrig := p.Flags&trampoline.FlagCallOrig != 0

	// A direct-call fentry stub accounts for the __fentry__ call
	// (x86_call_depth_emit_accounting(&prog, NULL, image)).
	e.callDepthAccounting()

	// Prologue: push rbp; mov rbp, rsp; sub rsp, stack_size; with
	// BPF_TRAMP_F_TAIL_CALL_CTX push rax; save rbx.
	e.label("prologue")
	e.emit(0x55)             // push rbp
	e.emit(0x48, 0x89, 0xe5) // mov rbp, rsp
	e.subRsp(f.StackSize)
	if p.Flags&trampoline.FlagTailCallCtx != 0 {
		e.emit(0x50) // push rax
	}
	e.stx(rbx, -f.RbxOff)

	// func_meta (nr_args, and the cookie index for fsession), the ip
	// with BPF_TRAMP_F_IP_ARG, then save_args.
	e.storeImm64(rax, -f.FuncMetaOff, uint64(p.EntryFuncMeta), "")
	if p.Flags&trampoline.FlagIPArg != 0 {
		e.storeImm64(rax, -f.IPOff, g.addrs.Func, "func")
	}
	g.saveArgs(f.RegsOff, false)

	// BPF_TRAMP_F_CALL_ORIG: __bpf_tramp_enter(im).
	im := g.addrs.Im
	if callOrig {
		e.movImm64(rdi, im, "im")
		e.call(g.sym(trampoline.HelperTrampEnter), trampoline.HelperTrampEnter)
	}

	// fsession: zero the session cookies and the return value slot.
	if p.FsessionCount > 0 {
		for j := 0; j < f.CookieCount; j++ {
			e.storeImm64(rax, -f.CookieOff+8*j, 0, "")
		}
		e.storeImm64(rax, -8, 0, "")
	}

	// invoke_bpf over the fentry list (fsession entries included).
	g.invokeList(p.Fentry, p.Flags&trampoline.FlagRetFentryRet != 0)

	// invoke_bpf_mod_ret over the fmod_ret list.
	var branches []int
	if len(p.ModReturn) > 0 {
		branches = g.invokeModRet(p.ModReturn)
	}

	// BPF_TRAMP_F_CALL_ORIG: restore_regs, the stack arguments
	// (save_args for_call_origin), the tail-call counter pointer, the
	// call, the return value to [rbp-8], and the NOP whose address
	// im->ip_after_call takes.
	if callOrig {
		g.restoreRegs(f.RegsOff)
		g.saveArgs(f.ArgStackOff, true)
		if p.Flags&trampoline.FlagTailCallCtx != 0 {
			g.loadTailCallCntPtr()
		}
		g.callOrig()
		e.stx(rax, -8)
		if p.IPAfterCallNOP {
			e.label("ip_after_call")
			e.nopsN(5)
		}
	}

	// do_fexit: emit_align(16), then every fmod_ret branch becomes
	// jne do_fexit (emit_cond_near_jump).
	if len(p.ModReturn) > 0 {
		e.align(16)
		e.label("do_fexit")
		for _, b := range branches {
			e.patchJNE32(b, len(e.code))
		}
	}

	// fsession: func_meta for the exit run (is_return set), then
	// invoke_bpf over the fexit list.
	if p.FsessionCount > 0 {
		e.storeImm64(rax, -f.FuncMetaOff, uint64(p.ExitFuncMeta), "")
	}
	g.invokeList(p.Fexit, false)

	// BPF_TRAMP_F_RESTORE_REGS: restore_regs.
	if p.Flags&trampoline.FlagRestoreRegs != 0 {
		g.restoreRegs(f.RegsOff)
	}

	// BPF_TRAMP_F_CALL_ORIG: im->ip_epilogue, __bpf_tramp_exit(im);
	// otherwise the tail-call counter pointer for the caller.
	if callOrig {
		e.label("epilogue")
		e.movImm64(rdi, im, "im")
		e.call(g.sym(trampoline.HelperTrampExit), trampoline.HelperTrampExit)
	} else if p.Flags&trampoline.FlagTailCallCtx != 0 {
		g.loadTailCallCntPtr()
	}

	// Epilogue: the return value, rbx, leave; BPF_TRAMP_F_SKIP_FRAME
	// skips the traced function's frame; emit_return.
	if f.SaveRet {
		e.ldx(rax, -8)
	}
	e.ldx(rbx, -f.RbxOff)
	e.emit(0xc9) // leave
	if p.Flags&trampoline.FlagSkipFrame != 0 {
		e.emit(0x48, 0x83, 0xc4, 0x08) // add rsp, 8
	}
	e.label("return")
	thunk, thunkAddr := "", uint64(0)
	if g.feat.Rethunk {
		thunk = g.feat.ReturnThunk
		if thunk == "" {
			thunk = ThunkGeneric
		}
		thunkAddr = g.sym(thunk)
	}
	e.ret(g.feat.Rethunk, thunk, thunkAddr, g.feat.SLS)
	return nil
}

// loadTailCallCntPtr is LOAD_TRAMP_TAIL_CALL_CNT_PTR: mov rax, [rbp -
// round_up(stack, 8) - 8], always with a 32-bit displacement.
func (g *gen) loadTailCallCntPtr() {
	g.e.emit(0x48, 0x8b, 0x85)
	g.e.le32(uint32(int32(-g.f.TailCallCntPtrOff)))
}
