// Command tramp models, generates, runs and checks Linux BPF trampolines
// (fentry, fexit, fmod_ret and fsession) against real kernels.
//
// Exit codes: 0 success, 1 a check failed, 2 bad usage or bad input.
package main
