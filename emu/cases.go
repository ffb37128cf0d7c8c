package emu

import (
	"fmt"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// CaseRun is one run step of a case on one function with the model's
// trampoline of that function at that point.
type CaseRun struct {
	// Step is the index in the case's steps, Line its line.
	Step, Line int
	// Func is the function run.
	Func string
	// Plan is the model's image at the run (nil: no program attached).
	Plan *trampoline.Plan
	Run  Run
}

// RunSteps replays a case's attach and detach steps on the model and
// returns every run step with the plan in force and the run's arguments
// (RunFor). In a case with several targets a run step is one CaseRun per
// function it runs: the one it names, else every target the kernel's
// test run calls, in its order (TestRunOrder).
func RunSteps(c *cases.Case, prof *trampoline.Profile, a *trampoline.Arch) ([]CaseRun, error) {
	res, err := cases.ReplayWith(c, prof, a, cases.ReplayOptions{SizeFunc: generators.SizeFunc(a.Name), Through: -1})
	if err != nil {
		return nil, err
	}
	var out []CaseRun
	var cur map[string]*trampoline.Plan // the plans after the last attach or detach so far
	next := 0
	for i, st := range c.Steps {
		for next < len(res.Ops) && res.Ops[next].Step < i {
			cur = res.Ops[next].Plans
			next++
		}
		if st.Op != cases.OpRun {
			continue
		}
		for _, f := range RunFuncs(c, st) {
			t, _ := c.LookupTarget(f)
			out = append(out, CaseRun{Step: i, Line: st.Line, Func: f, Run: RunFor(t, trampoline.ModelOf(t.Proto), st.Args), Plan: cur[f]})
		}
	}
	return out, nil
}

// RunFuncs are the functions a run step runs: the one it names, the
// case's target, or in a case with several targets those the kernel's
// test run calls, in its order.
func RunFuncs(c *cases.Case, st cases.Step) []string {
	switch {
	case st.Func != "":
		return []string{st.Func}
	case !c.MultiTarget():
		return []string{c.Target.Name}
	}
	var out []string
	for _, f := range TestRunOrder {
		if _, ok := c.LookupTarget(f); ok {
			out = append(out, f)
		}
	}
	return out
}

// Generated is an image tramp generated for a plan, ready to run.
type Generated struct {
	Plan  *trampoline.Plan
	Image *arch.Image
	Addrs arch.Addrs
	Setup Setup
}

// Generate renders a plan with addrs (nil: placeholder addresses) and
// describes it for the emulator.
func Generate(p *trampoline.Plan, addrs *arch.Addrs, progs []*trampoline.Prog) (*Generated, error) {
	g, err := generators.For(p.Arch)
	if err != nil {
		return nil, err
	}
	return GenerateWith(g, p, addrs, progs)
}

// GenerateWith is Generate with a given generator (an x86 one with a
// boot's CPU features, say).
func GenerateWith(g *generators.Generator, p *trampoline.Plan, addrs *arch.Addrs, progs []*trampoline.Prog) (*Generated, error) {
	a := g.Placeholder(p)
	if addrs != nil {
		a = *addrs
	}
	img, err := g.Generate(p, a)
	if err != nil {
		return nil, err
	}
	s, err := FromImage(p, img, a, progs, g.OrigEntry(a.Func))
	if err != nil {
		return nil, err
	}
	return &Generated{Plan: p, Image: img, Addrs: a, Setup: s}, nil
}

// Check runs a setup once and verifies the run against the plan.
func Check(s Setup, p *trampoline.Plan, r Run) (*Result, error) {
	if p != nil && p.Flags&trampoline.FlagTailCallCtx != 0 && (s.Arch == "x86_64" || s.Arch == "s390x") {
		s.TailCallCtx = true
	}
	e, err := New(s)
	if err != nil {
		return nil, err
	}
	res := e.Run(r)
	Verify(res, p, &s, &r)
	return res, nil
}

// PlanAt replays a case's attach and detach steps up to and including
// step and returns the model's image of function fn then (nil: no
// program attached there; "" is the case's target).
func PlanAt(c *cases.Case, prof *trampoline.Profile, a *trampoline.Arch, step int, fn string) (*trampoline.Plan, error) {
	res, err := cases.ReplayWith(c, prof, a, cases.ReplayOptions{SizeFunc: generators.SizeFunc(a.Name), Through: step})
	if err != nil {
		return nil, err
	}
	if fn == "" {
		fn = c.Target.Name
	}
	tr := res.Model.Trampoline(fn)
	if tr == nil {
		return nil, fmt.Errorf("%s is not a target of %s", fn, c.Name)
	}
	if !tr.HasImage() {
		return nil, nil
	}
	return tr.Plan(), nil
}
