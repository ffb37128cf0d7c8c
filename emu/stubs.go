package emu

import (
	"fmt"

	"github.com/bpftramp/tramp/trampoline"
)

// Frame dump of the observer programs: FrameWords words from ctx-FrameBelow
// (the guest's observers read the same, see Call.Frame).
const (
	FrameWords = 24
	FrameBelow = 128
)

func (m *machine) isX86() bool { return m.e.s.Arch == "x86_64" }

// arg is the i-th integer argument register of a call.
func (m *machine) arg(i int) uint64 {
	return m.regs[argRegs(m.e.s.Arch)[i]]
}

var x86CallerSaved = [...]int{0, 1, 2, 6, 7, 8, 9, 10, 11}

// returnAddr is where the current stub returns to.
func (m *machine) returnAddr() uint64 {
	switch m.e.s.Arch {
	case "x86_64":
		v, _ := m.peek(m.regs[4])
		return v
	case "riscv64":
		return m.regs[1]
	case "s390x":
		return m.regs[14]
	}
	return m.regs[30]
}

// stubReturn clobbers the caller-saved registers, sets the return value
// and returns to the caller.
func (m *machine) stubReturn(ret uint64, hasRet bool) {
	switch m.e.s.Arch {
	case "x86_64":
		for _, r := range x86CallerSaved {
			m.regs[r] = poisonCall | uint64(r)
		}
		if hasRet {
			m.regs[0] = ret
		}
		m.pc = m.read(m.regs[4], 8, "return address")
		m.regs[4] += 8
	case "riscv64":
		for _, r := range rvCallerSaved {
			m.regs[r] = poisonCall | uint64(r)
		}
		if hasRet {
			m.regs[10] = ret
		}
		m.pc = m.regs[1]
	case "s390x":
		for _, r := range s390CallerSaved {
			m.regs[r] = poisonCall | uint64(r)
		}
		if hasRet {
			m.regs[2] = ret
		}
		m.pc = m.regs[14]
		m.ccSet = false
		m.scribbleSaveArea()
	default:
		for r := 0; r <= 17; r++ {
			m.regs[r] = poisonCall | uint64(r)
		}
		if hasRet {
			m.regs[0] = ret
		}
		m.pc = m.regs[30]
	}
	m.scribbleBelow()
}

func (m *machine) inImage(addr uint64) bool {
	return addr >= m.e.s.Base && addr < m.e.s.Base+uint64(len(m.e.s.Code))
}

func (m *machine) trace(text string, before *[32]uint64) {
	if m.run.Trace == nil {
		return
	}
	st := TraceStep{PC: m.pc, Off: m.curOff, Text: text}
	if before != nil {
		for i := range m.regs {
			if m.regs[i] != before[i] {
				st.Changed = append(st.Changed, fmt.Sprintf("%s=%#x", m.regName(i), m.regs[i]))
			}
		}
	}
	m.run.Trace(st)
}

// callStub runs the function at pc.
func (m *machine) callStub(st stub) {
	var before [32]uint64
	if m.run.Trace != nil {
		before = m.regs
	}
	pc := m.pc
	switch st.kind {
	case stubReturnThunk:
		m.pc = m.read(m.regs[4], 8, "return address")
		m.regs[4] += 8
	case stubJumpThunk:
		// GEN_BR_THUNK's "exrl 0,0f; j .; 0: br %rN": a branch to %rN
		// that changes nothing else.
		m.pc = m.regs[st.reg]
	case stubTrampEnter:
		m.trampEnter()
	case stubTrampExit:
		m.trampExit()
	case stubProgEnter:
		m.progEnter(st.name)
	case stubProgExit:
		m.progExit(st.name)
	case stubBPFFunc:
		m.bpfFunc(st.prog)
	case stubOrig:
		m.orig()
	}
	if m.run.Trace != nil {
		save := m.pc
		m.pc = pc
		m.trace("<"+st.name+">", &before)
		m.pc = save
	}
}

func (m *machine) trampEnter() {
	im := m.arg(0)
	m.trampIn++
	if m.trampIn > 1 {
		m.violate(CheckHelpers, "__bpf_tramp_enter called a second time")
	}
	if len(m.res.Calls) > 0 || m.pending.active {
		m.violate(CheckHelpers, "__bpf_tramp_enter called after a program started")
	}
	if m.e.s.Im != 0 && im != m.e.s.Im {
		m.violate(CheckHelpers, "__bpf_tramp_enter(%#x), the image's struct bpf_tramp_image is %#x", im, m.e.s.Im)
	}
	m.im = im
	m.stubReturn(0, false)
}

