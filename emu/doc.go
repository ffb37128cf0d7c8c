// Package emu executes x86_64, arm64 and riscv64 BPF trampolines instruction by
// instruction — images tramp generates and images captured from real
// kernels — and checks what every attached program observes.
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
package emu
