// Package cases reads tramp's scenario files (*.tramp) and replays them
// against the trampoline model. The files in this folder are the corpus;
// testdata/ holds what real kernels recorded for them.
//
// A case names a target function, declares programs, and lists steps:
//
//	# comment to end of line
//	kernel debian-7.2.13 debian-7.3.4   # optional: profiles the case applies to
//	arch x86_64 arm64                   # optional (default: both)
//	target bpf_fentry_test3             # a known function, or a prototype:
//	target my_func(u8, s32, u64, struct12, ptr) -> u64 [attributes]
//	prog s fsession cookie ip           # prog NAME KIND [cookie] [ip] [sleepable] [link-cookie=N] [returns=N]
//	attach s                            # load (first time) and link
//	attach s expect EBUSY               # the outcome model and kernel must agree on
//	detach s
//	run                                 # trigger (BPF_PROG_TEST_RUN for the known targets)
//	run 1 2 3                           # explicit arguments (emulator)
//
// Target attributes after an explicit prototype: fmodret,
// fmodret-sleepable, error-inject, noreturn, deny, bpf-prog, tail-call,
// btf-id=N. Without a kernel line a case applies to every profile that
// supports all of its program kinds.
package cases
