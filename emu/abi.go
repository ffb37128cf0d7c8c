package emu

import (
	"fmt"

	"github.com/bpftramp/tramp/trampoline"
)

// argLoc is where one argument word lives at the traced function's
// entry: a register, or the k-th stack word above the return address.
type argLoc struct {
	arg, word int
	reg       int // -1: on the stack
	stack     int
	mask      uint64 // the bytes of the word the argument uses
	// s390x: an argument of 9 to 16 bytes is passed by reference, the
	// register or stack word holding a pointer to the caller's copy at
	// copy bytes into its copy area; the word is the 8 bytes at
	// pointer+8*word, big-endian, its bytes past the argument zero
	// (shift: the last word's bytes, the low bytes of Hi, are its top
	// ones).
	byRef bool
	copy  int
	shift uint
}

// Argument registers.
var (
	x86ArgRegs  = []int{7, 6, 2, 1, 8, 9} // rdi rsi rdx rcx r8 r9
	a64ArgRegs  = []int{0, 1, 2, 3, 4, 5, 6, 7}
	rvArgRegs   = []int{10, 11, 12, 13, 14, 15, 16, 17} // a0-a7
	s390ArgRegs = []int{2, 3, 4, 5, 6}
)

// argRegs are an arch's integer argument registers.
func argRegs(archName string) []int {
	switch archName {
	case "arm64":
		return a64ArgRegs
	case "riscv64":
		return rvArgRegs
	case "s390x":
		return s390ArgRegs
	}
	return x86ArgRegs
}

// placeArgs lays the arguments out by the calling convention: x86_64
// SysV (an argument that does not fit the remaining registers goes whole
// to the stack, later ones may still use registers), AAPCS64 (from the
// first argument that does not fit, every argument goes to the stack)
// and the riscv64 LP64 psABI (a named argument of two words takes the
// next two registers, no even-register alignment, or a7 and the first
// stack word when only a7 is left: the words fill a0-a7, then the stack,
// in order). Every word takes an 8-byte stack slot: the psABI's 16-byte
// stack alignment of a 16-byte scalar is not modelled, as the kernels'
// store_args do not model it either.
func placeArgs(archName string, m trampoline.FuncModel) ([]argLoc, int) {
	if archName == "s390x" {
		return placeArgsS390(m)
	}
	regs := argRegs(archName)
	var out []argLoc
	nreg, nstack := 0, 0
	allStack := false
	for i := 0; i < m.NrArgs; i++ {
		size := 8
		if i < len(m.ArgSize) {
			size = m.ArgSize[i]
		}
		words := (size + 7) / 8
		if words == 0 {
			words = 1
		}
		onStack := allStack || nreg+words > len(regs)
		if onStack && archName == "arm64" {
			allStack = true
		}
		for j := 0; j < words; j++ {
			n := size - 8*j
			if n > 8 {
				n = 8
			}
			mask := ^uint64(0)
			if n < 8 {
				mask = 1<<(8*n) - 1
			}
			l := argLoc{arg: i, word: j, reg: -1, mask: mask}
			if archName == "riscv64" {
				// Word by word: a two-word argument may straddle a7 and
				// the stack.
				onStack = nreg >= len(regs)
			}
			if onStack {
				l.stack = nstack
				nstack++
			} else {
				l.reg = regs[nreg]
				nreg++
			}
			out = append(out, l)
		}
	}
	return out, nstack
}

// placeArgsS390 is the s390x ELF ABI as the kernel's trampoline takes
// it (__arch_prepare_bpf_trampoline): every argument is one word, the
// first five in %r2-%r6, the rest in the caller's parameter area from
// 160(%r15) on; one of 9 to 16 bytes (a struct, or a 128-bit scalar) is
// passed by reference, a pointer to a copy the caller made, and the
// programs see its bytes as two words. Integers narrower than 8 bytes
// are passed zero-extended (the ABI extends them by their signedness;
// the runs pass values for which both agree).
func placeArgsS390(m trampoline.FuncModel) ([]argLoc, int) {
	var out []argLoc
	nstack, copies := 0, 0
	for i := 0; i < m.NrArgs; i++ {
		size := 8
		if i < len(m.ArgSize) {
			size = m.ArgSize[i]
		}
		l := argLoc{arg: i, reg: -1, mask: ^uint64(0)}
		if i < len(s390ArgRegs) {
			l.reg = s390ArgRegs[i]
		} else {
			l.stack = nstack
			nstack++
		}
		if size <= 8 {
			if size > 0 && size < 8 {
				l.mask = 1<<(8*size) - 1
			}
			out = append(out, l)
			continue
		}
		l.byRef, l.copy = true, copies
		copies += 16
		out = append(out, l)
		l.word = 1
		if n := min(size, 16) - 8; n < 8 {
			l.mask, l.shift = 1<<(8*n)-1, uint(8*(8-n))
		}
		out = append(out, l)
	}
	return out, nstack
}

