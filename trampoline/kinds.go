package trampoline

import (
	"fmt"
	"strings"
)

// Kind is what a case calls a program's kind: the attach type a tracing
// program is loaded with, or freplace (an extension program).
type Kind int

// Program kinds.
const (
	KindFentry Kind = iota
	KindFexit
	KindFmodRet
	KindFsession
	KindFreplace
	// The tracing multi-link kinds (7.2+): one program on many functions,
	// attached with link_create.tracing_multi.
	KindFentryMulti
	KindFexitMulti
	KindFsessionMulti
)

var kindNames = [...]string{"fentry", "fexit", "fmod_ret", "fsession", "freplace",
	"fentry.multi", "fexit.multi", "fsession.multi"}

// Kinds lists every kind in a stable order.
func Kinds() []Kind {
	return []Kind{KindFentry, KindFexit, KindFmodRet, KindFsession, KindFreplace,
		KindFentryMulti, KindFexitMulti, KindFsessionMulti}
}

// KindNames lists the kind names case files accept, for messages.
func KindNames() []string { return append([]string(nil), kindNames[:]...) }

// Multi says whether programs of this kind attach through a tracing
// multi link.
func (k Kind) Multi() bool {
	return k == KindFentryMulti || k == KindFexitMulti || k == KindFsessionMulti
}

// Base is the single-function kind whose list, slots and trampoline
// code a multi kind shares on each function (bpf_attach_type_to_tramp
// maps FENTRY_MULTI to FENTRY and so on); a single kind is its own base.
func (k Kind) Base() Kind {
	switch k {
	case KindFentryMulti:
		return KindFentry
	case KindFexitMulti:
		return KindFexit
	case KindFsessionMulti:
		return KindFsession
	}
	return k
}

// Session says whether the kind runs at entry and exit with one program
// (fsession and fsession.multi).
func (k Kind) Session() bool { return k.Base() == KindFsession }

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ParseKind reads a kind name as written in case files.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// MarshalText writes the kind's name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// BPF program types and attach types, as in include/uapi/linux/bpf.h.
const (
	ProgTypeTracing uint32 = 26
	ProgTypeExt     uint32 = 28

	AttachTraceFentry   uint32 = 24
	AttachTraceFexit    uint32 = 25
	AttachModifyReturn  uint32 = 26
	AttachTraceFsession uint32 = 58
	// The tracing multi-link attach types (7.2+).
	AttachTraceFentryMulti   uint32 = 59
	AttachTraceFexitMulti    uint32 = 60
	AttachTraceFsessionMulti uint32 = 61
)

// ProgType is the BPF program type a program of this kind is loaded as.
func (k Kind) ProgType() uint32 {
	if k == KindFreplace {
		return ProgTypeExt
	}
	return ProgTypeTracing
}

// AttachType is the expected_attach_type of a program of this kind
// (0 for extensions, which inherit their target's).
func (k Kind) AttachType() uint32 {
	switch k {
	case KindFentry:
		return AttachTraceFentry
	case KindFexit:
		return AttachTraceFexit
	case KindFmodRet:
		return AttachModifyReturn
	case KindFsession:
		return AttachTraceFsession
	case KindFentryMulti:
		return AttachTraceFentryMulti
	case KindFexitMulti:
		return AttachTraceFexitMulti
	case KindFsessionMulti:
		return AttachTraceFsessionMulti
	}
	return 0
}

// usesTrampolineRetval says whether the kind reads the traced function's
// return value from the trampoline (models attach_uses_trampoline_retval).
func (k Kind) usesTrampolineRetval() bool {
	b := k.Base()
	return b == KindFexit || b == KindFmodRet || b == KindFsession
}

// List is one of the trampoline's program lists, numbered as the
// kernel's enum bpf_tramp_prog_type (FENTRY 0, FEXIT 1, MODIFY_RETURN 2).
type List int

// The three lists.
const (
	ListFentry List = iota
	ListFexit
	ListModReturn
	numLists
)

func (l List) String() string {
	switch l {
	case ListFentry:
		return "fentry"
	case ListFexit:
		return "fexit"
	case ListModReturn:
		return "fmod_ret"
	}
	return fmt.Sprintf("list(%d)", int(l))
}

// Lists gives the lists in kernel index order.
func Lists() []List { return []List{ListFentry, ListFexit, ListModReturn} }

// Flags are the BPF_TRAMP_F_* bits of a trampoline (include/linux/bpf.h).
type Flags uint32

// Trampoline flags.
const (
	FlagRestoreRegs    Flags = 1 << 0
	FlagCallOrig       Flags = 1 << 1
	FlagSkipFrame      Flags = 1 << 2
	FlagIPArg          Flags = 1 << 3
	FlagRetFentryRet   Flags = 1 << 4
	FlagOrigStack      Flags = 1 << 5
	FlagShareIPModify  Flags = 1 << 6
	FlagTailCallCtx    Flags = 1 << 7
	FlagIndirect       Flags = 1 << 8
	flagNamesKnownMask Flags = 1<<9 - 1
)

var flagNames = []string{"RESTORE_REGS", "CALL_ORIG", "SKIP_FRAME", "IP_ARG", "RET_FENTRY_RET",
	"ORIG_STACK", "SHARE_IPMODIFY", "TAIL_CALL_CTX", "INDIRECT"}

// Hex gives the flags as the kernel would print them, e.g. "0x2".
func (f Flags) Hex() string { return fmt.Sprintf("%#x", uint32(f)) }

// String names the set bits, e.g. "CALL_ORIG|IP_ARG", or "0".
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if rest := f &^ flagNamesKnownMask; rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(rest)))
	}
	return strings.Join(parts, "|")
}

// Phase says when a program node runs.
type Phase string

// Phases.
const (
	PhaseEntry  Phase = "entry"
	PhaseExit   Phase = "exit"
	PhaseModRet Phase = "modret"
)

// MarshalText writes the flags in hex, as the kernel's headers define them.
func (f Flags) MarshalText() ([]byte, error) { return []byte(f.Hex()), nil }
