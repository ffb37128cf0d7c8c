# A trampoline in the shape __arch_prepare_bpf_trampoline
# (arch/s390/net/bpf_jit_comp.c, 7.2.13) gives the traced function
# f(u64, struct12, u32, u64, u64, u64) -> u64 with one fentry program
# (e) and one fexit program (x): BPF_TRAMP_F_CALL_ORIG |
# BPF_TRAMP_F_SKIP_FRAME. Written by hand after the kernel's emission
# order (TestS390Frame runs it); each .ifdef breaks it in one way.
#
# struct bpf_tramp_jit's offsets for this prototype (5 register and 1
# stack argument, 7 BPF argument slots):
#   backchain 152, stack_args 160, reg_args 168, ip 208, func_meta 216,
#   bpf_args 224, retval 280, r7_r8 288, run_ctx 304, tccnt 320,
#   r14 328; stack_size 344 - 152 = 192, orig_stack_args 192 + 160.
	.set	STACK, 192
	.set	ORIG_ARGS, STACK + 160
	.set	RUN_CTX, 304
	.set	TCCNT, 320
	.set	RETVAL, 280

	lgr	%r1,%r15
	aghi	%r15,-STACK
.ifndef NO_BACKCHAIN
	stg	%r1,152(%r15)
.endif
	mvc	TCCNT(4,%r15),STACK+64(%r15)
	stmg	%r2,%r6,168(%r15)
	stg	%r2,224(%r15)
	mvc	232(16,%r15),0(%r3)
	stg	%r4,248(%r15)
	stg	%r5,256(%r15)
	stg	%r6,264(%r15)
	mvc	272(8,%r15),ORIG_ARGS(%r15)
	stmg	%r7,%r8,288(%r15)
	stg	%r14,328(%r15)
.ifdef CALLER_WRITE
	stg	%r1,STACK+152(%r15)
.endif
	lghi	%r0,7
	stg	%r0,216(%r15)
	llihf	%r2,IM>>32
	oilf	%r2,IM&0xffffffff
.ifdef MISALIGN_CALL
	aghi	%r15,-4
.endif
	brasl	%r14,__bpf_tramp_enter
.ifdef MISALIGN_CALL
	aghi	%r15,4
.endif
.ifdef CC_AFTER_CALL
	brcl	8,skip_e
.endif

	# fentry e (invoke_bpf_prog)
	brcl	0,skip_e
	llihf	%r0,0
	oilf	%r0,0
	stg	%r0,RUN_CTX(%r15)
	llihf	%r2,PROG_E>>32
	oilf	%r2,PROG_E&0xffffffff
	la	%r3,RUN_CTX(%r15)
	brasl	%r14,__bpf_prog_enter_recur
	ltgr	%r7,%r2
	brcl	8,exit_e
	la	%r2,224(%r15)
	brasl	%r14,bpf_func_e
exit_e:
	llihf	%r2,PROG_E>>32
	oilf	%r2,PROG_E&0xffffffff
	lgr	%r3,%r7
	la	%r4,RUN_CTX(%r15)
	brasl	%r14,__bpf_prog_exit_recur
skip_e:

	# the original function
	lmg	%r2,%r6,168(%r15)
.ifndef NO_STACK_ARG
	mvc	160(8,%r15),ORIG_ARGS(%r15)
.endif
.ifndef NO_TCC_IN
	mvc	64(4,%r15),TCCNT(%r15)
.endif
.ifdef WRONG_REF
	la	%r3,232(%r15)
.endif
	brasl	%r14,func+6
	stg	%r2,RETVAL(%r15)
	mvc	TCCNT(4,%r15),64(%r15)

	# do_fexit: fexit x
	brcl	0,skip_x
	llihf	%r0,0
	oilf	%r0,0
	stg	%r0,RUN_CTX(%r15)
	llihf	%r2,PROG_X>>32
	oilf	%r2,PROG_X&0xffffffff
	la	%r3,RUN_CTX(%r15)
	brasl	%r14,__bpf_prog_enter_recur
	ltgr	%r7,%r2
	brcl	8,exit_x
	la	%r2,224(%r15)
	brasl	%r14,bpf_func_x
exit_x:
	llihf	%r2,PROG_X>>32
	oilf	%r2,PROG_X&0xffffffff
	lgr	%r3,%r7
	la	%r4,RUN_CTX(%r15)
	brasl	%r14,__bpf_prog_exit_recur
skip_x:

	llihf	%r2,IM>>32
	oilf	%r2,IM&0xffffffff
	brasl	%r14,__bpf_tramp_exit
.ifdef CLOBBER_R7
	lg	%r8,296(%r15)
.else
	lmg	%r7,%r8,288(%r15)
.endif
	lg	%r14,328(%r15)
	lg	%r2,RETVAL(%r15)
.ifndef NO_TCC_OUT
	mvc	STACK+64(4,%r15),TCCNT(%r15)
.endif
.ifdef SP_NOT_RESTORED
	aghi	%r15,STACK-8
.else
	aghi	%r15,STACK
.endif
	br	%r14
