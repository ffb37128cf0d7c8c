package emu

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/trampoline"
)

// The emulated kernel stack.
const (
	stackTop  = 0xffffc90000a0c000
	stackSize = 0x2000
	stackLow  = stackTop - stackSize
	// entryTop is where the traced function's caller's frame starts: the
	// area above it is never initialised.
	entryTop = stackTop - 0x400
	// scribble is how far below sp a stub leaves garbage when it returns
	// (a real callee's frame).
	scribble = 256
	// parentRet is the return address in the traced function's caller.
	parentRet = 0xffffffff8badc0de
)

// Poison values: registers start with poisonReg|n, stubs clobber
// caller-saved registers with poisonCall|n and the stack they used with
// poisonByte.
const (
	poisonReg  = 0x5a5a5a5a00000000
	poisonCall = 0xdeadbeef00000000
	poisonByte = 0xa5
)

type stubKind uint8

const (
	stubTrampEnter stubKind = iota + 1
	stubTrampExit
	stubProgEnter
	stubProgExit
	stubBPFFunc
	stubOrig
	stubReturnThunk
	// stubJumpThunk is an s390x expoline thunk (__s390_indirect_jump_rN):
	// it branches to %rN.
	stubJumpThunk
)

type stub struct {
	kind stubKind
	name string
	prog int // stubBPFFunc: index in Setup.Progs
	reg  int // stubJumpThunk: the register it branches to
}

// Emulator runs one image; decoded instructions are kept across runs.
type Emulator struct {
	s     Setup
	stubs map[uint64]stub
	// ptrProg maps known struct bpf_prog pointers to program indexes.
	ptrProg map[uint64]int
	x86     []*xop
	a64     []*aop
	rv      []*rop // riscv64: one per 2-byte parcel
	sz      []*sop // s390x: one per halfword
	// be: the machine is big-endian (s390x): memory words are stored
	// most significant byte first.
	be bool
	// abi is where each argument word goes at the traced function's
	// entry.
	abi []argLoc
	// stackArgWords is the number of stack-passed argument words.
	stackArgWords int
	// exitOf pairs each enter helper with its exit helper.
	exitOf map[string]string
	m      *machine
}

// New prepares an emulator for an image.
func New(s Setup) (*Emulator, error) {
	e := &Emulator{s: s, stubs: map[uint64]stub{}, ptrProg: map[uint64]int{}, exitOf: map[string]string{}}
	switch s.Arch {
	case "x86_64":
		e.x86 = make([]*xop, len(s.Code))
	case "arm64":
		e.a64 = make([]*aop, (len(s.Code)+3)/4)
	case "riscv64":
		e.rv = make([]*rop, (len(s.Code)+1)/2)
	case "s390x":
		e.sz = make([]*sop, (len(s.Code)+1)/2)
		e.be = true
	default:
		return nil, fmt.Errorf("emu: no machine for arch %q (x86_64, arm64, riscv64, s390x)", s.Arch)
	}
	add := func(addr uint64, st stub) error {
		if prev, ok := e.stubs[addr]; ok && prev != st {
			return fmt.Errorf("emu: %s and %s share the address %#x", prev.name, st.name, addr)
		}
		if addr >= s.Base && addr < s.Base+uint64(len(s.Code)) {
			return fmt.Errorf("emu: %s at %#x lies inside the image", st.name, addr)
		}
		e.stubs[addr] = st
		return nil
	}
	for name, addr := range s.Symbols {
		var k stubKind
		reg := 0
		switch {
		case name == trampoline.HelperTrampEnter:
			k = stubTrampEnter
		case name == trampoline.HelperTrampExit:
			k = stubTrampExit
		case strings.HasPrefix(name, "__bpf_prog_enter"):
			k = stubProgEnter
		case strings.HasPrefix(name, "__bpf_prog_exit"):
			k = stubProgExit
		case strings.HasSuffix(name, "return_thunk") && s.Arch == "x86_64":
			// x86_return_thunk itself (the generic placeholder) and every
			// thunk it may point at: each returns.
			k = stubReturnThunk
		case s.Arch == "s390x":
			r, ok := s390ThunkReg(name)
			if !ok {
				continue
			}
			k, reg = stubJumpThunk, r
		default:
			continue
		}
		if err := add(addr, stub{kind: k, name: name, reg: reg}); err != nil {
			return nil, err
		}
		if k == stubProgEnter {
			e.exitOf[name] = strings.Replace(name, "enter", "exit", 1)
		}
	}
	for i, p := range s.Progs {
		if err := add(p.BPFFunc, stub{kind: stubBPFFunc, name: "bpf_func:" + p.Name, prog: i}); err != nil {
			return nil, err
		}
		if p.Ptr != 0 {
			e.ptrProg[p.Ptr] = i
		}
	}
	if err := add(s.OrigEntry, stub{kind: stubOrig, name: "original function"}); err != nil {
		return nil, err
	}
	if _, ok := e.stubs[parentRet]; ok {
		return nil, fmt.Errorf("emu: a stub sits at the caller's return address %#x", uint64(parentRet))
	}
	e.abi, e.stackArgWords = placeArgs(s.Arch, s.Model)
	return e, nil
}

