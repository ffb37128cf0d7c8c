package record

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/emu"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/recording"
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

// bootOptions are the replay options that give every target of the case
// the ids of the recorded boot.
func bootOptions(rec *recording.Recording, c *cases.Case) cases.ReplayOptions {
	target := bootTarget(rec, c)
	opt := cases.ReplayOptions{Target: &target, Through: -1}
	if c.MultiTarget() && rec.Start != nil {
		opt.Functions = map[string]trampoline.Target{}
		for _, t := range c.Extra {
			t.BTFID = rec.Start.BTFIDs[t.Name]
			opt.Functions[t.Name] = t
		}
	}
	return opt
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
	if rec.Start != nil {
		for _, t := range c.Targets() {
			if rec.Start.BTFIDs[t.Name] == 0 {
				cmp.Verdict = NotInBTF
				return cmp
			}
		}
	}
	// A fact the model read from BTF, confirmed live: the guest's probe
	// load of a trivial fsession program at start, which also needs the
	// arch's JIT to support fsession (bpf_jit_supports_fsession).
	if fs := prof.Fsession && prof.FsessionJIT(a); rec.Start != nil && rec.Start.FsessionProbe != "" && rec.Start.FsessionSupported != fs {
		bad(c.TargetLine, "the model says fsession %s (%s on %s), the kernel's probe load at start says %s", yesNo(fs), prof.Name, a.Name, rec.Start.FsessionProbe)
	}
	// And the multi attach types: a trivial fentry.multi load.
	if rec.Start != nil && rec.Start.TracingMultiProbe != "" && (rec.Start.TracingMultiProbe == "ok") != prof.TracingMulti {
		bad(c.TargetLine, "the model says tracing multi links %s (%s), the kernel's probe load at start says %s", yesNo(prof.TracingMulti), prof.Name, rec.Start.TracingMultiProbe)
	}
	if rec.Start != nil && prof.TracingMulti {
		for cnt, got := range rec.Start.TracingMultiCnt {
			if want := multiCntModel(prof, a, cnt); want != got {
				bad(c.TargetLine, "a multi link of %s functions: kernel %s, model %s (the guest's probe at start)", cnt, got, want)
			}
		}
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
	opt := bootOptions(rec, c)
	target := *opt.Target
	if rec.Start != nil {
		// bpf_trampoline_compute_key: the kernel's key is the model's.
		if k := rec.Start.TrampolineKey; k != 0 && k != target.Key() {
			bad(c.TargetLine, "trampoline key %d, the model computes %d", k, target.Key())
		}
		for _, capt := range rec.Captures {
			fn := captureFunc(c, capt)
			t := target
			if ft, ok := opt.Functions[fn]; ok {
				t = ft
			}
			if capt.Name != t.KsymName() {
				bad(c.TargetLineOf(fn), "image of %s after step %d is %s, the model names it %s", fn, capt.Step, capt.Name, t.KsymName())
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
		opt.SizeFunc, opt.Through, opt.Lenient = sizeFunc, n-1, true
		res, err := cases.ReplayWith(c, prof, a, opt)
		if err != nil {
			bad(c.TargetLine, "model: %v", err)
			n = 0
		} else {
			for _, o := range res.Ops {
				outcomes[o.Step] = o
			}
		}
	}
	var plans map[string]*trampoline.Plan // the model's plans after the last attach or detach
	for i := 0; i < n; i++ {
		st, ks := c.Steps[i], rec.Steps[i]
		switch st.Op {
		case cases.OpAttach:
			cmp.Steps++
			o := outcomes[i]
			plans = o.Plans
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
			plans = o.Plans
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
			got := obsByStep[i]
			if st.Func != "" && c.MultiTarget() {
				var err error
				if got, err = recordsOf(c, got, st.Func); err != nil {
					bad(st.Line, "run %s: %v", st.Func, err)
					continue
				}
			}
			cmp.Invocations += compareRun(bad, st.Line, predictRun(c, st, plans), got, rec)
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

// multiCntModel is the model's errno for a multi link of cnt functions
// (the guest's count probe): the link's own checks, which come before
// any function is looked at.
func multiCntModel(prof *trampoline.Profile, a *trampoline.Arch, cnt string) string {
	n, err := strconv.Atoi(cnt)
	if err != nil || n < 0 {
		return "bad count " + cnt
	}
	k := trampoline.NewKernel(prof, a, nil, nil)
	err = k.CheckMultiLink(&trampoline.Prog{Name: "probe_multi", Kind: trampoline.KindFentryMulti}, n)
	var kerr *trampoline.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &kerr):
		return kerr.Errno.String()
	}
	return err.Error()
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

// predicted is one invocation the model predicts for a run step, on
// the function it runs on.
type predicted struct {
	trampoline.Expected
	fn       string
	argSlots int
}

// predictRun is what the model says one run step observes: the
// invocations on each function the step runs (emu.RunFuncs), in order.
func predictRun(c *cases.Case, st cases.Step, plans map[string]*trampoline.Plan) []predicted {
	fns := emu.RunFuncs(c, st)
	var out []predicted
	for _, f := range fns {
		p := plans[f]
		if p == nil {
			continue
		}
		for _, e := range trampoline.Predict(p, 0, nil).Calls {
			out = append(out, predicted{Expected: e, fn: f, argSlots: p.ArgSlots})
		}
	}
	return out
}

// ObservedFunc is the target an observation ran on: the case's target,
// or in a case with several targets the one whose test-run arguments the
// program read (bpf_fentry_test1 to 6 take distinct ones; "?" when none
// matches).
func ObservedFunc(c *cases.Case, r guestapi.Obs) string {
	if !c.MultiTarget() {
		return c.Target.Name
	}
	for _, t := range c.Targets() {
		if tt, ok := emu.TestTargets[t.Name]; ok && tt.Matches(r.ArgCnt, r.Args) {
			return t.Name
		}
	}
	return "?"
}

// recordsOf keeps the observations of one function of a trigger that
// calls several (ObservedFunc).
func recordsOf(c *cases.Case, o guestapi.Observations, fn string) (guestapi.Observations, error) {
	if _, ok := emu.TestTargets[fn]; !ok {
		return o, fmt.Errorf("%s is not called by the kernel's test run, so its invocations cannot be told apart", fn)
	}
	out := o
	out.Records = nil
	for _, r := range o.Records {
		if ObservedFunc(c, r) == fn {
			// Orders count within fn's invocations, as in a trigger that
			// called fn alone (the records keep the kernel's order).
			r.Order = uint64(len(out.Records))
			out.Records = append(out.Records, r)
		}
	}
	return out, nil
}

func compareRun(bad func(int, string, ...any), line int, want []predicted, got guestapi.Observations, rec *recording.Recording) int {
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
	for k, e := range want {
		o := got.Records[k]
		who := fmt.Sprintf("run: invocation %d (%s %s)", k, e.Node.Prog, e.Phase)
		if len(want) > 0 && want[0].fn != want[len(want)-1].fn {
			who = fmt.Sprintf("run: invocation %d (%s %s on %s)", k, e.Node.Prog, e.Phase, e.fn)
		}
		if o.Prog != e.Node.Prog || o.Phase != string(e.Phase) {
			bad(line, "%s: the kernel ran %s %s", who, o.Prog, o.Phase)
			continue
		}
		if o.ArgCnt != uint64(e.argSlots) {
			bad(line, "%s: arg count %d, model %d", who, o.ArgCnt, e.argSlots)
		}
		if tt, ok := emu.TestTargets[e.fn]; ok && o.ArgCnt == uint64(len(tt.Args)) && !tt.Matches(o.ArgCnt, o.Args) {
			bad(line, "%s: arguments %#x, the test run passes %#x to %s", who, o.Args[:min(len(o.Args), len(tt.Args))], tt.Args, e.fn)
		}
		if o.FrameStatus == "ok" && len(o.Frame) > 15 && o.FrameOffset == -128 {
			if m := o.Frame[15]; m != e.FuncMeta {
				bad(line, "%s: func_meta %#x, model %#x", who, m, e.FuncMeta)
			}
		}
		if o.AttachCookie != uint64(e.Node.LinkCookie) {
			bad(line, "%s: attach cookie %#x, model %#x", who, o.AttachCookie, uint64(e.Node.LinkCookie))
		}
		var ip uint64
		if rec.Start != nil {
			ip = rec.Start.Symbols[e.fn]
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
