package s390x

// Features are the build and boot facts that change s390x trampoline
// bytes besides the plan and the addresses.
type Features struct {
	// Expoline is nospec_uses_trampoline(): the kernel was built with
	// CONFIG_EXPOLINE (CC_USING_EXPOLINE) and the boot kept expolines on
	// (not nospectre_v2, nobp=1, mitigations=off, CONFIG_EXPOLINE_OFF,
	// nor a CPU with etokens, facility 156, under nospec_auto_detect).
	// The boot log says "Spectre V2 mitigation: execute trampolines"
	// exactly then. With it, EMIT_JUMP_REG returns through
	// "brcl 15,__s390_indirect_jump_rN" instead of "br %rN", and the
	// BPF_TRAMP_F_ORIG_STACK call goes through
	// "brasl %r14,__s390_indirect_jump_r8" instead of "basr %r14,%r8".
	Expoline bool
}

// Debian is Debian's s390x build: "# CONFIG_EXPOLINE is not set", so
// nospec_uses_trampoline() is false on every CPU and command line.
var Debian = Features{}
