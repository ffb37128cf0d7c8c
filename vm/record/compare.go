package record

import (
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/recording"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// Verdict is how a recording compares with the model.
type Verdict string

// Verdicts.
const (
	Agree      Verdict = "ok"
	Disagree   Verdict = "MISMATCH"
	NotInBTF   Verdict = "not in kernel" // the target is not in this kernel's BTF: model only
	Incomplete Verdict = "incomplete"    // the guest did not finish the case
)

// Comparison is the outcome of comparing one recording with the model.
type Comparison struct {
	Case    string
	Verdict Verdict
	// Problems lists every disagreement, each naming the case line.
	Problems []string
	// Steps, Runs, Invocations and Images count what was compared.
	Steps, Runs, Invocations, Images int
}

// CompareBoot is Compare with the size pass of the recording's own boot
// (SizeFunc: on x86_64 its CPU features decide the return sequence and
// call-depth accounting, and so the image size). When those features
// cannot be derived, the comparison fails and says why.
func CompareBoot(rec *recording.Recording, c *cases.Case, prof *trampoline.Profile, a *trampoline.Arch) Comparison {
	sf, err := SizeFunc(rec)
	if err != nil {
		return Comparison{Case: c.Name, Verdict: Disagree, Problems: []string{fmt.Sprintf("%s: %v", c.File, err)}}
	}
	return Compare(rec, c, prof, a, sf)
}

// bootTarget is the case's target with the ids of the recorded boot: its
// BTF id, and for a BPF-program target the program's id (the key's upper
// half, see bpf_trampoline_compute_key).
func bootTarget(rec *recording.Recording, c *cases.Case) trampoline.Target {
	target := c.Target
	if rec.Start != nil {
		target.BTFID = rec.Start.BTFIDs[c.Target.Name]
		if target.Attrs.BPFProg && rec.Start.TargetProg != nil {
			target.ObjID = rec.Start.TargetProg.ID
		}
	}
	return target
}

// Compare replays the case on the model step by step next to the
// recording (sizeFunc is the arch generator's size pass, for the
// page-size E2BIG): every attach and detach must end the same way (errno and
// stage), and at every run each program must have been invoked in the
// predicted order and phase and have seen the predicted argument count,
// func_meta, cookie slot, cookie values, attach cookie and IP.
func Compare(rec *recording.Recording, c *cases.Case, prof *trampoline.Profile, a *trampoline.Arch, sizeFunc func(*trampoline.Plan) (int, error)) Comparison {
	cmp := Comparison{Case: c.Name, Verdict: Agree}
	bad := func(line int, format string, args ...any) {
		cmp.Problems = append(cmp.Problems, fmt.Sprintf("%s:%d: %s", c.File, line, fmt.Sprintf(format, args...)))
	}
	if rec.Start != nil && rec.Start.BTFIDs[c.Target.Name] == 0 {
		cmp.Verdict = NotInBTF
		return cmp
	}
	// A fact the model read from BTF, confirmed live: the guest's probe
	// load of a trivial fsession program at start.
	if rec.Start != nil && rec.Start.FsessionProbe != "" && rec.Start.FsessionSupported != prof.Fsession {
		bad(c.TargetLine, "the model says fsession %s (%s), the kernel's probe load at start says %s", yesNo(prof.Fsession), prof.Name, rec.Start.FsessionProbe)
	}
	if len(rec.Steps) != len(c.Steps) {
		// The first step the kernel did not run (or the case's first line
		// when it ran more than the case has).
		line := c.TargetLine
		if len(rec.Steps) < len(c.Steps) {
			line = c.Steps[len(rec.Steps)].Line
		}
		bad(line, "the kernel ran %d of the case's %d steps", len(rec.Steps), len(c.Steps))
		for _, e := range rec.Errors {
			bad(line, "guest: %s", e)
		}
	}
	target := bootTarget(rec, c)
	if rec.Start != nil {
		// bpf_trampoline_compute_key: the kernel's key is the model's.
		if k := rec.Start.TrampolineKey; k != 0 && k != target.Key() {
			bad(c.TargetLine, "trampoline key %d, the model computes %d", k, target.Key())
		}
		for _, capt := range rec.Captures {
			if capt.Name != target.KsymName() {
				bad(c.TargetLine, "image after step %d is %s, the model names it %s", capt.Step, capt.Name, target.KsymName())
				break
			}
		}
	}
	obsByStep := map[int]guestapi.Observations{}
	for _, o := range rec.Observations {
		obsByStep[o.Step] = o
	}
	// The steps both ran, up to the first the recording names otherwise.
	n := min(len(rec.Steps), len(c.Steps))
	for i := 0; i < n; i++ {
		if ks, st := rec.Steps[i], c.Steps[i]; ks.Line != st.Line || ks.Op != string(st.Op) {
			bad(st.Line, "recorded step %d is %s at line %d, the case has %s", i, ks.Op, ks.Line, st.Op)
			n = i
			break
		}
	}
	outcomes := map[int]cases.Outcome{}
	if n > 0 {
		res, err := cases.ReplayWith(c, prof, a, cases.ReplayOptions{Target: &target, SizeFunc: sizeFunc, Through: n - 1, Lenient: true})
		if err != nil {
			bad(c.TargetLine, "model: %v", err)
			n = 0
		} else {
			for _, o := range res.Ops {
				outcomes[o.Step] = o
			}
		}
	}
	var plan *trampoline.Plan // the model's plan after the last attach or detach
	for i := 0; i < n; i++ {
		st, ks := c.Steps[i], rec.Steps[i]
		switch st.Op {
		case cases.OpAttach:
			cmp.Steps++
			o := outcomes[i]
			plan = o.Plan
			if o.Result == cases.ResultError {
				bad(st.Line, "model: %s", o.Reason)
				continue
			}
			model, stage := o.Result, o.Stage
			if ks.Errno != model || (model != "ok" && ks.Stage != stage) {
				bad(st.Line, "attach %s: kernel %s%s, model %s%s", st.Prog.Name, ks.Errno, at(ks.Stage), model, at(stage))
			}
			if st.Expect != "" && ks.Errno != st.Expect {
				bad(st.Line, "attach %s: kernel %s, the case expects %s", st.Prog.Name, ks.Errno, st.Expect)
			}
		case cases.OpDetach:
			cmp.Steps++
			o := outcomes[i]
			plan = o.Plan
			if o.Result == cases.ResultError {
				if o.Reason == "the model has no link" {
					bad(st.Line, "detach %s: the model has no link", st.Prog.Name)
					continue
				}
				bad(st.Line, "model: %s", o.Reason)
			}
			if ks.Errno != "ok" {
				bad(st.Line, "detach %s: kernel %s", st.Prog.Name, ks.Errno)
			}
		case cases.OpRun:
			cmp.Runs++
			if ks.Errno != "ok" {
				bad(st.Line, "run: BPF_PROG_TEST_RUN failed in the kernel: %s %s", ks.Errno, ks.Error)
				continue
			}
			var want []trampoline.Expected
			if plan != nil {
				want = trampoline.Predict(plan, 0, nil).Calls
			}
			cmp.Invocations += compareRun(bad, st.Line, want, obsByStep[i], plan, target, rec)
		}
	}
	if len(cmp.Problems) == 0 {
		// Only when the model agrees on every step is its plan the one
		// the kernel built the captured images from.
		for _, r := range CompareImages(rec, c, prof) {
			cmp.Images++
			if !r.OK {
				bad(stepLine(c, r.Step), "image after step %d: %s", r.Step, r.Diff)
			}
		}
	}
	if !rec.Complete {
		cmp.Verdict = Incomplete
	}
	if len(cmp.Problems) > 0 {
		cmp.Verdict = Disagree
	}
	return cmp
}

// stepLine is the case line of step i (the target line when the
// recording names a step the case does not have).
func stepLine(c *cases.Case, i int) int {
	if i >= 0 && i < len(c.Steps) {
		return c.Steps[i].Line
	}
	return c.TargetLine
}

func at(stage string) string {
	if stage == "" {
		return ""
	}
	return " at " + stage
}

func compareRun(bad func(int, string, ...any), line int, want []trampoline.Expected, got guestapi.Observations, plan *trampoline.Plan, target trampoline.Target, rec *recording.Recording) int {
	if got.Lost > 0 || len(got.Errors) > 0 {
		bad(line, "run: %d observations lost %v", got.Lost, got.Errors)
	}
	if len(got.Records) != len(want) {
		var g, w []string
		for _, o := range got.Records {
			g = append(g, o.Prog+"/"+o.Phase)
		}
		for _, e := range want {
			w = append(w, e.Node.Prog+"/"+string(e.Phase))
		}
		bad(line, "run: the kernel invoked %v, the model predicts %v", g, w)
		return 0
	}
	var ip uint64
	if rec.Start != nil {
		ip = rec.Start.Symbols[target.Name]
	}
	if len(want) == 0 {
		return 0
	}
	argSlots := uint64(plan.ArgSlots)
	for k, e := range want {
		o := got.Records[k]
		who := fmt.Sprintf("run: invocation %d (%s %s)", k, e.Node.Prog, e.Phase)
		if o.Prog != e.Node.Prog || o.Phase != string(e.Phase) {
			bad(line, "%s: the kernel ran %s %s", who, o.Prog, o.Phase)
			continue
		}
		if o.ArgCnt != argSlots {
			bad(line, "%s: arg count %d, model %d", who, o.ArgCnt, argSlots)
		}
		if o.FrameStatus == "ok" && len(o.Frame) > 15 && o.FrameOffset == -128 {
			if m := o.Frame[15]; m != e.FuncMeta {
				bad(line, "%s: func_meta %#x, model %#x", who, m, e.FuncMeta)
			}
		}
		if o.AttachCookie != uint64(e.Node.LinkCookie) {
			bad(line, "%s: attach cookie %#x, model %#x", who, o.AttachCookie, uint64(e.Node.LinkCookie))
		}
		if e.Node.IP && o.IP != nil && ip != 0 && *o.IP != ip {
			bad(line, "%s: func ip %#x, the function is at %#x", who, *o.IP, ip)
		}
		if e.Node.Cookie {
			if o.CookieSlot == nil || *o.CookieSlot != int64(e.Node.CookieIndex) {
				bad(line, "%s: cookie slot %v, model %d", who, deref(o.CookieSlot), e.Node.CookieIndex)
			}
			if o.CookieRead == nil {
				bad(line, "%s: no cookie value recorded", who)
			} else if e.Phase == trampoline.PhaseEntry && *o.CookieRead != 0 {
				bad(line, "%s: cookie %#x at entry, the trampoline zeroes it", who, *o.CookieRead)
			} else if e.Phase == trampoline.PhaseExit && *o.CookieRead != trampoline.CookieValueFor(o.ProgIndex) {
				bad(line, "%s: cookie %#x at exit, entry wrote %#x", who, *o.CookieRead, trampoline.CookieValueFor(o.ProgIndex))
			}
		}
	}
	return len(want)
}

func deref(p *int64) any {
	if p == nil {
		return "none"
	}
	return *p
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
