// Package bench measures what BPF trampolines cost: live, in real kernels
// booted under QEMU (a guest "bench" job, cmd/tramp-guest/bpfobs
// RunBench), and statically, by running the generated trampolines in the
// emulator (package emu) and counting what they execute. It turns both
// into tables, JSON and a bar chart (tramp bench).
package bench
