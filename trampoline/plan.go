package trampoline

import (
	"fmt"
	"strconv"
)

// FuncModel is the kernel's struct btf_func_model for the traced
// function, as btf_distill_func_proto fills it.
type FuncModel struct {
	NrArgs   int   `json:"nr_args"`
	ArgSize  []int `json:"arg_size"`
	ArgFlags []int `json:"arg_flags"`
	RetSize  int   `json:"ret_size"`
	RetFlags int   `json:"ret_flags"`
}

// Argument flags of a FuncModel (BTF_FMODEL_*).
const (
	FmodelStructArg = 1 << 0
	FmodelSignedArg = 1 << 1
)

func typeFlags(t Type) int {
	var f int
	if t.Struct {
		f |= FmodelStructArg
	}
	if t.Signed {
		f |= FmodelSignedArg
	}
	return f
}

// ModelOf distills a prototype into a FuncModel.
func ModelOf(p Prototype) FuncModel {
	m := FuncModel{NrArgs: len(p.Args), RetSize: p.Ret.Size, RetFlags: typeFlags(p.Ret)}
	for _, a := range p.Args {
		m.ArgSize = append(m.ArgSize, a.Size)
		m.ArgFlags = append(m.ArgFlags, typeFlags(a))
	}
	return m
}

// ArgSlots is the number of 8-byte argument slots the trampoline saves
// (the low byte of func_meta, and what bpf_get_func_arg_cnt returns):
// x86 nr_regs (every argument wider than 8 bytes counts its extra words
// from 7.2.8 on; before, only struct arguments did), arm64 nfuncargs
// (every argument counts its words).
func (m FuncModel) ArgSlots(a *Arch, p *Profile) int {
	n := 0
	for i, size := range m.ArgSize {
		words := (size + 7) / 8
		if a.Name == "x86_64" && !p.X86WideArgSlots && m.ArgFlags[i]&FmodelStructArg == 0 {
			words = 1
		}
		n += words
	}
	return n
}

// func_meta bit positions (BPF_TRAMP_COOKIE_INDEX_SHIFT,
// BPF_TRAMP_IS_RETURN_SHIFT).
const (
	CookieIndexShift = 8
	IsReturnShift    = 63
)

// FuncMeta composes a func_meta word.
func FuncMeta(argSlots, cookieIndex int, isReturn bool) uint64 {
	v := uint64(argSlots) | uint64(cookieIndex)<<CookieIndexShift
	if isReturn {
		v |= 1 << IsReturnShift
	}
	return v
}

// Node is one program invocation site in the image, in run order.
type Node struct {
	Prog  string `json:"prog"`
	Kind  Kind   `json:"kind"`
	Phase Phase  `json:"phase"`
	// LinkCookie is what bpf_get_attach_cookie returns (for fsession both
	// nodes carry the link's cookie).
	LinkCookie Hex64 `json:"link_cookie"`
	// Cookie: the program calls bpf_session_cookie and has a cookie slot.
	Cookie bool `json:"cookie"`
	// CookieIndex is the slot's distance below ctx in words (bits 8-15
	// of func_meta); 0 unless Cookie.
	CookieIndex int `json:"cookie_index,omitempty"`
	// StoreFuncMeta: func_meta is rewritten to FuncMeta right before this
	// program runs (cookie-using fsession nodes).
	StoreFuncMeta bool  `json:"store_func_meta,omitempty"`
	FuncMeta      Hex64 `json:"func_meta,omitempty"`
	// Enter and Exit are the helpers called around the program
	// (bpf_trampoline_enter / bpf_trampoline_exit).
	Enter string `json:"enter"`
	Exit  string `json:"exit"`
	// SaveRet: the program's return value is stored in the return slot
	// (fmod_ret).
	SaveRet   bool  `json:"save_ret,omitempty"`
	Sleepable bool  `json:"sleepable,omitempty"`
	IP        bool  `json:"ip,omitempty"`
	Returns   int64 `json:"returns,omitempty"`
}

