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
// A case may have several target lines: tracing multi links (7.2+) put
// one program on many functions. Then every single-function program
// names its function, a multi program's attach names its functions and
// their link cookies, and a run names the function it is about:
//
//	target bpf_fentry_test1
//	target bpf_fentry_test2
//	prog m fsession.multi cookie        # also fentry.multi, fexit.multi
//	prog e fentry on=bpf_fentry_test2
//	attach m on=bpf_fentry_test1,bpf_fentry_test2 link-cookies=0x11,0x22
//	attach e                            # a multi attach without on= takes every target
//	run bpf_fentry_test2                # without a function: the kernel's trigger, which calls each target
//
// Target attributes after an explicit prototype: fmodret,
// fmodret-sleepable, error-inject, noreturn, deny, notrace, bpf-prog, tail-call,
// btf-id=N. Without a kernel line a case applies to every profile that
// supports all of its program kinds.
package cases