func (m *machine) trampExit() {
	im := m.arg(0)
	m.trampOut++
	if m.trampIn == 0 {
		m.violate(CheckHelpers, "__bpf_tramp_exit without __bpf_tramp_enter")
	} else if im != m.im {
		m.violate(CheckHelpers, "__bpf_tramp_exit(%#x), __bpf_tramp_enter had %#x", im, m.im)
	}
	if m.pending.active {
		m.violate(CheckHelpers, "__bpf_tramp_exit while a program is between its helpers")
	}
	m.stubReturn(0, false)
}

// progEnter is __bpf_prog_enter*(prog, run_ctx): it saves the current
// run context in run_ctx->saved_run_ctx, makes run_ctx current and
// returns a start time (0: recursion, do not run the program).
func (m *machine) progEnter(helper string) {
	ptr, runCtx := m.arg(0), m.arg(1)
	if m.pending.active {
		m.violate(CheckHelpers, "%s while %s is still open", helper, m.pending.helper)
	}
	prog := -1
	if i, ok := m.e.ptrProg[ptr]; ok {
		prog = i
	} else if len(m.e.ptrProg) > 0 {
		m.violate(CheckHelpers, "%s(%#x): no attached program has that struct bpf_prog", helper, ptr)
	} else if i, ok := m.learned[ptr]; ok {
		prog = i
	}
	// struct bpf_tramp_run_ctx: bpf_cookie at 0, saved_run_ctx at 8.
	if !inStack(runCtx, 16) || runCtx < m.sp() || runCtx+16 > m.frameTop {
		m.fatal(CheckHelpers, "%s: run_ctx %#x is not inside the trampoline's frame", helper, runCtx)
		return
	}
	m.writeD(runCtx+8, 8, m.runCtx, desc{helper, "run_ctx->saved_run_ctx", 0})
	m.runCtx = runCtx
	start := uint64(0)
	if prog < 0 || !m.run.Skip[m.e.s.Progs[prog].Name] {
		m.startCtr++
		start = 0x1000 + m.startCtr
	} else {
		m.res.Skipped = append(m.res.Skipped, m.e.s.Progs[prog].Name)
	}
	m.pending = pendingProg{active: true, prog: prog, ptr: ptr, runCtx: runCtx, start: start, helper: helper, callIdx: -1}
	m.stubReturn(start, true)
}

func (m *machine) progExit(helper string) {
	ptr, start, runCtx := m.arg(0), m.arg(1), m.arg(2)
	p := m.pending
	switch {
	case !p.active:
		m.violate(CheckHelpers, "%s without an enter helper", helper)
	default:
		if helper != m.e.exitOf[p.helper] {
			m.violate(CheckHelpers, "%s closes %s", helper, p.helper)
		}
		if ptr != p.ptr || start != p.start || runCtx != p.runCtx {
			m.violate(CheckHelpers, "%s(prog %#x, start %#x, run_ctx %#x), the enter helper had (%#x, %#x, %#x)", helper, ptr, start, runCtx, p.ptr, p.start, p.runCtx)
		}
		if p.start != 0 && !p.ran {
			m.violate(CheckHelpers, "%s: the program was not run although its enter helper returned %#x", helper, p.start)
		}
		if p.callIdx >= 0 {
			m.res.Calls[p.callIdx].Exit = helper
		}
		if inStack(p.runCtx, 16) {
			m.runCtx = m.readD(p.runCtx+8, 8, desc{helper, "run_ctx->saved_run_ctx", 0})
		}
	}
	m.pending = pendingProg{}
	m.stubReturn(0, false)
}

