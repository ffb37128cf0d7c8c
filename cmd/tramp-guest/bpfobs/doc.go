// Package bpfobs runs trampoline jobs inside the test VM: it loads
// observer BPF programs (fentry/fexit/fmod_ret/fsession) on a kernel
// function with raw bpf(2), attaches and detaches them, triggers the
// function with BPF_PROG_TEST_RUN, reports what each program saw, and
// captures the live trampoline image.
//
// It is guest code only: what the host sends and reads back (jobs,
// records, captures) is the wire format in vm/guestapi, and no host
// package imports this one.
package bpfobs
