// Package facts reads what a kernel build states about itself, each fact
// with where it was read: the image's vmlinux BTF on the host before any
// boot (BPF_MAX_TRAMP_LINKS, the bpf_attach_type enum, the session kfuncs),
// the package's build config (error injection, ftrace jmp mode, the
// mitigation and CFI options that change trampoline bytes), the release
// string in the image, and, for what no kernel states, the delta table of
// package trampoline, pinned to the builds that bracket each delta.
//
// Profile turns the facts into the link model's profile, so that a build
// tramp was never told about gets its slot limit and attach types from the
// kernel itself and only the unstated deltas from the table, which says
// when it had to assume one.
package facts
