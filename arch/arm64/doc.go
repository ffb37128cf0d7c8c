// Package arm64 generates arm64 BPF trampolines word for word as the
// kernel's prepare_trampoline (arch/arm64/net/bpf_jit_comp.c) does, from
// the link model's Plan and concrete addresses, and checks and explains
// the images it (or a kernel) produced.
//
// The traced function enters the trampoline with "mov x9, x30; bl tramp":
// x9 holds the parent's return address and x30 func+8. The original
// function is re-entered at func+8 by "ldr x10, [sp, #retaddr]; adr x30,
// #8; ret x10", so no symbol is called for it.
//
// encode.go holds the instruction encoders and the emitter (the kernel's
// jit_ctx, emit_call, emit_a64_mov_i64), frame.go the stack layout
// (calc_arg_aux and the stack_size arithmetic), arm64.go the sequence:
// Size, Generate, the invoke_bpf* helpers and emitAll, whose steps carry
// the part of prepare_trampoline they model.
package arm64
