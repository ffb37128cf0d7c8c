// Package emu executes x86_64, arm64, riscv64 and s390x BPF trampolines
// instruction by instruction — images tramp generates and images
// captured from real kernels — and checks what every attached program
// observes.
//
// The machine interprets only the instructions trampolines contain
// (decoded with golang.org/x/arch) and stops, naming the offset and the
// bytes, at anything else. Its memory is a kernel stack with per-byte
// "initialised" tracking: the traced function's caller left a return
// address and the stack-passed arguments above the entry stack pointer,
// everything else starts uninitialised. Every address the image calls or
// returns to outside itself is a stub: the kernel helpers
// (__bpf_tramp_enter/exit, the per-program enter/exit helpers), each
// program's bpf_func (which behaves like the observer programs tramp
// loads into real kernels) and the traced function's body.
//
// Run returns what the programs saw and every violated check; Verify
// compares a run with the trampoline model's prediction. Stack
// alignment is checked as the kernels need it: on arm64 sp is 16-byte
// aligned at every call and every sp-based access, on riscv64 at every
// call (jal/jalr that link); x86_64 kernels are
// built for 8-byte stack alignment (real trampolines call the helpers
// with rsp 8 mod 16), so every call needs 8 and only the call of the
// original function with stack-passed arguments needs 16 (the padding
// the trampoline adds for it). On riscv64 (RV64GC: compressed forms
// included) the image is entered as the patched "auipc t0; jalr t0" at
// the function's entry leaves it: t0 past the patch site, ra the
// caller's return address; s0-s11, gp, tp, sp and ra must be the
// caller's again when control is back there.
//
// On s390x the machine is big-endian: instructions (decoded with
// s390xasm, fields read from the encoding) and every memory access,
// the 4-byte tail call counter included. The image is entered as
// ftrace's patched 6-byte entry leaves it: %r0 past the patch site
// (func+6, where the body is entered or called), %r14 the caller's
// return address, %r15 the caller's stack pointer with the
// STACK_FRAME_OVERHEAD bytes it allocated for the callee above it (the
// packed stack: its backchain at 152, the tail call counter at 64) and
// the stack arguments from 160 on; an argument of 9 to 16 bytes is
// passed by reference, a pointer to the caller's copy, whose bytes the
// programs see as two big-endian words. The trampoline may write from
// its %r15 up to the caller's backchain; every call needs %r15 8-byte
// aligned and the frame's backchain (152(%r15)) pointing at the entry
// %r15; a conditional branch needs a condition code set since the last
// call; %r6-%r15 must be the caller's again on return. Callees scribble
// their register save area (0-152(%r15)); the traced function's body,
// for a tail-call-reachable BPF program, checks the tail call counter
// at 64(%r15) and hands it back incremented, and the caller must get
// it. The expoline thunks (__s390_indirect_jump_rN) branch to %rN.
package emu
