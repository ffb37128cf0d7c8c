package emu

import (
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/trampoline"
)

// Names of the checks a run or a verification can fail.
const (
	// CheckDecode: an instruction the machine does not model (or cannot
	// decode) was reached.
	CheckDecode = "decode"
	// CheckControl: control went somewhere that is neither the image nor
	// a known stub, or the trampoline did not return where its entry
	// convention says.
	CheckControl = "control-flow"
	// CheckCalleeSaved: a callee-saved register differs on return.
	CheckCalleeSaved = "callee-saved"
	// CheckSP: the stack pointer is not restored on return.
	CheckSP = "stack-pointer"
	// CheckAlign: a call (or, on arm64, any sp-based access) with a
	// misaligned stack pointer.
	CheckAlign = "stack-alignment"
	// CheckBackchain (s390x): a call out of the trampoline's frame whose
	// backchain (152(%r15)) does not hold the entry stack pointer.
	CheckBackchain = "backchain"
	// CheckUninit: a read of a stack byte nothing wrote.
	CheckUninit = "uninitialised-read"
	// CheckFrame: a write outside the trampoline's own frame (below the
	// stack pointer or into the caller's frame; on s390x the frame
	// includes the traced function's register save area its caller
	// allocated, up to the caller's backchain), or an access outside the
	// stack.
	CheckFrame = "frame-write"
	// CheckHelpers: the kernel helpers were called out of pairs or with
	// inconsistent arguments (im, program, start time, run_ctx).
	CheckHelpers = "helper-pairing"
	// CheckOrigArgs: the traced function's body saw other arguments than
	// its caller passed.
	CheckOrigArgs = "orig-args"
	// CheckLimit: the instruction budget ran out.
	CheckLimit = "insn-limit"
	// CheckOrder: the programs ran in another order or phase than the
	// model predicts, or a phase ran twice.
	CheckOrder = "order"
	// CheckObservation: a program observed other values (argument
	// count, arguments, return value, func_meta, cookie, IP, attach
	// cookie) than the model predicts.
	CheckObservation = "observation"
	// CheckModRet: the original function ran although an fmod_ret
	// program returned non-zero, or did not run although none did.
	CheckModRet = "fmod_ret"
	// CheckRetval: the trampoline's return value is not the one the
	// model predicts.
	CheckRetval = "retval"
	// CheckTailCallCtx (TAIL_CALL_CTX): the traced BPF program's
	// body was entered with another rax than the trampoline was: rax
	// carries the tail-call counter pointer into a tail-call-reachable
	// program. On s390x: the body did not find the caller's tail call
	// counter at 64(%r15), or the caller did not get the body's back
	// there.
	CheckTailCallCtx = "tail-call-ctx"
)

// Violation is one failed check.
type Violation struct {
	Check string `json:"check"`
	// Off is the image offset of the instruction at fault (-1: none).
	Off int    `json:"off"`
	Msg string `json:"msg"`
}

func (v Violation) String() string {
	if v.Off >= 0 {
		return fmt.Sprintf("%s at %#x: %s", v.Check, v.Off, v.Msg)
	}
	return fmt.Sprintf("%s: %s", v.Check, v.Msg)
}

// Prog is an attached program as its stub needs it: the observer
// program's behaviour (kind, whether it uses the session cookie and
// bpf_get_func_ip, its return value) and its addresses.
type Prog struct {
	Name string
	// Index is the program's index in the case (it picks the cookie
	// value an fsession program writes, trampoline.CookieValueFor).
	Index   int
	Kind    trampoline.Kind
	Cookie  bool
	IP      bool
	Returns int64
	// Ptr is the struct bpf_prog * the image passes to the helpers (0:
	// unknown, then any consistent value is accepted); BPFFunc is
	// prog->bpf_func, the address the image calls.
	Ptr     uint64
	BPFFunc uint64
}

// Arg is one argument of the traced function: Size bytes (1..16) whose
// value is Lo, then Hi for the bytes above 8.
type Arg struct {
	Lo, Hi uint64
	Size   int
	// Struct: a struct passed by value (x86: it goes whole to the stack
	// when it does not fit the remaining registers; so does a 16-byte
	// scalar).
	Struct bool
}

