package x86

import (
	"fmt"
	"sort"
	"strings"
)

// Features are the build and CPU facts that change x86 trampoline bytes
// besides the plan.
type Features struct {
	// EndbrAtFunc: the traced function starts with ENDBR64 (or the
	// kernel's sealed-ENDBR poison), so the original function is called
	// at func+9 instead of func+5 (is_endbr in the kernel).
	EndbrAtFunc bool
	// SLS: CONFIG_MITIGATION_SLS, an int3 after every ret.
	SLS bool
	// Rethunk: the CPU wants return thunks (X86_FEATURE_RETHUNK): the
	// return is a jmp to what x86_return_thunk points at, ReturnThunk
	// (emit_return).
	Rethunk     bool
	ReturnThunk string
	// CallDepth: call-depth accounting (X86_FEATURE_CALL_DEPTH,
	// retbleed=stuff): the 9-byte template that shifts the per-CPU
	// __x86_call_depth at the start and before calls
	// (x86_call_depth_emit_accounting, emit_rsb_call).
	CallDepth bool
}

// Debian is what Debian's amd64 kernels under QEMU -cpu max show:
// IBT-built functions and SLS, no return thunk.
var Debian = Features{EndbrAtFunc: true, SLS: true}

// Return thunks x86_return_thunk can point at (arch/x86/kernel/cpu/bugs.c
// set_return_thunk; arch/x86/lib/retpoline.S).
const (
	ThunkDefault   = "__x86_return_thunk" // the pointer's initial value
	ThunkRetbleed  = "retbleed_return_thunk"
	ThunkSRSO      = "srso_return_thunk"
	ThunkSRSOAlias = "srso_alias_return_thunk"
	ThunkITS       = "its_return_thunk"
	ThunkCallDepth = "call_depth_return_thunk"
	// ThunkGeneric is the name placeholder addresses give a return thunk
	// when no particular one is asked for.
	ThunkGeneric = "x86_return_thunk"
)

// CallDepthVar is the per-CPU call-depth counter the accounting template
// shifts (arch/x86/include/asm/nospec-branch.h, INCREMENT_CALL_DEPTH).
const CallDepthVar = "__x86_call_depth"

// BootVulnerabilities are the vulnerabilities files ForBoot reads.
var BootVulnerabilities = []string{"retbleed", "spec_rstack_overflow", "indirect_target_selection"}

// Boot is what a booted kernel reports about its CPU: the files of
// /sys/devices/system/cpu/vulnerabilities by name, and /proc/cpuinfo's
// "cpu family" (0 when unknown).
type Boot struct {
	Vulnerabilities map[string]string
	CPUFamily       int
}

// ForBoot returns f with the run-time features of a boot: whether
// returns go through a thunk, which one, and whether call-depth
// accounting is on. It follows the order in which the kernel applies its
// mitigations (cpu_select_mitigations: retbleed, then SRSO, then ITS;
// the last set_return_thunk wins, an IBPB mitigation clears
// X86_FEATURE_RETHUNK) from the state each one shows in sysfs
// (retbleed_show_state, srso_show_state, its_show_state). A file that is
// missing is a kernel without that mitigation; a state tramp does not know
// is an error naming it, as is one that hides which thunk is in use.
func (f Features) ForBoot(b Boot) (Features, error) {
	f.Rethunk, f.ReturnThunk, f.CallDepth = false, "", false
	set := func(thunk string) { f.Rethunk, f.ReturnThunk = true, thunk }
	clear := func() { f.Rethunk, f.ReturnThunk = false, "" }
	unknown := func(file, state string) error {
		return fmt.Errorf("vulnerabilities/%s: state %q is not one tramp knows how the kernel mitigates", file, state)
	}
	if st, ok := b.Vulnerabilities["retbleed"]; ok {
		// retbleed_apply_mitigation
		switch {
		case strings.HasPrefix(st, "Mitigation: untrained return thunk"):
			set(ThunkRetbleed)
		case strings.HasPrefix(st, "Mitigation: IBPB"):
			clear()
		case st == "Mitigation: Stuffing":
			set(ThunkCallDepth)
			f.CallDepth = true
		case st == "Not affected", st == "Vulnerable", st == "Mitigation: IBRS", st == "Mitigation: Enhanced IBRS":
		case strings.HasPrefix(st, "Vulnerable: untrained return thunk / IBPB"):
			return f, fmt.Errorf("vulnerabilities/retbleed: %q does not say whether the untrained return thunk (a return thunk) or IBPB (none) is in use", st)
		default:
			return f, unknown("retbleed", st)
		}
	}
	if st, ok := b.Vulnerabilities["spec_rstack_overflow"]; ok {
		// srso_apply_mitigation
		switch st {
		case "Mitigation: Safe RET", "Vulnerable: Safe RET, no microcode":
			switch {
			case b.CPUFamily == 0x19:
				set(ThunkSRSOAlias)
			case b.CPUFamily != 0:
				set(ThunkSRSO)
			default:
				return f, fmt.Errorf("vulnerabilities/spec_rstack_overflow: %q: the thunk depends on the CPU family (0x19: %s, else %s), which is unknown", st, ThunkSRSOAlias, ThunkSRSO)
			}
		case "Mitigation: IBPB":
			clear()
		case "Not affected", "Vulnerable", "Vulnerable: No microcode", "Vulnerable: Microcode, no safe RET",
			"Mitigation: SMT disabled", "Mitigation: IBPB on VMEXIT only", "Mitigation: Reduced Speculation":
		default:
			return f, unknown("spec_rstack_overflow", st)
		}
	}
	if st, ok := b.Vulnerabilities["indirect_target_selection"]; ok {
		// its_apply_mitigation
		switch st {
		case "Mitigation: Aligned branch/return thunks":
			set(ThunkITS)
		case "Mitigation: Retpolines, Stuffing RSB":
			set(ThunkCallDepth)
			f.CallDepth = true
		case "Not affected", "Vulnerable", "Mitigation: Vulnerable, KVM: Not affected":
		default:
			return f, unknown("indirect_target_selection", st)
		}
	}
	return f, nil
}

