package arm64

// Features are the build facts that change arm64 trampoline bytes
// besides the plan and the addresses.
type Features struct {
	// BTI: CONFIG_ARM64_BTI_KERNEL; the trampoline starts with "bti jc"
	// (emit_bti checks only the config, never the CPU).
	BTI bool
}

// Debian is what Debian's GCC-built arm64 kernels have: in 7.2 the
// ARM64_BTI_KERNEL option depends on !CC_IS_GCC, so no "bti jc" (seen on
// live 7.2.13 and 7.3.4 images).
var Debian = Features{}