// Setup describes one trampoline image and its surroundings.
type Setup struct {
	Arch string // "x86_64", "arm64", "riscv64" or "s390x"
	Code []byte
	// Base is the image's address.
	Base uint64
	// Func is the traced function's address; OrigEntry the address the
	// body is entered at (x86 func+5 or func+9 behind ENDBR, arm64
	// and riscv64 func+8; riscv64's t0 holds it at entry; s390x func+6,
	// in %r0 at entry).
	Func, OrigEntry uint64
	// Im is struct bpf_tramp_image * (0: unknown, any consistent value).
	Im uint64
	// Symbols are the kernel helpers' addresses by name.
	Symbols map[string]uint64
	Progs   []Prog
	// Model is the traced function's prototype model, for the calling
	// convention.
	Model trampoline.FuncModel
	// CallMode (x86): the traced function calls the trampoline (pushing
	// the address after its 5-byte call site) instead of jumping to it.
	CallMode bool
	// TailCallCtx: the target is a tail-call-reachable BPF program. On
	// x86_64 its body must be entered with the rax the trampoline got
	// (emit_prologue / LOAD_TRAMP_TAIL_CALL_CNT_PTR); on s390x it must
	// find the caller's tail call counter at 64(%r15), and the caller
	// must get the body's back there (the BPF_PSEUDO_CALL copies of
	// bpf_jit_insn, which __arch_prepare_bpf_trampoline repeats).
	TailCallCtx bool
}

// Run is one trigger of the traced function.
type Run struct {
	Args []Arg
	// OrigRet is what the traced function's body returns.
	OrigRet uint64
	// Skip lists programs whose enter helper returns 0 (a recursion
	// skip): the trampoline must not run them but still call their exit
	// helper.
	Skip map[string]bool
	// Trace, when set, receives every executed instruction.
	Trace func(TraceStep)
	// MaxInsns bounds the run (0: 100000).
	MaxInsns int
}

// TraceStep is one executed instruction (or stub) and the registers it
// changed.
type TraceStep struct {
	PC   uint64
	Off  int // image offset, -1 for a stub
	Text string
	// Changed lists "reg=value" for every register the step wrote.
	Changed []string
}

// Call is one program invocation as the program saw it.
type Call struct {
	Order int    `json:"order"`
	Prog  string `json:"prog"`
	Phase string `json:"phase"` // entry | exit | modret
	// FuncMeta is ctx[-1]; ArgCnt its low byte; IsReturn bit 63;
	// CookieIndex bits 8-15.
	FuncMeta    uint64   `json:"func_meta"`
	ArgCnt      uint64   `json:"arg_cnt"`
	Args        []uint64 `json:"args"`
	IsReturn    int      `json:"is_return"`
	CookieIndex int      `json:"cookie_index"`
	// Ret is bpf_get_func_ret (kinds that may call it); IP
	// bpf_get_func_ip (programs that call it).
	Ret          *uint64 `json:"ret,omitempty"`
	IP           *uint64 `json:"ip,omitempty"`
	AttachCookie uint64  `json:"attach_cookie"`
	// Cookie (fsession programs using the session cookie): the value read,
	// the value written at entry, and the slot (ctx - pointer)/8.
	CookieRead    *uint64 `json:"cookie_read,omitempty"`
	CookieWritten *uint64 `json:"cookie_written,omitempty"`
	CookieSlot    *int64  `json:"cookie_slot,omitempty"`
	Ctx           uint64  `json:"ctx"`
	// Frame holds the words from ctx-128 to ctx+64 after the program ran
	// (as the observer's frame dump); FrameInit says which were
	// initialised.
	Frame     [FrameWords]uint64 `json:"-"`
	FrameInit [FrameWords]bool   `json:"-"`
	// Returned is the program's return value.
	Returned int64 `json:"returned"`
	// Enter and Exit are the helpers the image called around it.
	Enter string `json:"enter"`
	Exit  string `json:"exit"`
}

// Result is what one run did.
type Result struct {
	Calls []Call `json:"calls"`
	// Retval is the traced function's return value as its caller sees it.
	Retval uint64 `json:"retval"`
	// OrigRuns counts how often the traced function's body ran;
	// OrigCalled how often the image called it.
	OrigRuns   int `json:"orig_runs"`
	OrigCalled int `json:"orig_called"`
	// Skipped lists programs whose enter helper returned 0.
	Skipped []string `json:"skipped,omitempty"`
	// Insns counts executed instructions (stubs not included).
	Insns int `json:"insns"`
	// Completed: control came back to the caller.
	Completed  bool        `json:"completed"`
	Violations []Violation `json:"violations,omitempty"`
}

// Failed lists the names of the failed checks, in order, without
// repeats.
func (r *Result) Failed() []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range r.Violations {
		if !seen[v.Check] {
			seen[v.Check] = true
			out = append(out, v.Check)
		}
	}
	return out
}

// Has says whether check failed.
func (r *Result) Has(check string) bool {
	for _, v := range r.Violations {
		if v.Check == check {
			return true
		}
	}
	return false
}

// Err summarises the violations (nil when there are none).
func (r *Result) Err() error {
	if len(r.Violations) == 0 {
		return nil
	}
	var b strings.Builder
	for i, v := range r.Violations {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.String())
	}
	return fmt.Errorf("%s", b.String())
}