// bpfFunc runs a program as the observer programs do.
func (m *machine) bpfFunc(i int) {
	pr := m.e.s.Progs[i]
	ctx := m.arg(0)
	p := &m.pending
	switch {
	case !p.active:
		m.violate(CheckHelpers, "%s ran without its enter helper", pr.Name)
	case p.prog >= 0 && p.prog != i:
		m.violate(CheckHelpers, "%s ran between the helpers of %s", pr.Name, m.e.s.Progs[p.prog].Name)
	case p.start == 0:
		m.violate(CheckHelpers, "%s ran although its enter helper returned 0", pr.Name)
	case p.ran:
		m.violate(CheckHelpers, "%s ran twice between its helpers", pr.Name)
	}
	if p.active && p.prog < 0 {
		// The struct bpf_prog pointers of a real image are not exported:
		// the first enter helper before a program's bpf_func binds them.
		for ptr, j := range m.learned {
			if j == i && ptr != p.ptr {
				m.violate(CheckHelpers, "%s entered with struct bpf_prog %#x, earlier with %#x", pr.Name, p.ptr, ptr)
			}
		}
		if m.learned == nil {
			m.learned = map[uint64]int{}
		}
		p.prog = i
		m.learned[p.ptr] = i
	}
	c := Call{Order: len(m.res.Calls), Prog: pr.Name, Ctx: ctx, Returned: pr.Returns, Enter: p.helper}
	what := func(s string, k int) desc { return desc{pr.Name, s, k} }
	c.FuncMeta = m.readD(ctx-8, 8, what("ctx[-1] (func_meta)", 0))
	c.ArgCnt = c.FuncMeta & 0xff
	c.IsReturn = int(c.FuncMeta >> trampoline.IsReturnShift & 1)
	c.CookieIndex = int(c.FuncMeta >> trampoline.CookieIndexShift & 0xff)
	switch pr.Kind.Base() {
	case trampoline.KindFsession:
		c.Phase = string(trampoline.PhaseEntry)
		if c.IsReturn != 0 {
			c.Phase = string(trampoline.PhaseExit)
		}
	case trampoline.KindFexit:
		c.Phase = string(trampoline.PhaseExit)
	case trampoline.KindFmodRet:
		c.Phase = string(trampoline.PhaseModRet)
	default:
		c.Phase = string(trampoline.PhaseEntry)
	}
	c.Args = []uint64{}
	for k := uint64(0); k < c.ArgCnt && k < trampoline.MaxFuncArgs; k++ {
		c.Args = append(c.Args, m.readD(ctx+8*k, 8, what("ctx[%d] (argument)", int(k))))
	}
	if b := pr.Kind.Base(); b == trampoline.KindFexit || b == trampoline.KindFmodRet || b == trampoline.KindFsession {
		v := m.readD(ctx+8*c.ArgCnt, 8, what("ctx[%d] (return value)", int(c.ArgCnt)))
		c.Ret = &v
	}
	if pr.IP {
		v := m.readD(ctx-16, 8, what("ctx[-2] (func ip)", 0))
		c.IP = &v
	}
	if m.runCtx != 0 {
		c.AttachCookie = m.readD(m.runCtx, 8, what("run_ctx->bpf_cookie", 0))
	}
	if pr.Kind.Session() && pr.Cookie {
		ptr := ctx - 8*uint64(c.CookieIndex)
		slot := int64(c.CookieIndex)
		c.CookieSlot = &slot
		v := m.readD(ptr, 8, what("session cookie ctx[-%d]", c.CookieIndex))
		c.CookieRead = &v
		if c.IsReturn == 0 {
			w := trampoline.CookieValueFor(pr.Index)
			c.CookieWritten = &w
			m.writeD(ptr, 8, w, what("session cookie", 0))
		}
	}
	for k := range c.Frame {
		c.Frame[k], c.FrameInit[k] = m.peek(ctx - FrameBelow + 8*uint64(k))
	}
	if p.active {
		p.ran = true
		p.callIdx = len(m.res.Calls)
	}
	m.res.Calls = append(m.res.Calls, c)
	if m.e.s.Arch == "riscv64" {
		// The riscv64 JIT's epilogue leaves BPF R0 in a5 and returns its
		// 32-bit sign extension in a0 ("addiw a0, a5, 0",
		// __build_epilogue); the trampoline keeps both.
		m.stubReturn(uint64(int64(int32(pr.Returns))), true)
		m.regs[15] = uint64(pr.Returns)
		return
	}
	m.stubReturn(uint64(pr.Returns), true)
}

