package riscv64

import (
	"fmt"
	"strings"
)

// Features are the build and CPU facts that change riscv64 trampoline
// bytes besides the plan and the addresses.
type Features struct {
	// RVC: CONFIG_RISCV_ISA_C. rvc_enabled() checks only the config, so
	// the emit_* helpers take their compressed forms on every CPU.
	RVC bool
}

// Debian is Debian's riscv64 build (CONFIG_RISCV_ISA_C=y). Debian also
// has CONFIG_RISCV_ISA_ZBA and ZBB, but the trampoline JIT emits no
// instruction those extensions change (only the program JIT's
// zero/sign extensions and shift-adds use them), so the CPU's ISA string
// does not matter here.
var Debian = Features{RVC: true}

// ForISA is the features of a boot whose CPU reports isa (the
// /proc/cpuinfo "isa" line, e.g. "rv64imafdch_zba_zbb..."): Debian's,
// since nothing in a trampoline depends on the CPU's extensions. It
// refuses an ISA string that is not rv64.
func (f Features) ForISA(isa string) (Features, error) {
	isa = strings.TrimPrefix(strings.TrimSpace(isa), "isa=")
	if isa != "" && !strings.HasPrefix(isa, "rv64") {
		return f, fmt.Errorf("ISA string %q is not a 64-bit RISC-V one", isa)
	}
	return f, nil
}
