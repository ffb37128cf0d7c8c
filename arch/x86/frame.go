package x86

import (
	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

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
