# Valid instructions the trampolines never contain, each after a nopr
# (TestS390DecodeErrors takes them one at a time by label): the emulator
# must stop at them.
	agr	%r1,%r2
	mvi	0(%r15),1
	lay	%r15,-160(%r15)
	brc	8,.
	lhi	%r1,1
	stmy	%r1,%r2,8(%r15)