// pendingProg is a program between its enter and exit helper.
type pendingProg struct {
	active  bool
	prog    int // -1: not known yet
	ptr     uint64
	runCtx  uint64
	start   uint64
	helper  string
	ran     bool
	callIdx int
}

// machine is the state of one run.
type machine struct {
	e   *Emulator
	run *Run
	res *Result

	regs [32]uint64 // x86: rax..r15; arm64: x0..x30, [31] = sp; riscv64: x0..x31 (x2 = sp); s390x: r0..r15
	pc   uint64
	// x86 flags.
	zf, sf, cf, of bool
	// s390x condition code (ccSet: an instruction set it since the last
	// call).
	cc    uint8
	ccSet bool
	// callDepth is the per-CPU call-depth counter the x86 accounting
	// template shifts (the kernel starts it with the top bit set);
	// callDepthOps counts those shifts.
	callDepth    uint64
	callDepthOps int

	stack *[stackSize]byte
	init  *[stackSize]bool
	// low is the lowest stack address written (for the reset).
	low     uint64
	entrySP uint64
	// frameTop is the end of the area the trampoline may write: the
	// entry stack pointer, on s390x the end of the register save area
	// the traced function's caller allocated below its backchain.
	frameTop uint64
	// tailCallCnt (s390x) is the tail call counter the traced function's
	// body must find at 64(%r15) and the caller must get back.
	tailCallCnt uint32
	parentSlot  uint64 // x86: where the caller's return address is
	saved       [32]uint64

	stop      bool
	insns     int
	stubCalls int
	curOff    int
	trampIn   int
	trampOut  int
	im        uint64
	runCtx    uint64
	pending   pendingProg
	startCtr  uint64
	learned   map[uint64]int
}

func (m *machine) violate(check, format string, args ...any) {
	m.res.Violations = append(m.res.Violations, Violation{Check: check, Off: m.curOff, Msg: fmt.Sprintf(format, args...)})
}

func (m *machine) fatal(check, format string, args ...any) {
	m.violate(check, format, args...)
	m.stop = true
}

func inStack(addr uint64, n int) bool {
	return addr >= stackLow && addr+uint64(n) <= stackTop && addr+uint64(n) > addr
}

// sp is the stack pointer.
func (m *machine) sp() uint64 {
	switch m.e.s.Arch {
	case "x86_64":
		return m.regs[4]
	case "riscv64":
		return m.regs[2]
	case "s390x":
		return m.regs[15]
	}
	return m.regs[31]
}

// desc names what a stub reads, formatted only when a check fails.
type desc struct {
	who, what string
	k         int
}

func (d desc) String() string {
	w := d.what
	if strings.Contains(w, "%d") {
		w = fmt.Sprintf(w, d.k)
	}
	if d.who == "" {
		return w
	}
	return d.who + ": " + w
}