// Plan is everything an architecture generator needs to emit the current
// trampoline image, and nothing it must recompute: the traced function's
// model, the flags, the three lists in run order with their cookie
// indexes, func_meta values and helpers.
type Plan struct {
	Profile string `json:"profile"`
	Arch    string `json:"arch"`
	Target  string `json:"target"`
	// Key and Ksym identify the image (0 and "" when the BTF id is
	// unknown).
	Key  uint64 `json:"key,omitempty"`
	Ksym string `json:"ksym,omitempty"`

	Func FuncModel `json:"func"`
	// ArgSlots is the argument slot count (x86 nr_regs, arm64 nfuncargs).
	ArgSlots int   `json:"arg_slots"`
	Flags    Flags `json:"flags"`
	// JmpMode: the traced function jumps to the trampoline (x86 CALL_ORIG
	// under CONFIG_DYNAMIC_FTRACE_WITH_JMP): no return address is pushed.
	JmpMode bool `json:"jmp_mode"`

	Fentry    []Node `json:"fentry"`
	Fexit     []Node `json:"fexit"`
	ModReturn []Node `json:"fmod_ret"`

	// CookieCount is the number of cookie slots (cookie-using fsession
	// programs); FsessionCount the number of fsession programs.
	CookieCount   int `json:"cookie_count"`
	FsessionCount int `json:"fsession_count"`
	// EntryFuncMeta is stored to ctx[-1] after the prologue;
	// ExitFuncMeta once before the FEXIT list when FsessionCount > 0.
	EntryFuncMeta Hex64 `json:"entry_func_meta"`
	ExitFuncMeta  Hex64 `json:"exit_func_meta,omitempty"`

	// Byte-changing profile facts the generator must honour.
	SkipNOP        bool `json:"skip_nop"`
	IPAfterCallNOP bool `json:"ip_after_call_nop"`
	// ArgCountOnly: ctx[-1] holds the bare argument count, stored once
	// (before 7.0's func_meta); arm64 loads it with a 64-bit movz.
	ArgCountOnly bool `json:"arg_count_only,omitempty"`
	// A64MovIsAdd: arm64's A64_MOV of general registers is "add xd, xn,
	// #0" rather than "orr xd, xzr, xm" (before 7.0).
	A64MovIsAdd bool `json:"a64_mov_is_add,omitempty"`
	// RiscvTCCStack: riscv64 saves and restores the tail call counter
	// (a6) under BPF_TRAMP_F_TAIL_CALL_CTX (Profile.RiscvTCCStack).
	RiscvTCCStack bool `json:"riscv_tcc_stack,omitempty"`
	// ModRetExtended and ModRetSkipsIsReturn are the arch's (Arch).
	ModRetExtended      bool `json:"modret_extended,omitempty"`
	ModRetSkipsIsReturn bool `json:"modret_skips_is_return,omitempty"`
}

// Helper symbols (bpf_trampoline_enter/exit in kernel/bpf/trampoline.c).
const (
	HelperTrampEnter            = "__bpf_tramp_enter"
	HelperTrampExit             = "__bpf_tramp_exit"
	HelperProgEnterRecur        = "__bpf_prog_enter_recur"
	HelperProgExitRecur         = "__bpf_prog_exit_recur"
	HelperProgEnterSleepableRec = "__bpf_prog_enter_sleepable_recur"
	HelperProgExitSleepableRec  = "__bpf_prog_exit_sleepable_recur"
	HelperProgEnter             = "__bpf_prog_enter"
	HelperProgExit              = "__bpf_prog_exit"
	HelperProgEnterSleepable    = "__bpf_prog_enter_sleepable"
	HelperProgExitSleepable     = "__bpf_prog_exit_sleepable"
)

