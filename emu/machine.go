package emu

import (
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
)

type stub struct {
	kind stubKind
	name string
	prog int // stubBPFFunc: index in Setup.Progs
}

// Emulator runs one image; decoded instructions are kept across runs.
type Emulator struct {
	s     Setup
	stubs map[uint64]stub
	// ptrProg maps known struct bpf_prog pointers to program indexes.
	ptrProg map[uint64]int
	x86     []*xop
	a64     []*aop
	// abi is where each argument word goes at the traced function's
	// entry.
	abi []argLoc
	// stackArgWords is the number of stack-passed argument words.
	stackArgWords int
}

// New prepares an emulator for an image.
func New(s Setup) (*Emulator, error) {
	e := &Emulator{s: s, stubs: map[uint64]stub{}, ptrProg: map[uint64]int{}}
	switch s.Arch {
	case "x86_64":
		e.x86 = make([]*xop, len(s.Code))
	case "arm64":
		e.a64 = make([]*aop, (len(s.Code)+3)/4)
	default:
		return nil, fmt.Errorf("emu: no machine for arch %q (x86_64, arm64)", s.Arch)
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
		switch {
		case name == trampoline.HelperTrampEnter:
			k = stubTrampEnter
		case name == trampoline.HelperTrampExit:
			k = stubTrampExit
		case strings.HasPrefix(name, "__bpf_prog_enter"):
			k = stubProgEnter
		case strings.HasPrefix(name, "__bpf_prog_exit"):
			k = stubProgExit
		case name == "x86_return_thunk" && s.Arch == "x86_64":
			k = stubReturnThunk
		default:
			continue
		}
		if err := add(addr, stub{kind: k, name: name}); err != nil {
			return nil, err
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

	regs [32]uint64 // x86: rax..r15; arm64: x0..x30, [31] = sp
	pc   uint64
	// x86 flags.
	zf, sf, cf, of bool

	stack [stackSize]byte
	init  [stackSize]bool
	// low is the lowest stack address written (for the reset).
	entrySP    uint64
	parentSlot uint64 // x86: where the caller's return address is
	saved      [32]uint64

	stop     bool
	insns    int
	curOff   int
	trampIn  int
	trampOut int
	im       uint64
	runCtx   uint64
	pending  pendingProg
	startCtr uint64
	learned  map[uint64]int
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
	if m.e.s.Arch == "x86_64" {
		return m.regs[4]
	}
	return m.regs[31]
}

// read reads n bytes little-endian; it reports uninitialised bytes and
// accesses outside the stack.
func (m *machine) read(addr uint64, n int, what string) uint64 {
	if !inStack(addr, n) {
		m.fatal(CheckFrame, "%s: read of %d bytes at %#x, outside the stack", what, n, addr)
		return 0
	}
	o := addr - stackLow
	var v uint64
	bad := false
	for i := n - 1; i >= 0; i-- {
		if !m.init[o+uint64(i)] {
			bad = true
		}
		v = v<<8 | uint64(m.stack[o+uint64(i)])
	}
	if bad {
		m.violate(CheckUninit, "%s: read of %d bytes at %s includes uninitialised bytes", what, n, m.where(addr))
	}
	return v
}

// peek reads a word without checks (ok: fully initialised).
func (m *machine) peek(addr uint64) (uint64, bool) {
	if !inStack(addr, 8) {
		return 0, false
	}
	o := addr - stackLow
	var v uint64
	ok := true
	for i := 7; i >= 0; i-- {
		ok = ok && m.init[o+uint64(i)]
		v = v<<8 | uint64(m.stack[o+uint64(i)])
	}
	return v, ok
}

// write stores n bytes; it must land in the trampoline's frame: at or
// above sp and below the entry stack pointer.
func (m *machine) write(addr uint64, n int, v uint64, what string) {
	if !inStack(addr, n) {
		m.fatal(CheckFrame, "%s: write of %d bytes at %#x, outside the stack", what, n, addr)
		return
	}
	if sp := m.sp(); addr < sp || addr+uint64(n) > m.entrySP {
		m.violate(CheckFrame, "%s: write of %d bytes at %s, outside the frame [sp %s, entry sp %s)", what, n, m.where(addr), m.where(sp), m.where(m.entrySP))
	}
	m.poke(addr, n, v)
}

func (m *machine) poke(addr uint64, n int, v uint64) {
	o := addr - stackLow
	for i := 0; i < n; i++ {
		m.stack[o+uint64(i)] = byte(v >> (8 * i))
		m.init[o+uint64(i)] = true
	}
}

// where names a stack address relative to the entry stack pointer.
func (m *machine) where(addr uint64) string {
	d := int64(addr - m.entrySP)
	return fmt.Sprintf("%#x (entry sp%+d)", addr, d)
}

// scribbleBelow leaves a callee's garbage below sp.
func (m *machine) scribbleBelow() {
	sp := m.sp()
	lo := sp - scribble
	if lo < stackLow {
		lo = stackLow
	}
	for a := lo; a < sp && a < stackTop; a++ {
		m.stack[a-stackLow] = poisonByte
		m.init[a-stackLow] = false
	}
}

// Run executes the image once.
func (e *Emulator) Run(r Run) *Result {
	m := &machine{e: e, run: &r, res: &Result{}, curOff: -1}
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
			if e.x86 != nil {
				m.stepX86()
			} else {
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
		m.callStub(st)
	}
	m.res.Insns = m.insns
	return m.res
}
