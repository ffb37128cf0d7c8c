# BPF_TRAMP_F_SKIP_FRAME's return to the traced function's caller
# (EMIT_JUMP_REG(14)), plain or through the expoline thunk.
.ifdef EXPOLINE
	brcl	15,__s390_indirect_jump_r14
.else
	br	%r14
.endif
