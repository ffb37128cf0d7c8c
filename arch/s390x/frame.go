package s390x

import (
	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// Constants of the s390x JIT and ABI the frame is built from.
const (
	// stackFrameOverhead is STACK_FRAME_OVERHEAD: the area every caller
	// reserves below its stack pointer for its callee (packed stack:
	// the backchain in its last 8 bytes).
	stackFrameOverhead = 160
	// tailCallCntOff is offsetof(struct prog_frame, tail_call_cnt):
	// after u64 unused[8].
	tailCallCntOff = 64
	// runCtxSize is sizeof(struct bpf_tramp_run_ctx): an empty struct
	// bpf_run_ctx, u64 bpf_cookie, struct bpf_run_ctx *saved_run_ctx.
	runCtxSize = 16
	// runCtxCookieOff is offsetof(struct bpf_tramp_run_ctx, bpf_cookie).
	runCtxCookieOff = 0
	// maxNrRegArgs is MAX_NR_REG_ARGS: %r2..%r6 carry arguments.
	maxNrRegArgs = 5
	// maxMVCSize is MAX_MVC_SIZE (mvc's 8-bit length field), and
	// maxNrStackArgs MAX_NR_STACK_ARGS, the stack arguments one mvc
	// copies.
	maxMVCSize     = 256
	maxNrStackArgs = maxMVCSize / 8
)

// Frame is the s390x trampoline's stack layout: the fields of struct
// bpf_tramp_jit that __arch_prepare_bpf_trampoline computes with
// alloc_stack, each an offset from %r15 after the prologue's
// "aghi %r15,-StackSize" (so positive), plus the counts they come from.
// ctx, what the programs get, is %r15 + BPFArgsOff; IPOff is ctx-16 and
// FuncMetaOff ctx-8, as bpf_get_func_ip and func_meta readers expect.
// The caller's STACK_FRAME_OVERHEAD area starts at StackSize: the
// frame's top slots (up to R14Off+16) overlap it, all but its backchain
// at StackSize+152.
type Frame struct {
	// NrBPFArgs is nr_bpf_args: the programs' argument words (two for an
	// argument of 9 to 16 bytes); NrRegArgs and NrStackArgs split
	// m->nr_args between %r2..%r6 and the caller's stack.
	NrBPFArgs   int
	NrRegArgs   int
	NrStackArgs int
	CookieCount int // cookie_cnt: fsession programs that call bpf_session_cookie

	StackSize    int // stack_size: what the prologue subtracts from %r15
	BackchainOff int // backchain_off: our backchain, STACK_FRAME_OVERHEAD-8
	StackArgsOff int // stack_args_off: the original function's stack arguments
	RegArgsOff   int // reg_args_off: %r2..%r6 as the trampoline was entered
	CookieOff    int // cookie_off: session cookie j at CookieOff+8j
	IPOff        int // ip_off
	FuncMetaOff  int // func_meta_off
	BPFArgsOff   int // bpf_args_off: ctx, argument word i at BPFArgsOff+8i
	RetvalOff    int // retval_off
	R7R8Off      int // r7_r8_off: saved %r7 (enter's result) and %r8
	RunCtxOff    int // run_ctx_off: struct bpf_tramp_run_ctx
	TccntOff     int // tccnt_off: the saved tail call counter
	R14Off       int // r14_off: saved %r14 (16 bytes reserved)
	// OrigStackArgsOff is orig_stack_args_off: where the traced
	// function's caller put its stack arguments, above our frame.
	OrigStackArgsOff int
}

// alloc is alloc_stack: the offset of size more bytes.
func alloc(stackSize *int, size int) int {
	off := *stackSize
	*stackSize += size
	return off
}

// layout computes the frame as the top of __arch_prepare_bpf_trampoline
// does. It assumes what validate checked: at most maxNrStackArgs stack
// arguments, none wider than 16 bytes.
func layout(p *trampoline.Plan) Frame {
	m := p.Func
	var f Frame
	f.NrRegArgs = min(m.NrArgs, maxNrRegArgs)
	f.NrStackArgs = m.NrArgs - f.NrRegArgs
	for _, s := range m.ArgSize {
		if s <= 8 {
			f.NrBPFArgs++
		} else {
			f.NrBPFArgs += 2
		}
	}
	f.CookieCount = cookieCount(p)
	s := stackFrameOverhead
	f.BackchainOff = s - 8
	f.StackArgsOff = alloc(&s, 8*f.NrStackArgs)
	f.RegArgsOff = alloc(&s, 8*f.NrRegArgs)
	f.CookieOff = alloc(&s, 8*f.CookieCount)
	f.IPOff = alloc(&s, 8)
	f.FuncMetaOff = alloc(&s, 8)
	f.BPFArgsOff = alloc(&s, 8*f.NrBPFArgs)
	f.RetvalOff = alloc(&s, 8)
	f.R7R8Off = alloc(&s, 16)
	f.RunCtxOff = alloc(&s, runCtxSize)
	f.TccntOff = alloc(&s, 8)
	f.R14Off = alloc(&s, 16)
	// The caller reserved STACK_FRAME_OVERHEAD bytes for us; all but its
	// backchain are ours.
	s -= stackFrameOverhead - 8
	f.StackSize = s
	f.OrigStackArgsOff = s + stackFrameOverhead
	return f
}

// cookieCount is bpf_fsession_cookie_cnt: the fentry list's nodes whose
// program calls bpf_session_cookie.
func cookieCount(p *trampoline.Plan) int {
	n := 0
	for _, nd := range p.Fentry {
		if nd.Cookie {
			n++
		}
	}
	return n
}

// fsessionCount is bpf_fsession_cnt: the fentry list's fsession nodes.
func fsessionCount(p *trampoline.Plan) int {
	n := 0
	for _, nd := range p.Fentry {
		if nd.Kind.Session() {
			n++
		}
	}
	return n
}

// FirstCookieIndex is invoke_bpf's cur_cookie at the start of a list: the
// lowest cookie slot's distance below ctx in words. The ip slot is always
// reserved on s390x, so it is CookieCount+2 with or without
// BPF_TRAMP_F_IP_ARG.
func (f Frame) FirstCookieIndex() int { return (f.BPFArgsOff - f.CookieOff) / 8 }

// slots names the frame's areas relative to %r15. The caller's
// tail_call_cnt (StackSize+64) lies inside one of the frame's own slots
// and is not listed; Explain names it.
func (f Frame) slots() []arch.Slot {
	out := make([]arch.Slot, 0, 20+f.CookieCount+f.NrBPFArgs+f.NrRegArgs)
	add := func(name string, off, size int) {
		if size > 0 {
			out = append(out, arch.Slot{Name: name, Off: off, Size: size})
		}
	}
	add("callee_area", 0, f.BackchainOff)
	add("backchain", f.BackchainOff, 8)
	add("stack_args", f.StackArgsOff, 8*f.NrStackArgs)
	for i := 0; i < f.NrRegArgs; i++ {
		add(regSlotNames[i], f.RegArgsOff+8*i, 8)
	}
	for j := 0; j < f.CookieCount; j++ {
		add(arch.SlotName("cookie", j), f.CookieOff+8*j, 8)
	}
	add("ip", f.IPOff, 8)
	add("func_meta", f.FuncMetaOff, 8)
	for i := 0; i < f.NrBPFArgs; i++ {
		add(arch.SlotName("arg", i), f.BPFArgsOff+8*i, 8)
	}
	add("retval", f.RetvalOff, 8)
	add("saved_r7", f.R7R8Off, 8)
	add("saved_r8", f.R7R8Off+8, 8)
	add("run_ctx", f.RunCtxOff, runCtxSize)
	add("tail_call_cnt", f.TccntOff, 8)
	add("saved_r14", f.R14Off, 8)
	add("parent_backchain", f.StackSize+stackFrameOverhead-8, 8)
	add("parent_stack_args", f.OrigStackArgsOff, 8*f.NrStackArgs)
	return out
}

// regSlotNames name the saved argument registers.
var regSlotNames = [maxNrRegArgs]string{"saved_r2", "saved_r3", "saved_r4", "saved_r5", "saved_r6"}
