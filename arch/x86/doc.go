// Package x86 generates x86_64 BPF trampolines byte for byte as the
// kernel's __arch_prepare_bpf_trampoline (arch/x86/net/bpf_jit_comp.c)
// does, from the link model's Plan and concrete addresses.
//
// encode.go holds the encoders (emit_* in the kernel), frame.go the
// stack layout (the stack_size arithmetic), x86.go the sequence:
// Generate, the invoke_bpf* helpers and emitAll, whose steps carry the
// part of __arch_prepare_bpf_trampoline they model.
package x86
