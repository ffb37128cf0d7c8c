package trampoline

import (
	"fmt"
	"sort"
	"strings"
)

// Profile names one kernel build and the facts of it that change what the
// model says: which attach types exist and how the trampoline is laid out.
type Profile struct {
	// Name is how cases and flags refer to the profile.
	Name string
	// Version is the kernel release.
	Version string
	// Fsession: the kernel knows BPF_TRACE_FSESSION (7.0+). Before that a
	// load with attach type 58 fails with EINVAL.
	Fsession bool
	// TracingMulti: the kernel knows the tracing multi-link attach types
	// BPF_TRACE_FENTRY_MULTI, FEXIT_MULTI and FSESSION_MULTI (7.2+; BTF's
	// enum bpf_attach_type states it). Before, a load with one of them
	// fails with EINVAL.
	TracingMulti bool
	// FuncMeta: ctx[-1] holds func_meta (nr_args | cookie index << 8 |
	// is_return << 63) rather than the bare argument count (7.0+).
	FuncMeta bool
	// SkipNOP: every program block starts with a NOP that is patched into a
	// jump when that program is detached while the image is in use, and
	// the NOP after the original call is gone (7.2.10+, "bpf: Skip
	// detached progs in trampoline images that are still in use").
	SkipNOP bool
	// IPAfterCallNOP: a NOP follows the store of the original function's
	// return value (im->ip_after_call; up to 7.2.9).
	IPAfterCallNOP bool
	// A64MovIsAdd: arm64's A64_MOV of general registers is "add xd, xn,
	// #0" (live: every register move in the 6.18.15 images is an add).
	A64MovIsAdd bool
	// X86JmpMode: CONFIG_DYNAMIC_FTRACE_WITH_JMP; a trampoline that calls
	// the original function is entered by jmp and has no SKIP_FRAME.
	X86JmpMode bool
	// X86WideArgSlots: on x86_64 every argument wider than 8 bytes takes
	// more than one slot (7.2.8+); before, only struct arguments did.
	X86WideArgSlots bool
	// RiscvTCCStack: the riscv64 JIT keeps the tail call counter in the
	// program's stack frame and honours BPF_TRAMP_F_TAIL_CALL_CTX (7.3+):
	// the trampoline saves a6 in a slot below s1's and loads it back
	// around the original call and before it returns.
	RiscvTCCStack bool
	// ErrorInjection: CONFIG_FUNCTION_ERROR_INJECTION (the source profile
	// assumes a config with it). Debian's cloud kernels lack it; then the verifier lets sleepable and fmod_ret
	// programs attach to the arch's syscall wrappers (has_arch_syscall_prefix)
	// and ignores ALLOW_ERROR_INJECTION marks.
	ErrorInjection bool
	// SyscallPrefixArches, when not nil, are the only arches whose
	// syscall wrappers that fallback recognises. Measured: 6.18.15 refuses
	// fmod_ret and sleepable programs on __x64_sys_* and __arm64_sys_*
	// alike (EINVAL, "not modifiable" / "not sleepable"); 7.2.13 and 7.3.4
	// accept both.
	SyscallPrefixArches []string
	// MaxLinks, when set for an arch, is the number of trampoline slots
	// this kernel allows instead of the arch's default BPF_MAX_TRAMP_LINKS.
	// The kernel states it: BPF_MAX_TRAMP_LINKS is an enum value in its
	// vmlinux BTF (package vm/facts reads it; its tests hold these tables
	// to the cached kernels). Debian 7.2.13 and 7.3.4 say 36 on amd64 and
	// 37 on arm64, which is also where they refuse the next slot with
	// E2BIG (36 fentry, 36 fmod_ret, 18 fsession on amd64; 37 fentry or
	// fexit, 18 fsession on arm64); 6.18.15 says 38 on both.
	MaxLinks map[string]int
	// JIT, when set for an arch, says whether this build has the BPF JIT
	// there (CONFIG_BPF_JIT, which the build config states; package
	// vm/facts reads it) instead of the arch's default (Arch.NoJIT,
	// Debian's builds). A kernel built from Debian's s390x source for
	// z196 has the JIT that Debian's own z10 build lacks.
	JIT map[string]bool
	// Arches, when set, are the only arches the build exists for (a
	// rebuild of one arch); cases apply to it only there.
	Arches []string
	// Live says the profile's behaviour was checked against a real kernel
	// of that build; a source-only profile models a tree that was read.
	Live bool
}

// btf72x are the slot limits Debian 7.2.13 and 7.3.4 state in their BTF
// (enum value BPF_MAX_TRAMP_LINKS).
var btf72x = map[string]int{"x86_64": 36, "arm64": 37}

