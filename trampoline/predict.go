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
		if n.Returns != 0 { // a non-zero fmod_ret skips the rest and the original
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
	if p.FsessionCount > 0 {
		meta = uint64(p.ExitFuncMeta)
	}
	for _, n := range p.Fexit {
		if n.StoreFuncMeta {
			meta = uint64(n.FuncMeta)
		}
		if !skip[n.Prog] {
			pr.Calls = append(pr.Calls, Expected{n, n.Phase, meta, slot})
		}
	}
	pr.Retval = slot
	return pr
}
