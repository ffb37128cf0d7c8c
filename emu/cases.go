package emu

import (
	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// CaseRun is one run step of a case with the model's trampoline at that
// point.
type CaseRun struct {
	// Step is the index in the case's steps, Line its line.
	Step, Line int
	// Plan is the model's image at the run (nil: no program attached).
	Plan *trampoline.Plan
	Run  Run
}

// RunSteps replays a case's attach and detach steps on the model and
// returns every run step with the plan in force and the run's arguments
// (RunFor).
func RunSteps(c *cases.Case, prof *trampoline.Profile, a *trampoline.Arch) ([]CaseRun, error) {
	res, err := cases.ReplayWith(c, prof, a, cases.ReplayOptions{SizeFunc: generators.SizeFunc(a.Name), Through: -1})
	if err != nil {
		return nil, err
	}
	var out []CaseRun
	m := trampoline.ModelOf(c.Target.Proto)
	var cur *trampoline.Plan // the plan after the last attach or detach so far
	next := 0
	for i, st := range c.Steps {
		for next < len(res.Ops) && res.Ops[next].Step < i {
			cur = res.Ops[next].Plan
			next++
		}
		if st.Op == cases.OpRun {
			out = append(out, CaseRun{Step: i, Line: st.Line, Run: RunFor(c.Target, m, st.Args), Plan: cur})
		}
	}
	return out, nil
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
	if p != nil && p.Flags&trampoline.FlagTailCallCtx != 0 && s.Arch == "x86_64" {
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
// step and returns the model's image then (nil: no program attached).
func PlanAt(c *cases.Case, prof *trampoline.Profile, a *trampoline.Arch, step int) (*trampoline.Plan, error) {
	res, err := cases.ReplayWith(c, prof, a, cases.ReplayOptions{SizeFunc: generators.SizeFunc(a.Name), Through: step})
	if err != nil {
		return nil, err
	}
	if !res.Final.HasImage() {
		return nil, nil
	}
	return res.Final.Plan(), nil
}