// argWord is the value of one argument word as the caller passes it
// (s390x by reference: as the word reads in memory).
func argWord(a Arg, l argLoc) uint64 {
	v := a.Lo
	if l.word == 1 {
		v = a.Hi
	}
	return v & l.mask << l.shift
}

// ArgWords gives the argument words in order, as a trampoline saves them
// into its argument slots (each masked to the argument's bytes).
func ArgWords(archName string, m trampoline.FuncModel, args []Arg) []uint64 {
	locs, _ := placeArgs(archName, m)
	var out []uint64
	for _, l := range locs {
		if l.arg < len(args) {
			out = append(out, argWord(args[l.arg], l))
		}
	}
	return out
}

// ArgsOf turns plain argument values into Args of the model's sizes.
func ArgsOf(m trampoline.FuncModel, vals []uint64) []Arg {
	out := make([]Arg, m.NrArgs)
	for i := range out {
		out[i].Size = 8
		if i < len(m.ArgSize) {
			out[i].Size = m.ArgSize[i]
		}
		if i < len(m.ArgFlags) {
			out[i].Struct = m.ArgFlags[i]&trampoline.FmodelStructArg != 0
		}
		if i < len(vals) {
			out[i].Lo = vals[i]
		}
	}
	return out
}

// stackArgBase is the address of the first stack argument word as seen
// at the traced function's entry (sp there is the return address slot
// on x86).
func (m *machine) stackArgBase(entrySP uint64) uint64 {
	switch m.e.s.Arch {
	case "x86_64":
		return entrySP + 8
	case "s390x":
		return entrySP + s390FrameOverhead
	}
	return entrySP
}

// enter sets up the registers and the caller's frame and points pc at
// the image, as the traced function's patched entry does.
func (m *machine) enter() {
	s := &m.e.s
	for i := range m.regs {
		m.regs[i] = poisonReg | uint64(i)
	}
	if s.Arch == "s390x" {
		m.enterS390()
		m.saved = m.regs
		return
	}
	if s.Arch == "riscv64" {
		m.regs[0] = 0
	}
	// The function's entry stack pointer: the caller called it with a
	// 16-byte aligned stack (x86: the return address is then at an
	// address that is 8 mod 16).
	fnSP := uint64(entryTop) - 8*uint64(m.e.stackArgWords+2)
	fnSP &^= 15
	if s.Arch == "x86_64" {
		fnSP -= 8
	}
	base := m.stackArgBase(fnSP)
	for _, l := range m.e.abi {
		v := argWord(m.run.Args[l.arg], l)
		if l.reg >= 0 {
			m.regs[l.reg] = v
		} else {
			m.poke(base+8*uint64(l.stack), 8, v)
		}
	}
	m.pc = s.Base
	switch s.Arch {
	case "x86_64":
		m.poke(fnSP, 8, parentRet)
		m.parentSlot = fnSP
		sp := fnSP
		if s.CallMode {
			sp -= 8
			// The ftrace call site ends where the body starts.
			m.poke(sp, 8, s.OrigEntry)
		}
		m.regs[4] = sp
		m.entrySP = sp
	case "arm64":
		m.regs[31] = fnSP
		m.entrySP = fnSP
		m.regs[9] = parentRet
		m.regs[30] = s.Func + 8
	case "riscv64":
		// The patched entry "auipc t0, hi; jalr t0, lo(t0)" (through
		// ftrace_caller and ops->direct_call for a kernel function,
		// straight to the image for a BPF program) enters with the
		// caller's return address in ra, the address past the patch site
		// in t0 and the function's own entry sp
		// (__arch_prepare_bpf_trampoline's "called from function entry"
		// frame).
		m.regs[2] = fnSP
		m.entrySP = fnSP
		m.regs[1] = parentRet
		m.regs[5] = s.OrigEntry
	}
	m.frameTop = m.entrySP
	m.saved = m.regs
}

// s390x entry state.
const (
	// s390EntryTailCallCnt is the tail call counter the traced
	// function's caller leaves at 64(%r15) (a kernel function's caller
	// leaves whatever that word holds; the trampoline moves it either
	// way).
	s390EntryTailCallCnt = 0x13
	// s390CallerBackchain is the caller's own backchain, at 152(%r15).
	s390CallerBackchain = entryTop
)

