package emu

import (
	"fmt"
	"slices"

	"github.com/bpftramp/tramp/trampoline"
)

// Expected, Prediction and Predict are the model's prediction of one
// trigger; they live in the trampoline package, shared with vm/record.
type (
	Expected   = trampoline.Expected
	Prediction = trampoline.Prediction
)

// Predict is trampoline.Predict.
func Predict(p *trampoline.Plan, origRet uint64, skip map[string]bool) Prediction {
	return trampoline.Predict(p, origRet, skip)
}

// maskRet keeps the return value's bytes, as the body's stub returns it.
func maskRet(m trampoline.FuncModel, v uint64) uint64 {
	if m.RetSize > 0 && m.RetSize < 8 {
		return v & (1<<(8*m.RetSize) - 1)
	}
	return v
}

// Verify compares a run with the model's prediction for the plan the
// image was generated from and appends every disagreement to the
// result's violations: program order and phases (each phase of a
// program exactly once), the func_meta word, argument count, arguments,
// return value, IP, attach cookie and session cookie each program saw,
// whether the original function ran, and the trampoline's return value.
func Verify(res *Result, p *trampoline.Plan, s *Setup, r *Run) {
	pred := Predict(p, maskRet(s.Model, r.OrigRet), r.Skip)
	bad := func(check, format string, args ...any) {
		res.Violations = append(res.Violations, Violation{Check: check, Off: -1, Msg: fmt.Sprintf(format, args...)})
	}
	// Each phase of each program at most once (or as often as the
	// prediction has it).
	predicted := map[string]int{}
	for _, e := range pred.Calls {
		predicted[e.Node.Prog+"/"+string(e.Phase)]++
	}
	seen := map[string]int{}
	for _, c := range res.Calls {
		k := c.Prog + "/" + c.Phase
		seen[k]++
		if seen[k] > max(1, predicted[k]) {
			bad(CheckOrder, "%s ran its %s phase twice", c.Prog, c.Phase)
		}
	}
	var got, want []string
	for _, c := range res.Calls {
		got = append(got, c.Prog+"/"+c.Phase)
	}
	for _, e := range pred.Calls {
		want = append(want, e.Node.Prog+"/"+string(e.Phase))
	}
	if !slices.Equal(got, want) {
		bad(CheckOrder, "programs ran as %v, the model predicts %v", got, want)
	}
	words := ArgWords(s.Arch, s.Model, r.Args)
	cookies := map[string]uint64{}
	progIdx := map[string]int{}
	for _, pr := range s.Progs {
		progIdx[pr.Name] = pr.Index
	}
	for k := 0; k < len(res.Calls) && k < len(pred.Calls); k++ {
		c, e := res.Calls[k], pred.Calls[k]
		if c.Prog != e.Node.Prog || c.Phase != string(e.Phase) {
			continue
		}
		who := fmt.Sprintf("invocation %d (%s %s)", k, c.Prog, c.Phase)
		if c.FuncMeta != e.FuncMeta {
			bad(CheckObservation, "%s: func_meta %#x, model %#x", who, c.FuncMeta, e.FuncMeta)
		}
		if c.ArgCnt != uint64(p.ArgSlots) {
			bad(CheckObservation, "%s: arg count %d, model %d", who, c.ArgCnt, p.ArgSlots)
		}
		n := min(len(words), len(c.Args))
		if !slices.Equal(c.Args[:n], words[:n]) {
			bad(CheckObservation, "%s: arguments %#x, the caller passed %#x", who, c.Args, words)
		}
		if c.Ret != nil && *c.Ret != e.Ret {
			bad(CheckObservation, "%s: return value %#x, model %#x", who, *c.Ret, e.Ret)
		}
		if e.Node.IP {
			if c.IP == nil || *c.IP != s.Func {
				bad(CheckObservation, "%s: func ip %v, the function is at %#x", who, hexPtr(c.IP), s.Func)
			}
		}
		if c.AttachCookie != uint64(e.Node.LinkCookie) {
			bad(CheckObservation, "%s: attach cookie %#x, model %#x", who, c.AttachCookie, uint64(e.Node.LinkCookie))
		}
		if e.Node.Cookie {
			switch {
			case c.CookieSlot == nil || *c.CookieSlot != int64(e.Node.CookieIndex):
				bad(CheckObservation, "%s: cookie slot %v, model %d", who, derefI(c.CookieSlot), e.Node.CookieIndex)
			case c.CookieRead == nil:
			case e.Phase == trampoline.PhaseEntry && *c.CookieRead != 0:
				bad(CheckObservation, "%s: cookie %#x at entry, the trampoline zeroes it", who, *c.CookieRead)
			case e.Phase == trampoline.PhaseExit:
				if w, ok := cookies[c.Prog]; ok && *c.CookieRead != w {
					bad(CheckObservation, "%s: cookie %#x at exit, entry wrote %#x", who, *c.CookieRead, w)
				} else if !ok && *c.CookieRead != trampoline.CookieValueFor(progIdx[c.Prog]) {
					bad(CheckObservation, "%s: cookie %#x at exit, entry did not run", who, *c.CookieRead)
				}
			}
			if c.CookieWritten != nil {
				cookies[c.Prog] = *c.CookieWritten
			}
		}
	}
	if res.OrigRuns != pred.OrigRuns {
		bad(CheckModRet, "the traced function ran %d times, the model says %d", res.OrigRuns, pred.OrigRuns)
	} else if res.OrigCalled != pred.OrigCalled {
		bad(CheckControl, "the image called the traced function %d times, the model says %d", res.OrigCalled, pred.OrigCalled)
	}
	if res.Completed && res.Retval != pred.Retval {
		check := CheckRetval
		if pred.OrigRuns == 0 {
			check = CheckModRet
		}
		bad(check, "the caller got %#x, the model predicts %#x", res.Retval, pred.Retval)
	}
	if !res.Completed && len(res.Violations) == 0 {
		bad(CheckControl, "the run did not return to the caller")
	}
}

func hexPtr(p *uint64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprintf("%#x", *p)
}

func derefI(p *int64) any {
	if p == nil {
		return "none"
	}
	return *p
}