// helpers picks the enter/exit pair for a program (bpf_trampoline_enter):
// tracing programs other than iterators check recursion; extensions and
// others do not.
func helpers(p *Prog) (enter, exit string) {
	recur := p.Kind != KindFreplace // bpf_prog_check_recur: TRACING, not ITER
	switch {
	case recur && p.Sleepable:
		return HelperProgEnterSleepableRec, HelperProgExitSleepableRec
	case recur:
		return HelperProgEnterRecur, HelperProgExitRecur
	case p.Sleepable:
		return HelperProgEnterSleepable, HelperProgExitSleepable
	}
	return HelperProgEnter, HelperProgExit
}

// Plan derives the generator's input from the current state. It is
// meaningful while HasImage (with no program attached the lists are
// empty).
func (t *Trampoline) Plan() *Plan {
	fm := ModelOf(t.Target.Proto)
	p := &Plan{
		Profile:        t.Profile.Name,
		Arch:           t.Arch.Name,
		Target:         t.Target.Name,
		Key:            t.Target.Key(),
		Ksym:           t.Target.KsymName(),
		Func:           fm,
		ArgSlots:       fm.ArgSlots(t.Arch, t.Profile),
		Flags:          t.flags,
		SkipNOP:        t.Profile.SkipNOP,
		IPAfterCallNOP: t.Profile.IPAfterCallNOP,
		ArgCountOnly:   !t.Profile.FuncMeta,
		A64MovIsAdd:    t.Profile.A64MovIsAdd,
		RiscvTCCStack:  t.Profile.RiscvTCCStack,

		ModRetExtended:      t.Arch.ModRetExtended,
		ModRetSkipsIsReturn: t.Arch.ModRetSkipsIsReturn,
	}
	p.JmpMode = p.Flags&FlagCallOrig != 0 && p.Flags&FlagSkipFrame == 0 && t.Arch.Name == "x86_64"
	for _, n := range t.lists[ListFentry] {
		if n.link.Prog.Kind.Session() {
			p.FsessionCount++
			if n.link.Prog.Cookie {
				p.CookieCount++
			}
		}
	}
	p.EntryFuncMeta = Hex64(p.ArgSlots)
	if p.FsessionCount > 0 {
		p.ExitFuncMeta = Hex64(FuncMeta(p.ArgSlots, 0, true))
	}
	ip := 0
	if p.Flags&FlagIPArg != 0 || t.Arch.IPSlotAlways {
		ip = 1
	}
	// The first cookie-using node of a list gets the lowest cookie slot:
	// index cookie_cnt + 1 (func_meta) + ip below ctx, counting down.
	first := p.CookieCount + 1 + ip
	build := func(l List, phase Phase) []Node {
		var out []Node
		idx := first
		for _, n := range t.lists[l] {
			pr := n.link.Prog
			enter, exit := helpers(pr)
			ph := phase
			if pr.Kind.Session() {
				ph = PhaseEntry
				if n.exit {
					ph = PhaseExit
				}
			}
			nd := Node{Prog: pr.Name, Kind: pr.Kind, Phase: ph, LinkCookie: Hex64(n.cookie),
				Enter: enter, Exit: exit, SaveRet: l == ListModReturn, Sleepable: pr.Sleepable,
				IP: pr.IP, Returns: pr.Returns}
			if pr.Kind.Session() && pr.Cookie && t.Profile.FuncMeta {
				nd.Cookie = true
				nd.CookieIndex = idx
				nd.StoreFuncMeta = true
				nd.FuncMeta = Hex64(FuncMeta(p.ArgSlots, idx, n.exit))
				idx--
			}
			out = append(out, nd)
		}
		return out
	}
	p.Fentry = build(ListFentry, PhaseEntry)
	p.Fexit = build(ListFexit, PhaseExit)
	p.ModReturn = build(ListModReturn, PhaseModRet)
	return p
}

// Hex64 is a 64-bit value that JSON shows in hex ("0x8000000000000201").
type Hex64 uint64

// MarshalText writes the value in hex.
func (h Hex64) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%#x", uint64(h))), nil }

// UnmarshalText reads a hex (or decimal) value.
func (h *Hex64) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 0, 64)
	if err != nil {
		return fmt.Errorf("bad 64-bit value %q: %w", b, err)
	}
	*h = Hex64(v)
	return nil
}
