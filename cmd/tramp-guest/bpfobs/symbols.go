package bpfobs

// HelperSymbols are the core kernel symbols whose addresses go into Start.
var HelperSymbols = []string{
	"__bpf_tramp_enter", "__bpf_tramp_exit",
	"__bpf_prog_enter_recur", "__bpf_prog_exit_recur",
	"__bpf_prog_enter_sleepable_recur", "__bpf_prog_exit_sleepable_recur",
	"__bpf_prog_enter", "__bpf_prog_exit",
	"__bpf_prog_enter_sleepable", "__bpf_prog_exit_sleepable",
	"__bpf_prog_enter_lsm_cgroup", "__bpf_prog_exit_lsm_cgroup",
	"x86_return_thunk", "__x86_return_thunk", "its_return_thunk",
	"retbleed_return_thunk", "srso_return_thunk", "srso_alias_return_thunk",
	"call_depth_return_thunk", "__x86_call_depth",
	"ftrace_caller", "ftrace_stub", "return_to_handler",
	"arch_bpf_trampoline_skip", "bpf_tramp_image_add_skip",
}
