package trampoline

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A Delta is a change of the trampoline's bytes or of a load/attach rule
// that no kernel states: it is in neither the vmlinux BTF nor the build
// config, so it is pinned to the kernel builds that bracket it. Facts a
// kernel does state (BPF_MAX_TRAMP_LINKS, the attach types, the config's
// options) are read from that kernel instead and have no delta.
type Delta struct {
	Name string
	// What the delta changes, as a reviewer would say it.
	What string
	// Since is the first release known to have the delta; LastWithout the
	// newest release known not to ("" when none is known). A release
	// between the two is not pinned: the delta is assumed on from Since.
	Since, LastWithout string
	// Backported: the change came to older stable branches as a fix, each
	// at its own release, so LastWithout pins nothing outside its own
	// branch. A change that came with a merge window (the default) is
	// absent from every release before Since.
	Backported bool
	// Evidence says what pinned Since and LastWithout: live builds
	// (recordings of real kernels) or a source tree that was read.
	Evidence string
	// Arches are the architectures whose code the delta changes (nil:
	// every one).
	Arches []string
	// Probes are the corpus cases whose recordings tell a build with the
	// delta from one without (tramp vm bisect runs them); none when no
	// case exercises it.
	Probes []string
	// Set applies the delta (on) or its absence to a profile.
	Set func(p *Profile, on bool)
}

// Deltas are the known deltas, oldest first.
var Deltas = []Delta{
	{
		Name:  "func-meta",
		What:  "ctx[-1] holds func_meta (nr_args | cookie index << 8 | is_return << 63) instead of the bare argument count; with it fsession (the same series)",
		Since: "7.0", LastWithout: "6.19.14",
		Evidence: "live (builds.txt): the arm64 images of 6.12.107 to 6.19.14 store the count, of 7.0.4 on func_meta, on x86_64 too; a build's BTF states it as well (no BPF_TRACE_FSESSION, no func_meta)",
		Probes:   []string{"fsession_cookie"},
		Set:      func(p *Profile, on bool) { p.FuncMeta = on },
	},
	{
		Name:  "a64-mov-orr",
		What:  "arm64 A64_MOV of general registers is orr xd, xzr, xm, no longer add xd, xn, #0",
		Since: "7.1", LastWithout: "7.0.13",
		Evidence: "live (builds.txt): every arm64 register move is an add up to 7.0.13 (no 7.0 stable build has the orr), an orr from 7.1.3 on",
		Probes:   []string{"fentry_only"},
		Arches:   []string{"arm64"},
		Set:      func(p *Profile, on bool) { p.A64MovIsAdd = !on },
	},
	{
		Name:  "x86-jmp-mode",
		What:  "x86_64 CONFIG_DYNAMIC_FTRACE_WITH_JMP: a trampoline that calls the original function is entered by jmp and returns without skipping a frame (no add rsp, 8); the build config states it, this entry is for builds whose config is not served any more",
		Since: "6.19.6", LastWithout: "6.18.15",
		Evidence: "live (builds.txt): 6.12.107 to 6.18.15 without (their configs: not set), 6.19.6 on with (6.19 to 7.1 serve no config; 7.2 and 7.3 state y); no build is served between 6.18.15 and 6.19.6",
		Probes:   []string{"fexit_six_args"},
		Arches:   []string{"x86_64"},
		Set:      func(p *Profile, on bool) { p.X86JmpMode = on },
	},
	{
		Name:  "x86-wide-arg-slots",
		What:  "x86_64: every argument wider than 8 bytes takes more than one slot, not only structs",
		Since: "7.2.8", LastWithout: "6.18.15",
		Evidence: "source: 7.2.8; live: 7.2.13, 7.3.4",
		Arches:   []string{"x86_64"},
		Set:      func(p *Profile, on bool) { p.X86WideArgSlots = on },
	},
	{
		Name:  "skip-nop",
		What:  "every program block starts with a NOP patched into a jump when the program is detached while the image is in use, and the NOP after the original call (im->ip_after_call) is gone",
		Since: "7.2.10", LastWithout: "7.2.9", Backported: true,
		Evidence: "live (builds.txt), both arches: every build up to 7.2.9 without it, the 7.0 and 7.1 branches too (7.1.13 the newest), 7.2.11 on and 7.3 with it; source: the stable commit \"bpf: Skip detached progs in trampoline images that are still in use\" first in 7.2.10",
		Probes:   []string{"fentry_only"},
		Set: func(p *Profile, on bool) {
			p.SkipNOP = on
			p.IPAfterCallNOP = !on
		},
	},
	{
		Name:  "syscall-wrapper-fallback",
		What:  "without CONFIG_FUNCTION_ERROR_INJECTION, fmod_ret and sleepable programs may attach to the arch's syscall wrappers (has_arch_syscall_prefix)",
		Since: "7.1", LastWithout: "7.0.13",
		Evidence: "live (builds.txt), both arches: fmod_ret and sleepable programs on __x64_sys_* and __arm64_sys_* are refused (EINVAL at load) up to 7.0.13, no 7.0 stable build takes them, and accepted from 7.1.3 on",
		Probes:   []string{"syscall_wrapper_x86", "syscall_wrapper_arm64"},
		Set: func(p *Profile, on bool) {
			if on {
				p.SyscallPrefixArches = nil
			} else {
				p.SyscallPrefixArches = []string{}
			}
		},
	},
	{
		Name:  "riscv64-tcc-stack",
		What:  "riscv64 keeps the tail call counter on the program's stack and honours BPF_TRAMP_F_TAIL_CALL_CTX: a trampoline on a tail-call-reachable program saves a6 below s1 and loads it back around the original call and before it returns",
		Since: "7.3", LastWithout: "7.2.13",
		Evidence: "source: arch/riscv/net/bpf_jit_comp64.c of Debian's linux-source-7.3 (7.3.4) against 7.2.13's; live: debian-7.3.4+rebuild (Debian's 7.3.4 source, the archive serves no 7.3.4 riscv64 build) with, Debian's riscv64 builds 6.12.117 to 7.2.13 without",
		Probes:   []string{"tailcall_fentry_only"},
		Arches:   []string{"riscv64"},
		Set:      func(p *Profile, on bool) { p.RiscvTCCStack = on },
	},
}

