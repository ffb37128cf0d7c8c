// Package riscv64 generates riscv64 BPF trampolines byte for byte as the
// kernel's __arch_prepare_bpf_trampoline (arch/riscv/net/bpf_jit_comp64.c,
// Linux 7.2 with fsession support) does, from the link model's Plan and
// concrete addresses, and checks and explains the images it (or a kernel)
// produced.
//
// The traced function enters the trampoline from its patched entry
// "auipc t0, hi; jalr t0, lo(t0)" (with CALL_OPS through ftrace_caller,
// which jumps to ops->direct_call): t0 holds func+8 and ra the parent's
// return address. The trampoline saves both frames, calls the original
// function at func+8 (SKIP_FRAME) and returns with "jr ra" (to the parent)
// or "jr t0" (into the traced function).
//
// encode.go holds the RV64I and RVC encoders and the emitter (the
// kernel's rv_jit_context with the emit_* helpers of bpf_jit.h, which
// pick compressed forms under CONFIG_RISCV_ISA_C, emit_imm and
// emit_call), frame.go the stack layout, riscv64.go the sequence: Size,
// Generate, invoke_bpf_prog and emitAll, whose steps carry the part of
// the kernel function they model.
package riscv64