// enterS390 sets up the state ftrace leaves when the traced function's
// patched entry reaches the image (ftrace_make_call's "brasl %r0" or the
// hotpatch trampoline's "lmg %r0,%r1; br %r1", ftrace_caller's direct
// call, or a BPF program's poked prologue PLT: bpf_arch_text_poke): %r0
// holds the address past the 6-byte patch site, %r14 the caller's
// return address and %r15 the stack pointer the caller called the
// function with, under the STACK_FRAME_OVERHEAD bytes it allocated for
// it (struct stack_frame with the packed stack: the caller's backchain
// at 152, the tail call counter of struct prog_frame at 64, the rest
// the callee's to use). The arguments go to %r2-%r6 and the parameter
// area from 160(%r15), the copies of those passed by reference above
// it, each in a 16-byte slot (zero past the argument: the trampoline
// copies 16 bytes whatever the size). The stack pointer is 8 mod 16:
// the ABI keeps it 8-byte aligned only.
func (m *machine) enterS390() {
	s := &m.e.s
	copies := 0
	for _, l := range m.e.abi {
		if l.byRef && l.word == 0 {
			copies += 16
		}
	}
	fnSP := uint64(entryTop) - s390FrameOverhead - 8*uint64(m.e.stackArgWords) - uint64(copies)
	fnSP = fnSP&^15 - 8
	copyBase := fnSP + s390FrameOverhead + 8*uint64(m.e.stackArgWords)
	base := m.stackArgBase(fnSP)
	for _, l := range m.e.abi {
		v := argWord(m.run.Args[l.arg], l)
		if l.byRef {
			ptr := copyBase + uint64(l.copy)
			m.poke(ptr+8*uint64(l.word), 8, v)
			if l.word != 0 {
				continue
			}
			v = ptr
		}
		if l.reg >= 0 {
			m.regs[l.reg] = v
		} else {
			m.poke(base+8*uint64(l.stack), 8, v)
		}
	}
	m.poke(fnSP+s390TailCallCntOff, 4, s390EntryTailCallCnt)
	m.poke(fnSP+s390BackchainOff, 8, s390CallerBackchain)
	m.tailCallCnt = s390EntryTailCallCnt
	m.regs[15] = fnSP
	m.entrySP = fnSP
	m.frameTop = fnSP + s390BackchainOff
	m.regs[14] = parentRet
	m.regs[0] = s.OrigEntry
	m.pc = s.Base
}

// calleeSaved lists the registers a function must preserve (riscv64:
// s0-s11, and gp and tp, which no kernel code changes).
func (m *machine) calleeSaved() []int {
	switch m.e.s.Arch {
	case "x86_64":
		return []int{3, 5, 12, 13, 14, 15} // rbx rbp r12-r15
	case "riscv64":
		return []int{3, 4, 8, 9, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27}
	case "s390x":
		return []int{6, 7, 8, 9, 10, 11, 12, 13, 14} // and %r15, the stack pointer
	}
	return []int{18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29}
}

func (m *machine) regName(r int) string {
	switch m.e.s.Arch {
	case "x86_64":
		return x86RegNames[r]
	case "riscv64":
		return rvRegNames[r]
	case "s390x":
		if r < len(s390RegNames) {
			return s390RegNames[r]
		}
	}
	if r == 31 {
		return "sp"
	}
	return fmt.Sprintf("x%d", r)
}

var x86RegNames = [16]string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}

// finish runs when control is back at the caller.
func (m *machine) finish() {
	s := &m.e.s
	m.res.Completed = true
	wantSP := m.entrySP
	switch s.Arch {
	case "x86_64":
		wantSP = m.parentSlot + 8
		m.res.Retval = m.regs[0]
	case "riscv64":
		m.res.Retval = m.regs[10]
		// The caller's ra: the trampoline returns through it (jr ra) or
		// hands it to the body it enters (jr t0), and either way the
		// caller gets it back.
		if m.regs[1] != m.saved[1] {
			m.violate(CheckCalleeSaved, "ra is %#x on return, it was %#x", m.regs[1], m.saved[1])
		}
	case "s390x":
		m.res.Retval = m.regs[2]
		// The tail call counter: the caller's, as the body last left it.
		if v := m.peek4(m.entrySP + s390TailCallCntOff); s.TailCallCtx && v != m.tailCallCnt {
			m.violate(CheckTailCallCtx, "tail_call_cnt at 64(%%r15) is %#x on return, the body left %#x", v, m.tailCallCnt)
		}
	default:
		m.res.Retval = m.regs[0]
	}
	if sp := m.sp(); sp != wantSP {
		m.violate(CheckSP, "back in the caller with sp %s, want %s", m.where(sp), m.where(wantSP))
	}
	for _, r := range m.calleeSaved() {
		if m.regs[r] != m.saved[r] {
			m.violate(CheckCalleeSaved, "%s is %#x on return, it was %#x", m.regName(r), m.regs[r], m.saved[r])
		}
	}
	if m.trampIn != m.trampOut {
		m.violate(CheckHelpers, "__bpf_tramp_enter ran %d times, __bpf_tramp_exit %d", m.trampIn, m.trampOut)
	}
	if m.pending.active {
		m.violate(CheckHelpers, "a program's enter helper (%s) has no exit helper", m.pending.helper)
	}
	if m.res.OrigRuns > 1 {
		m.violate(CheckControl, "the traced function's body ran %d times", m.res.OrigRuns)
	}
	m.stop = true
}
