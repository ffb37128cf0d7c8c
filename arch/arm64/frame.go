package arm64

import (
	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// runCtxSize is round_up(sizeof(struct bpf_tramp_run_ctx), 8): the empty
// struct bpf_run_ctx, the u64 bpf_cookie (at offset 0) and the saved
// run_ctx pointer.
const runCtxSize = 16

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