var profiles = []*Profile{
	{Name: "debian-7.2.13", Version: "7.2.13", Fsession: true, TracingMulti: true, FuncMeta: true, SkipNOP: true,
		X86JmpMode: true, X86WideArgSlots: true, MaxLinks: btf72x, Live: true},
	{Name: "debian-7.3.4", Version: "7.3.4", Fsession: true, TracingMulti: true, FuncMeta: true, SkipNOP: true,
		X86JmpMode: true, X86WideArgSlots: true, RiscvTCCStack: true, MaxLinks: btf72x, Live: true},
	{Name: "linux-7.2.8", Version: "7.2.8", Fsession: true, TracingMulti: true, FuncMeta: true, IPAfterCallNOP: true,
		X86JmpMode: true, X86WideArgSlots: true, ErrorInjection: true},
	{Name: "debian-6.18.15", Version: "6.18.15", IPAfterCallNOP: true, A64MovIsAdd: true, Live: true,
		SyscallPrefixArches: []string{}},
	// Debian's s390x 7.2.13 source and config built for z196 (tramp vm
	// build): the JIT Debian's own z10 build lacks; its BTF states 27
	// slots, its config no error injection.
	{Name: "debian-7.2.13+z196", Version: "7.2.13", Fsession: true, TracingMulti: true, FuncMeta: true, SkipNOP: true,
		X86JmpMode: true, X86WideArgSlots: true, MaxLinks: map[string]int{"s390x": 27}, JIT: map[string]bool{"s390x": true},
		Arches: []string{"s390x"}, Live: true},
	// Debian's 7.3.4 source with its 7.3 s390x config, built for z196 by
	// trixie's gcc 14 (the pool serves no 7.3.4 s390x); its BTF states
	// 27 slots.
	{Name: "debian-7.3.4+z196", Version: "7.3.4", Fsession: true, TracingMulti: true, FuncMeta: true, SkipNOP: true,
		X86JmpMode: true, X86WideArgSlots: true, RiscvTCCStack: true, MaxLinks: map[string]int{"s390x": 27}, JIT: map[string]bool{"s390x": true},
		Arches: []string{"s390x"}, Live: true},
}

// DefaultProfile is the primary profile: the kernel in Debian sid.
const DefaultProfile = "debian-7.2.13"

// Profiles lists every known profile, primary first.
func Profiles() []*Profile { return append([]*Profile(nil), profiles...) }

// ProfileNames lists the names of all profiles.
func ProfileNames() []string {
	var n []string
	for _, p := range profiles {
		n = append(n, p.Name)
	}
	return n
}