// featureWords are the names ParseFeatures takes.
var featureWords = []string{"endbr", "sls", "rethunk[=THUNK]", "calldepth"}

// ParseFeatures reads a comma-separated feature list: "endbr" (traced
// functions start with ENDBR), "sls" (int3 after ret), "rethunk" or
// "rethunk=THUNK" (returns jump to a return thunk, by default
// x86_return_thunk's placeholder), "calldepth" (call-depth accounting;
// implies rethunk=call_depth_return_thunk unless a thunk is named). An
// empty list is no feature at all.
func ParseFeatures(s string) (Features, error) {
	var f Features
	for _, w := range strings.Split(s, ",") {
		w = strings.TrimSpace(w)
		name, val, hasVal := strings.Cut(w, "=")
		switch {
		case w == "":
		case name == "endbr" && !hasVal:
			f.EndbrAtFunc = true
		case name == "sls" && !hasVal:
			f.SLS = true
		case name == "rethunk":
			f.Rethunk = true
			if hasVal {
				if val == "" {
					return Features{}, fmt.Errorf("feature %q: name the thunk after '='", w)
				}
				f.ReturnThunk = val
			}
		case name == "calldepth" && !hasVal:
			f.CallDepth = true
		default:
			return Features{}, fmt.Errorf("unknown feature %q (known: %s)", w, strings.Join(featureWords, ", "))
		}
	}
	if f.CallDepth {
		f.Rethunk = true
		if f.ReturnThunk == "" {
			f.ReturnThunk = ThunkCallDepth
		}
	}
	if f.Rethunk && f.ReturnThunk == "" {
		f.ReturnThunk = ThunkGeneric
	}
	return f, nil
}

// String lists the features in ParseFeatures' form.
func (f Features) String() string {
	var w []string
	if f.EndbrAtFunc {
		w = append(w, "endbr")
	}
	if f.SLS {
		w = append(w, "sls")
	}
	if f.Rethunk {
		w = append(w, "rethunk="+f.ReturnThunk)
	}
	if f.CallDepth {
		w = append(w, "calldepth")
	}
	sort.Strings(w)
	return strings.Join(w, ",")
}

// CallThunkLen is the length of the call-depth accounting template.
const CallThunkLen = 9

// IsCallThunk says whether the bytes before a function (its padding,
// ending at fn) end with the call-depth accounting template relocated to
// sit right before fn, i.e. whether the kernel put a call thunk there
// (is_callthunk in arch/x86/kernel/callthunks.c; functions are 16-byte
// aligned, so the padding's end is fn itself).
func IsCallThunk(padding []byte, fn, depthVar uint64) bool {
	if len(padding) < CallThunkLen || fn%16 != 0 {
		return false
	}
	t := padding[len(padding)-CallThunkLen:]
	disp := uint32(depthVar - fn) // rip at the template's end is fn
	return t[0] == 0x65 && t[1] == 0x48 && t[2] == 0xc1 && t[3] == 0x3d &&
		uint32(t[4])|uint32(t[5])<<8|uint32(t[6])<<16|uint32(t[7])<<24 == disp && t[8] == 0x05
}
