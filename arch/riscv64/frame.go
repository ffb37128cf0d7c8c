package riscv64

import (
	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// maxRegArgs is RV_MAX_REG_ARGS: argument slots passed in a0..a7; the
// rest are on the caller's stack.
const maxRegArgs = 8

// runCtxSize is round_up(sizeof(struct bpf_tramp_run_ctx), 8).
const runCtxSize = 16

// Frame is the riscv64 trampoline's stack layout: every *Off is the
// distance below the frame pointer s0 of the slot's lowest address (the
// slot is at s0 - Off), as __arch_prepare_bpf_trampoline computes them
// growing stack_size from the top. s0 itself is the stack pointer the
// traced function had, less 16: the traced function's frame (its s0 and
// t0) is at s0-16 and s0-8, the parent's (s0, ra) at s0 and s0+8, and the
// caller's stack arguments start at s0+16.
type Frame struct {
	NrArgSlots  int // nr_arg_slots: every argument's words
	SaveRet     bool
	RetvalOff   int // a0 at s0-RetvalOff, BPF R0 (a5) at s0-RetvalOff+8
	ArgsOff     int // arg i at s0-ArgsOff+8i
	FuncMetaOff int
	IPArg       bool
	IPOff       int
	CookieCount int
	CookieOff   int // cookie j at s0-CookieOff+8j
	RunCtxOff   int
	SregOff     int // saved s1
	// TCC: the tail call counter (a6) is kept at s0-TCCOff
	// (BPF_TRAMP_F_TAIL_CALL_CTX, 7.3+: Plan.RiscvTCCStack).
	TCC    bool
	TCCOff int
	// StkArgOff is where the original call's stack arguments go
	// (s0-StkArgOff+8k, the bottom of the frame); StackArgs their count.
	StkArgOff int
	StackArgs int
	// StackSize is what the prologue subtracts after the first 16 bytes.
	StackSize int
}

// layout computes the frame as the stack_size arithmetic at the top of
// __arch_prepare_bpf_trampoline (7.2; 7.3 adds tcc_off) does.
func layout(p *trampoline.Plan) Frame {
	var f Frame
	for _, s := range p.Func.ArgSize {
		f.NrArgSlots += (s + 7) / 8
	}
	s := 16 // the traced function's s0 and t0
	f.SaveRet = p.Flags&(trampoline.FlagCallOrig|trampoline.FlagRetFentryRet) != 0
	if f.SaveRet {
		s += 16 // a0 and BPF R0 (a5)
		f.RetvalOff = s
	}
	s += 8 * f.NrArgSlots
	f.ArgsOff = s
	s += 8
	f.FuncMetaOff = s
	if p.Flags&trampoline.FlagIPArg != 0 {
		f.IPArg = true
		s += 8
		f.IPOff = s
	}
	f.CookieCount = p.CookieCount
	s += 8 * p.CookieCount
	f.CookieOff = s
	s += runCtxSize
	f.RunCtxOff = s
	s += 8
	f.SregOff = s
	if p.RiscvTCCStack && p.Flags&trampoline.FlagTailCallCtx != 0 {
		f.TCC = true
		s += 8
		f.TCCOff = s
	}
	if p.Flags&trampoline.FlagCallOrig != 0 && f.NrArgSlots > maxRegArgs {
		f.StackArgs = f.NrArgSlots - maxRegArgs
		s += 8 * f.StackArgs
	}
	f.StackSize = (s + 15) &^ 15 // STACK_ALIGN
	f.StkArgOff = f.StackSize
	return f
}

// slots names the frame's areas relative to s0, the four saved words
// included.
func (f Frame) slots() []arch.Slot {
	out := make([]arch.Slot, 0, 12+f.CookieCount+f.NrArgSlots)
	add := func(name string, off, size int) {
		if size > 0 {
			out = append(out, arch.Slot{Name: name, Off: off, Size: size})
		}
	}
	add("stack_args", -f.StkArgOff, 8*f.StackArgs)
	if f.TCC {
		add("tcc", -f.TCCOff, 8)
	}
	add("s1", -f.SregOff, 8)
	add("run_ctx", -f.RunCtxOff, runCtxSize)
	for j := 0; j < f.CookieCount; j++ {
		add(arch.SlotName("cookie", j), -f.CookieOff+8*j, 8)
	}
	if f.IPArg {
		add("ip", -f.IPOff, 8)
	}
	add("func_meta", -f.FuncMetaOff, 8)
	for i := 0; i < f.NrArgSlots; i++ {
		add(arch.SlotName("arg", i), -f.ArgsOff+8*i, 8)
	}
	if f.SaveRet {
		add("retval", -f.RetvalOff, 8)
		add("bpf_r0", -f.RetvalOff+8, 8)
	}
	add("fp", -16, 8)
	add("retaddr", -8, 8)
	add("parent_fp", 0, 8)
	add("parent_ra", 8, 8)
	return out
}