// read reads n bytes in the machine's byte order (little-endian, or
// big-endian on s390x); it reports uninitialised bytes and accesses
// outside the stack.
func (m *machine) read(addr uint64, n int, what string) uint64 {
	return m.readD(addr, n, desc{what: what})
}

func (m *machine) readD(addr uint64, n int, d desc) uint64 {
	if !inStack(addr, n) {
		m.fatal(CheckFrame, "%s: read of %d bytes at %#x, outside the stack", d, n, addr)
		return 0
	}
	o := addr - stackLow
	var v uint64
	bad := false
	if m.e.be {
		for i := 0; i < n; i++ {
			if !m.init[o+uint64(i)] {
				bad = true
			}
			v = v<<8 | uint64(m.stack[o+uint64(i)])
		}
	} else {
		for i := n - 1; i >= 0; i-- {
			if !m.init[o+uint64(i)] {
				bad = true
			}
			v = v<<8 | uint64(m.stack[o+uint64(i)])
		}
	}
	if bad {
		m.violate(CheckUninit, "%s: read of %d bytes at %s includes uninitialised bytes", d, n, m.where(addr))
	}
	return v
}

// peek reads a word without checks (ok: fully initialised).
func (m *machine) peek(addr uint64) (uint64, bool) {
	if !inStack(addr, 8) {
		return 0, false
	}
	o := addr - stackLow
	in := m.init[o : o+8]
	ok := in[0] && in[1] && in[2] && in[3] && in[4] && in[5] && in[6] && in[7]
	if m.e.be {
		return binary.BigEndian.Uint64(m.stack[o : o+8]), ok
	}
	return binary.LittleEndian.Uint64(m.stack[o : o+8]), ok
}

// write stores n bytes; it must land in the trampoline's frame: at or
// above sp and below the entry stack pointer (on s390x below frameTop:
// the traced function's own part of its caller's frame).
func (m *machine) write(addr uint64, n int, v uint64, what string) {
	m.writeD(addr, n, v, desc{what: what})
}

func (m *machine) writeD(addr uint64, n int, v uint64, what desc) {
	if !inStack(addr, n) {
		m.fatal(CheckFrame, "%s: write of %d bytes at %#x, outside the stack", what, n, addr)
		return
	}
	m.checkWrite(addr, n, what)
	m.poke(addr, n, v)
}

// checkWrite reports a write of n bytes at addr outside the frame.
func (m *machine) checkWrite(addr uint64, n int, what desc) {
	if sp := m.sp(); addr < sp || addr+uint64(n) > m.frameTop {
		end := "entry sp " + m.where(m.entrySP)
		if m.frameTop != m.entrySP {
			end = "frame top " + m.where(m.frameTop)
		}
		m.violate(CheckFrame, "%s: write of %d bytes at %s, outside the frame [sp %s, %s)", what, n, m.where(addr), m.where(sp), end)
	}
}

// poke stores n bytes in the machine's byte order, unchecked.
func (m *machine) poke(addr uint64, n int, v uint64) {
	m.touch(addr)
	o := addr - stackLow
	for i := 0; i < n; i++ {
		sh := 8 * i
		if m.e.be {
			sh = 8 * (n - 1 - i)
		}
		m.stack[o+uint64(i)] = byte(v >> sh)
		m.init[o+uint64(i)] = true
	}
}

// peekN reads n bytes without checks (ok: all initialised).
func (m *machine) peekN(addr uint64, n int) (uint64, bool) {
	if !inStack(addr, n) {
		return 0, false
	}
	o := addr - stackLow
	var v uint64
	ok := true
	for i := 0; i < n; i++ {
		k := i
		if !m.e.be {
			k = n - 1 - i
		}
		ok = ok && m.init[o+uint64(k)]
		v = v<<8 | uint64(m.stack[o+uint64(k)])
	}
	return v, ok
}

