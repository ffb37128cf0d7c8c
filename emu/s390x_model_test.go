package emu

import "github.com/bpftramp/tramp/trampoline"

// s390xJIT is a profile as a build with the s390x BPF JIT has it:
// Debian's own s390x builds have none (trampoline.Profile.HasJIT), and
// the model refuses every trampoline there.
func s390xJIT(p *trampoline.Profile) *trampoline.Profile {
	cp := *p
	cp.JIT = map[string]bool{}
	for k, v := range p.JIT {
		cp.JIT[k] = v
	}
	cp.JIT["s390x"] = true
	return &cp
}
