// Package trampoline is a userspace model of the Linux kernel's BPF
// trampoline bookkeeping (kernel/bpf/trampoline.c and the attach-time
// checks of the verifier and of the syscall layer), fsession first.
//
// A Trampoline holds what the kernel's struct bpf_trampoline holds: the
// FENTRY, FEXIT and MODIFY_RETURN lists in kernel order (newest attach
// first), the freplace extension program, and the flags of the current
// image. Attach and Detach apply every kernel check in kernel order and
// return the kernel's errno. Plan derives everything an architecture
// generator needs to emit the image: the function model, the flags, the
// three lists in run order with cookie indexes, func_meta values and
// helper symbols.
//
// The model is versioned by kernel: a Profile names a kernel build
// (debian-7.2.13, debian-7.3.4, linux-7.2.8, debian-6.18.15) and the
// facts that differ between them; an Arch names the JIT's capabilities.
package trampoline
