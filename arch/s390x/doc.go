// Package s390x generates s390x BPF trampolines byte for byte as the
// kernel's __arch_prepare_bpf_trampoline (arch/s390/net/bpf_jit_comp.c,
// Linux 7.2.13 with fsession support and the skip NOPs of
// bpf_tramp_image_add_skip) does, from the link model's Plan and concrete
// addresses, and checks and explains the images it (or a kernel)
// produced.
//
// The traced function enters the trampoline from its patched 6-byte
// -mfentry site ("brcl 0" made "brcl 15" by ftrace) without a call: %r14
// still holds the parent's return address and %r15 the traced
// function's caller's stack pointer, under which STACK_FRAME_OVERHEAD
// bytes are reserved for it. The trampoline takes its frame below that,
// calls the original function at func+6 (S390X_PATCH_SIZE) with brasl
// and leaves with "br %r14" (BPF_TRAMP_F_SKIP_FRAME, to the parent) or
// "brcl 15,func+6" (into the traced function).
//
// Every instruction has a fixed length (2, 4 or 6 bytes, big-endian), so
// arch_bpf_trampoline_size's pass is as long as the real one; branches
// within the image (the skip NOPs and do_fexit) take their targets from
// the previous pass, as the kernel's two passes do.
//
// encode.go holds the instruction encoders and the emitter (the EMIT*
// macros, load_imm64, emit6_pcrel_ril), frame.go the stack layout
// (struct bpf_tramp_jit's offsets), s390x.go the sequence: Size,
// Generate, invoke_bpf_prog, invoke_bpf and emitAll, whose steps carry
// the part of the kernel function they model; check.go decodes images
// with golang.org/x/arch's s390xasm and checks them, explain.go
// annotates them.
package s390x
