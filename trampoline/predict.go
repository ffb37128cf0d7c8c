package trampoline

// Expected is one program invocation the model predicts.
type Expected struct {
	Node  Node
	Phase Phase
	// FuncMeta is ctx[-1] while the program runs.
	FuncMeta uint64
	// Ret is the return-value slot the program sees.
	Ret uint64
}

// Prediction is what the model says one trigger does.
type Prediction struct {
	Calls []Expected
	// OrigRuns is how often the traced function's body runs (0 when an
	// fmod_ret program returned non-zero); OrigCalled how often the image
	// calls it.
	OrigRuns, OrigCalled int
	Retval               uint64
}

// Predict lists the invocations of one trigger in order with the
// func_meta word and return slot each program sees. The func_meta
// sequence models the stores of __arch_prepare_bpf_trampoline /
// prepare_trampoline; skipped programs
// (their enter helper returned 0) are left out and do not store a return
// value.
func Predict(p *Plan, origRet uint64, skip map[string]bool) Prediction {
	var pr Prediction
	meta := uint64(p.EntryFuncMeta)
	slot := uint64(0) // zeroed by fsession, or by the fmod_ret prologue
	for _, n := range p.Fentry {
		if n.StoreFuncMeta {
			meta = uint64(n.FuncMeta)
		}
		if !skip[n.Prog] {
			pr.Calls = append(pr.Calls, Expected{n, n.Phase, meta, slot})
		}
	}
	modret := false
	for _, n := range p.ModReturn {
		if skip[n.Prog] {
			continue
		}
		pr.Calls = append(pr.Calls, Expected{n, PhaseModRet, meta, slot})
		slot = uint64(n.Returns)
		if p.ModRetExtended {
			slot = extendRet(slot, p.Func.RetSize, p.Func.RetFlags)
		}
		if slot != 0 { // a non-zero fmod_ret skips the rest and the original
			modret = true
			break
		}
	}
	if !modret {
		pr.OrigRuns = 1
		slot = origRet
		if p.Flags&FlagCallOrig != 0 {
			pr.OrigCalled = 1
		}
	}
	if p.FsessionCount > 0 && !(modret && p.ModRetSkipsIsReturn) {
		meta = uint64(p.ExitFuncMeta)
	}
	for _, n := range p.Fexit {
		if n.StoreFuncMeta {
			meta = uint64(n.FuncMeta)
		}
		if !skip[n.Prog] {
			ph := n.Phase
			if n.Kind.Session() && meta>>IsReturnShift&1 == 0 {
				ph = PhaseEntry // ModRetSkipsIsReturn: it looks like an entry
			}
			pr.Calls = append(pr.Calls, Expected{n, ph, meta, slot})
		}
	}
	pr.Retval = slot
	return pr
}

// extendRet is a return value as sign_zero_extend leaves it for a
// function returning size bytes (signed per flags): 1, 2 and 4 bytes
// extended, anything else unchanged.
func extendRet(v uint64, size, flags int) uint64 {
	signed := flags&FmodelSignedArg != 0
	switch {
	case size == 1 && signed:
		return uint64(int64(int8(v)))
	case size == 1:
		return uint64(uint8(v))
	case size == 2 && signed:
		return uint64(int64(int16(v)))
	case size == 2:
		return uint64(uint16(v))
	case size == 4 && signed:
		return uint64(int64(int32(v)))
	case size == 4:
		return uint64(uint32(v))
	}
	return v
}