// AppliedDelta says how one delta was decided for a release.
type AppliedDelta struct {
	Delta *Delta
	On    bool
	// Pinned: a live build of the table (or builds on both sides of it
	// in its branch, agreeing) or the delta's Since and LastWithout say
	// so; otherwise the delta was assumed. Note says which.
	Pinned bool
	Note   string
}

// ApplyDeltas sets every delta on p for a kernel release ("7.2.13",
// "7.3-rc7", "7.2.13+deb14-cloud-amd64") on arch and says, per delta,
// whether it is pinned or assumed and why. The build table (builds.txt,
// live) decides first; a delta no build was judged for falls back to its
// Since and LastWithout.
func ApplyDeltas(p *Profile, release, arch string) ([]AppliedDelta, error) {
	v, err := ParseVersion(release)
	if err != nil {
		return nil, err
	}
	out := make([]AppliedDelta, 0, len(Deltas))
	for i := range Deltas {
		d := &Deltas[i]
		a, ok := Builds.decide(d, v, arch)
		if since := d.bySince(v); !ok || (!a.Pinned && since.Pinned) {
			a = since
		}
		d.Set(p, a.On)
		out = append(out, a)
	}
	return out, nil
}

// bySince decides a delta from its Since and LastWithout: on from Since,
// off up to LastWithout (for a backported one only within LastWithout's
// branch: an older branch may have taken the fix later), else assumed
// on.
func (d *Delta) bySince(v Version) AppliedDelta {
	a := AppliedDelta{Delta: d}
	var last Version
	if d.LastWithout != "" {
		last = MustVersion(d.LastWithout)
	}
	switch {
	case !v.Less(MustVersion(d.Since)):
		a.On, a.Pinned = true, true
		a.Note = fmt.Sprintf("Since %s: %s", d.Since, d.Evidence)
	case d.LastWithout != "" && (!d.Backported || v.branch() == last.branch()) && !last.Less(v):
		a.On, a.Pinned = false, true
		a.Note = fmt.Sprintf("LastWithout %s: %s", d.LastWithout, d.Evidence)
	default:
		a.On = true
		a.Note = fmt.Sprintf("%s lies between %s (without) and %s (with), not pinned: assumed on", v, d.LastWithout, d.Since)
	}
	return a
}

// AppliesTo says whether the delta changes code on arch.
func (d *Delta) AppliesTo(arch string) bool {
	return d.Arches == nil || slices.Contains(d.Arches, arch)
}

// LookupDelta finds a delta by name (nil: none).
func LookupDelta(name string) *Delta {
	for i := range Deltas {
		if Deltas[i].Name == name {
			return &Deltas[i]
		}
	}
	return nil
}

// Version is a kernel release's x.y.z, with -rcN as a pre-release of x.y.
type Version struct {
	Major, Minor, Patch int
	// RC is the release candidate number, 0 for a release.
	RC int
}

// ParseVersion reads "7.2.13", "7.3", "7.3-rc7", "7.3~rc7" and releases
// with suffixes ("7.2.13+deb14-cloud-amd64").
func ParseVersion(s string) (Version, error) {
	var v Version
	rest := s
	num := func() (int, bool) {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, false
		}
		n, err := strconv.Atoi(rest[:i])
		rest = rest[i:]
		return n, err == nil
	}
	var ok bool
	if v.Major, ok = num(); !ok {
		return v, fmt.Errorf("kernel release %q does not start with a version", s)
	}
	if !strings.HasPrefix(rest, ".") {
		return v, fmt.Errorf("kernel release %q has no minor version", s)
	}
	rest = rest[1:]
	if v.Minor, ok = num(); !ok {
		return v, fmt.Errorf("kernel release %q has no minor version", s)
	}
	if strings.HasPrefix(rest, ".") {
		rest = rest[1:]
		if v.Patch, ok = num(); !ok {
			return v, fmt.Errorf("kernel release %q: no number after %d.%d.", s, v.Major, v.Minor)
		}
	}
	if strings.HasPrefix(rest, "-rc") || strings.HasPrefix(rest, "~rc") {
		rest = rest[3:]
		if v.RC, ok = num(); !ok {
			return v, fmt.Errorf("kernel release %q: no number after rc", s)
		}
	}
	return v, nil
}

// MustVersion is ParseVersion for the package's own tables.
func MustVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// Less orders versions; x.y-rcN comes before x.y.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	if v.Patch != w.Patch {
		return v.Patch < w.Patch
	}
	return v.RC != 0 && (w.RC == 0 || v.RC < w.RC)
}

// Compare is -1, 0 or +1 as v is older than, the same as or newer than w
// (for slices.SortFunc).
func (v Version) Compare(w Version) int {
	switch {
	case v.Less(w):
		return -1
	case w.Less(v):
		return 1
	}
	return 0
}

func (v Version) String() string {
	s := fmt.Sprintf("%d.%d", v.Major, v.Minor)
	if v.Patch != 0 {
		s += fmt.Sprintf(".%d", v.Patch)
	}
	if v.RC != 0 {
		s += fmt.Sprintf("-rc%d", v.RC)
	}
	return s
}
