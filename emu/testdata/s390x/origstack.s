# BPF_TRAMP_F_ORIG_STACK (with SKIP_FRAME): the original function is
# called through the address ftrace left in %r0 (func+6), kept in %r8
# ("lgr %r8,%r0"; "basr %r14,%r8", or with expolines
# "brasl %r14,__s390_indirect_jump_r8"); the return goes to the
# caller. A reduced frame: backchain, %r14 and %r8 saved.
	lgr	%r1,%r15
	aghi	%r15,-176
	stg	%r1,152(%r15)
	stg	%r8,160(%r15)
	stg	%r14,168(%r15)
	lgr	%r8,%r0
.ifdef EXPOLINE
	brasl	%r14,__s390_indirect_jump_r8
.else
	basr	%r14,%r8
.endif
	lg	%r8,160(%r15)
	lg	%r14,168(%r15)
	aghi	%r15,176
.ifdef EXPOLINE
	brcl	15,__s390_indirect_jump_r14
.else
	br	%r14
.endif