// LookupProfile finds a profile by name.
func LookupProfile(name string) (*Profile, error) {
	for _, p := range profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("unknown kernel profile %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
}

// SubprogTailcalls says whether this build's JIT on a supports tail calls
// from subprograms (bpf_jit_supports_subprog_tailcalls): the arch's in
// every build, or riscv64's from 7.3 on, where it came with the counter
// on the stack (RiscvTCCStack).
func (p *Profile) SubprogTailcalls(a *Arch) bool {
	return a.SubprogTailcalls || a.Name == "riscv64" && p.RiscvTCCStack
}

// Supports says whether programs of kind k can be loaded at all on this
// kernel (freplace needs a BPF-program target, which is the case's
// business, not the profile's).
func (p *Profile) Supports(k Kind) bool {
	if k.Multi() {
		return p.TracingMulti && p.Supports(k.Base())
	}
	return k != KindFsession || p.Fsession
}

// Arch is the architecture the trampoline is built for, with the JIT's
// capabilities the model needs.
type Arch struct {
	Name string
	// NoJIT: Debian builds this arch without the BPF JIT (CONFIG_BPF_JIT
	// unset), so no trampoline can be built and every tracing program is
	// refused at load. Debian's s390x kernels are built for z10
	// (CONFIG_MARCH_Z10), and arch/s390 selects HAVE_EBPF_JIT only from
	// z196 on; package vm/facts holds this to each build's config. It is
	// the default: a profile's JIT, stated by its config, overrides it
	// (Profile.HasJIT).
	NoJIT bool
	// FsessionJIT: bpf_jit_supports_fsession() is true.
	FsessionJIT bool
	// MaxLinks is BPF_MAX_TRAMP_LINKS: the slots of one trampoline, summed
	// over its three lists.
	MaxLinks int
	// Generator: tramp has a byte-exact generator and a VM for it.
	Generator bool
	// SyscallPrefix starts the names of the arch's syscall wrappers
	// (has_arch_syscall_prefix in the verifier).
	SyscallPrefix string
	// TracingMulti: the arch can attach tracing multi links.
	TracingMulti bool
	// IPSlotAlways: the JIT keeps the ip slot (ctx[-2]) whether or not
	// BPF_TRAMP_F_IP_ARG asks for it, so the session cookies start one
	// word lower (s390x: __arch_prepare_bpf_trampoline allocates ip_off
	// unconditionally).
	IPSlotAlways bool
	// ModRetExtended: an fmod_ret program's result is stored sign- or
	// zero-extended to the function's return type, and the test that
	// skips the original sees the extended value (s390x: invoke_bpf_prog
	// runs sign_zero_extend under save_ret).
	ModRetExtended bool
	// ModRetSkipsIsReturn: a non-zero fmod_ret result branches past the
	// store of func_meta with is_return (s390x: the do_fexit label
	// follows that store), so the fexit list runs with the last func_meta
	// the entry side stored, and a session program that stores none of
	// its own sees is_return 0.
	ModRetSkipsIsReturn bool
	// SubprogTailcalls: bpf_jit_supports_subprog_tailcalls. Without it
	// the verifier refuses a program that mixes tail calls and
	// bpf-to-bpf calls ("mixing of tail_calls and bpf-to-bpf calls is
	// not supported"), so such a program cannot be a target at all
	// (riscv64 7.2.x, measured).
	SubprogTailcalls bool
}

// MaySubprogTailcalls says whether some build's JIT on a supports tail
// calls from subprograms (Profile.SubprogTailcalls).
func (a *Arch) MaySubprogTailcalls() bool { return a.SubprogTailcalls || a.Name == "riscv64" }

// Architectures. x86_64, arm64 and riscv64 have an fsession JIT in the
// builds tramp boots (riscv64: Debian 7.2.x, measured: the probe load and
// the corpus attach); s390x has no JIT at all in Debian's builds (NoJIT),
// but its JIT has fsession where a build has the JIT (the z196 rebuild
// of Debian's 7.2.13 source); the others are kept so that the EOPNOTSUPP
// path can be modelled.
var arches = []*Arch{
	{Name: "x86_64", FsessionJIT: true, MaxLinks: 38, Generator: true, SyscallPrefix: "__x64_", TracingMulti: true, SubprogTailcalls: true},
	{Name: "arm64", FsessionJIT: true, MaxLinks: 38, Generator: true, SyscallPrefix: "__arm64_", SubprogTailcalls: true},
	{Name: "riscv64", FsessionJIT: true, MaxLinks: 38, Generator: true, SyscallPrefix: "__riscv_"},
	{Name: "loongarch64", MaxLinks: 38, SyscallPrefix: "sys_"},
	{Name: "ppc64le", MaxLinks: 38, SyscallPrefix: "sys_"},
	// s390x: Debian's builds have no JIT; where a build has one (a z196
	// build of the same source), 7.2.13's JIT supports fsession and
	// subprogram tail calls (bpf_jit_supports_fsession and
	// _subprog_tailcalls in arch/s390/net/bpf_jit_comp.c) and, like every
	// arch but x86_64, has no HAVE_SINGLE_FTRACE_DIRECT_OPS for multi links.
	{Name: "s390x", FsessionJIT: true, MaxLinks: 27, Generator: true, SyscallPrefix: "__s390x_", NoJIT: true, SubprogTailcalls: true, IPSlotAlways: true,
		ModRetExtended: true, ModRetSkipsIsReturn: true},
}

// Arches lists every known architecture, x86_64 and arm64 first.
func Arches() []*Arch { return append([]*Arch(nil), arches...) }

// ArchNames lists the names of all architectures.
func ArchNames() []string {
	var n []string
	for _, a := range arches {
		n = append(n, a.Name)
	}
	return n
}

// DefaultArches are the architectures a case runs on when it names none:
// those tramp has a generator and a VM for.
func DefaultArches() []string {
	var n []string
	for _, a := range arches {
		if a.Generator {
			n = append(n, a.Name)
		}
	}
	return n
}

// LookupArch finds an architecture by name. "amd64" and "aarch64" are
// accepted as aliases.
func LookupArch(name string) (*Arch, error) {
	switch name {
	case "amd64":
		name = "x86_64"
	case "aarch64":
		name = "arm64"
	}
	for _, a := range arches {
		if a.Name == name {
			return a, nil
		}
	}
	n := ArchNames()
	sort.Strings(n)
	return nil, fmt.Errorf("unknown arch %q (known: %s)", name, strings.Join(n, ", "))
}

// SlotLimit is how many slots one trampoline has on this kernel and arch
// (BPF_MAX_TRAMP_LINKS, or what the kernel was measured to allow).
func (p *Profile) SlotLimit(a *Arch) int {
	if n, ok := p.MaxLinks[a.Name]; ok {
		return n
	}
	return a.MaxLinks
}

// HasJIT says whether this kernel has the BPF JIT on arch a: what its
// config states (JIT), else the arch's default.
func (p *Profile) HasJIT(a *Arch) bool {
	if v, ok := p.JIT[a.Name]; ok {
		return v
	}
	return !a.NoJIT
}

// FsessionJIT says whether bpf_jit_supports_fsession() is true on this
// build for a: the arch's JIT supports it and the build has the JIT
// (without it the weak default says no: Debian's s390x probe load gets
// EOPNOTSUPP).
func (p *Profile) FsessionJIT(a *Arch) bool { return p.HasJIT(a) && a.FsessionJIT }

// syscallPrefix is the prefix of the arch's syscall wrappers that this
// kernel's verifier recognises, or "".
func (p *Profile) syscallPrefix(a *Arch) string {
	if p.SyscallPrefixArches == nil {
		return a.SyscallPrefix
	}
	for _, n := range p.SyscallPrefixArches {
		if n == a.Name {
			return a.SyscallPrefix
		}
	}
	return ""
}
