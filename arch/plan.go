package arch

import (
	"fmt"

	"github.com/bpftramp/tramp/trampoline"
)

// CheckPlan refuses a plan that no arch's __arch_prepare_bpf_trampoline
// can have been given, before a generator looks at it: a plan for
// another arch, a function model whose sizes disagree with its count or
// break the verifier's limits (btf_distill_func_proto: at most
// MAX_BPF_FUNC_ARGS arguments of 1 to 16 bytes), a struct_ops trampoline
// (BPF_TRAMP_F_INDIRECT, not modelled), and fexit or fmod_ret programs
// without BPF_TRAMP_F_CALL_ORIG (bpf_trampoline_update sets it for
// them). What one JIT refuses on its own is that generator's check.
func CheckPlan(p *trampoline.Plan, arch string) error {
	if p.Arch != arch {
		return fmt.Errorf("%s generator given a plan for %s", arch, p.Arch)
	}
	m := p.Func
	if m.NrArgs != len(m.ArgSize) {
		return fmt.Errorf("function model has %d arguments but %d sizes", m.NrArgs, len(m.ArgSize))
	}
	if m.NrArgs > trampoline.MaxFuncArgs {
		return fmt.Errorf("%d arguments, the verifier allows at most %d", m.NrArgs, trampoline.MaxFuncArgs)
	}
	for i, s := range m.ArgSize {
		if s <= 0 || s > 16 {
			return fmt.Errorf("argument %d is %d bytes; the verifier allows 1 to 16", i, s)
		}
	}
	if p.Flags&trampoline.FlagIndirect != 0 {
		return fmt.Errorf("BPF_TRAMP_F_INDIRECT (struct_ops trampolines) is not modelled")
	}
	if p.Flags&trampoline.FlagCallOrig == 0 && (len(p.ModReturn) > 0 || len(p.Fexit) > 0) {
		return fmt.Errorf("fexit or fmod_ret programs without BPF_TRAMP_F_CALL_ORIG")
	}
	return nil
}