// orig is the traced function's body: it reads its arguments by the
// calling convention and returns the configured value.
func (m *machine) orig() {
	s := &m.e.s
	ret := m.returnAddr()
	fromImage := m.inImage(ret)
	m.res.OrigRuns++
	if fromImage {
		m.res.OrigCalled++
	}
	who := "the traced function"
	if !fromImage {
		who = "the traced function (entered by the trampoline's return)"
	}
	if s.TailCallCtx && s.Arch == "x86_64" && m.regs[0] != m.saved[0] {
		m.violate(CheckTailCallCtx, "%s: rax is %#x, the trampoline was entered with the tail-call counter pointer %#x", who, m.regs[0], m.saved[0])
	}
	if s.Arch == "s390x" {
		m.origS390(who)
		return
	}
	base := m.stackArgBase(m.sp())
	for _, l := range m.e.abi {
		var got uint64
		if l.reg >= 0 {
			got = m.regs[l.reg]
		} else {
			got = m.readD(base+8*uint64(l.stack), 8, desc{who, "stack argument word %d", l.stack})
		}
		want := argWord(m.run.Args[l.arg], l)
		if got&l.mask != want {
			m.violate(CheckOrigArgs, "%s: argument %d word %d is %#x, the caller passed %#x", who, l.arg, l.word, got&l.mask, want)
		}
	}
	r := m.run.OrigRet
	if s.Model.RetSize > 0 && s.Model.RetSize < 8 {
		r &= 1<<(8*s.Model.RetSize) - 1
	}
	m.stubReturn(r, true)
}

// origS390 is the traced function's body on s390x: it reads its
// arguments (through the pointers of those passed by reference, which
// must be the caller's own) and the tail call counter a BPF caller
// passes at 64(%r15) (bpf_jit_insn's BPF_PSEUDO_CALL copies it there
// and back), takes a tail call (the counter goes up by one) and returns
// the configured value.
func (m *machine) origS390(who string) {
	s := &m.e.s
	sp := m.sp()
	base := m.stackArgBase(sp)
	callerBase := m.stackArgBase(m.entrySP)
	for _, l := range m.e.abi {
		var got uint64
		if l.reg >= 0 {
			got = m.regs[l.reg]
		} else {
			got = m.readD(base+8*uint64(l.stack), 8, desc{who, "stack argument word %d", l.stack})
		}
		if l.byRef {
			if l.word == 0 {
				var want uint64
				if l.reg >= 0 {
					want = m.saved[l.reg]
				} else {
					want, _ = m.peekN(callerBase+8*uint64(l.stack), 8)
				}
				if got != want {
					m.violate(CheckOrigArgs, "%s: argument %d is passed by reference at %#x, the caller passed %#x", who, l.arg, got, want)
					continue
				}
			}
			n := 8
			if l.shift != 0 {
				n = 8 - int(l.shift/8)
			}
			got = m.readD(got+8*uint64(l.word), n, desc{who, "argument word %d passed by reference", l.arg})
			want := argWord(m.run.Args[l.arg], l) >> l.shift
			if got != want {
				m.violate(CheckOrigArgs, "%s: argument %d word %d is %#x, the caller passed %#x", who, l.arg, l.word, got, want)
			}
			continue
		}
		want := argWord(m.run.Args[l.arg], l)
		if got&l.mask != want {
			m.violate(CheckOrigArgs, "%s: argument %d is %#x, the caller passed %#x", who, l.arg, got&l.mask, want)
		}
	}
	tcc, tccInit := m.peekN(sp+s390TailCallCntOff, 4)
	if s.TailCallCtx {
		if v := m.readD(sp+s390TailCallCntOff, 4, desc{who, "tail_call_cnt at 64(%r15)", 0}); v != uint64(m.tailCallCnt) {
			m.violate(CheckTailCallCtx, "%s: tail_call_cnt at 64(%%r15) is %#x, the caller passed %#x", who, v, m.tailCallCnt)
		}
	}
	r := m.run.OrigRet
	if s.Model.RetSize > 0 && s.Model.RetSize < 8 {
		r &= 1<<(8*s.Model.RetSize) - 1
	}
	m.stubReturn(r, true)
	// The body's garbage in its save area spares the counter word: a
	// BPF body hands its counter back there, a kernel function leaves
	// the word alone (the trampoline reads it back either way).
	switch {
	case s.TailCallCtx:
		m.tailCallCnt++
		m.poke(sp+s390TailCallCntOff, 4, uint64(m.tailCallCnt))
	case tccInit:
		m.poke(sp+s390TailCallCntOff, 4, tcc)
	}
}
