# A fentry-only trampoline's return into the traced function
# (__arch_prepare_bpf_trampoline without BPF_TRAMP_F_SKIP_FRAME): the
# body at func+6 returns to the caller through %r14.
	brcl	15,func+6