// peek4 is a 4-byte peekN that ignores initialisation.
func (m *machine) peek4(addr uint64) uint32 {
	v, _ := m.peekN(addr, 4)
	return uint32(v)
}

// where names a stack address relative to the entry stack pointer.
func (m *machine) where(addr uint64) string {
	d := int64(addr - m.entrySP)
	return fmt.Sprintf("%#x (entry sp%+d)", addr, d)
}

// scribbleBelow leaves a callee's garbage below sp.
func (m *machine) scribbleBelow() {
	sp := m.sp()
	if sp > stackTop {
		return
	}
	lo := sp - scribble
	if lo < stackLow || lo > sp {
		lo = stackLow
	}
	if sp <= lo {
		return
	}
	a, b := lo-stackLow, sp-stackLow
	copy(m.stack[a:b], poisonBytes[:b-a])
	clear(m.init[a:b])
	m.touch(lo)
}

// scribbleSaveArea (s390x) leaves a callee's garbage in the register
// save area its caller allocated for it: the STACK_FRAME_OVERHEAD bytes
// at %r15 up to the backchain.
func (m *machine) scribbleSaveArea() {
	sp := m.sp()
	if !inStack(sp, s390BackchainOff) {
		return
	}
	o := sp - stackLow
	copy(m.stack[o:o+s390BackchainOff], poisonBytes[:s390BackchainOff])
	clear(m.init[o : o+s390BackchainOff])
	m.touch(sp)
}

var poisonBytes = func() (b [scribble]byte) {
	for i := range b {
		b[i] = poisonByte
	}
	return
}()

// touch records the lowest stack address a run changed.
func (m *machine) touch(addr uint64) {
	if addr < m.low {
		m.low = addr
	}
}

// reset prepares the machine for another run: only the part of the
// stack the last run changed is cleared.
func (m *machine) reset(r *Run) {
	if m.low < stackTop {
		clear(m.stack[m.low-stackLow:])
		clear(m.init[m.low-stackLow:])
	}
	*m = machine{e: m.e, stack: m.stack, init: m.init, low: stackTop, callDepth: 1 << 63}
	m.run = r
	m.res = &Result{}
	m.curOff = -1
}

// Run executes the image once.
//
// An Emulator runs one image at a time: it is not safe for concurrent
// use.
func (e *Emulator) Run(r Run) *Result {
	m := e.m
	if m == nil {
		m = &machine{e: e, stack: new([stackSize]byte), init: new([stackSize]bool), low: stackTop, callDepth: 1 << 63}
		e.m = m
	}
	m.reset(&r)
	if r.MaxInsns == 0 {
		r.MaxInsns = 100000
	}
	if len(r.Args) != e.s.Model.NrArgs {
		m.violate(CheckOrigArgs, "the run has %d arguments, the function takes %d", len(r.Args), e.s.Model.NrArgs)
		return m.res
	}
	m.enter()
	for !m.stop {
		if m.insns >= r.MaxInsns {
			m.fatal(CheckLimit, "%d instructions without returning", m.insns)
			break
		}
		pc := m.pc
		if pc >= e.s.Base && pc < e.s.Base+uint64(len(e.s.Code)) {
			m.curOff = int(pc - e.s.Base)
			m.insns++
			switch {
			case e.x86 != nil:
				m.stepX86()
			case e.rv != nil:
				m.stepRV()
			case e.sz != nil:
				m.stepS390()
			default:
				m.stepA64()
			}
			continue
		}
		m.curOff = -1
		if pc == parentRet {
			m.finish()
			break
		}
		st, ok := e.stubs[pc]
		if !ok {
			m.fatal(CheckControl, "control reached %#x, neither the image [%#x, %#x) nor a known function", pc, e.s.Base, e.s.Base+uint64(len(e.s.Code)))
			break
		}
		m.stubCalls++
		if m.stubCalls > r.MaxInsns {
			m.fatal(CheckLimit, "%d calls of functions outside the image without returning", m.stubCalls)
			break
		}
		m.callStub(st)
	}
	m.res.Insns = m.insns
	return m.res
}
