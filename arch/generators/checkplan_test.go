package generators

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// Every generator refuses, in its size pass and in its real pass, the
// plans arch.CheckPlan refuses, with CheckPlan's words: the shared checks
// are wired into all of them, and none renders bytes for a plan no
// kernel can have built.
func TestGeneratorsRefuseImpossiblePlans(t *testing.T) {
	corpus, err := cases.Corpus()
	require.NoError(t, err)
	// good is a real plan of the corpus with an argument and an fexit
	// program, copied so that each mutation starts afresh.
	good := func(an string, g *Generator) *trampoline.Plan {
		a := jitArch(t, an)
		for _, c := range corpus {
			for _, prof := range c.Profiles() {
				res, err := cases.Replay(c, prof, a, g.Size)
				if err != nil || !res.Final.HasImage() {
					continue
				}
				p := res.Final.Plan()
				if len(p.Fexit) == 0 || p.Func.NrArgs == 0 {
					continue
				}
				cp := *p
				cp.Func.ArgSize = append([]int(nil), p.Func.ArgSize...)
				return &cp
			}
		}
		t.Fatalf("%s: no corpus plan with an argument and an fexit program", an)
		return nil
	}
	bad := []struct {
		name   string
		mutate func(*trampoline.Plan)
		want   string
	}{
		{"other arch", func(p *trampoline.Plan) { p.Arch = "ppc64le" }, "generator given a plan for ppc64le"},
		{"sizes", func(p *trampoline.Plan) { p.Func.NrArgs++ }, "function model has"},
		{"too many", func(p *trampoline.Plan) {
			p.Func.NrArgs, p.Func.ArgSize, p.ArgSlots = 13, make([]int, 13), 13
			for i := range p.Func.ArgSize {
				p.Func.ArgSize[i] = 8
			}
		}, "13 arguments, the verifier allows at most 12"},
		{"arg size", func(p *trampoline.Plan) { p.Func.ArgSize[0] = 24 }, "argument 0 is 24 bytes"},
		{"indirect", func(p *trampoline.Plan) { p.Flags |= trampoline.FlagIndirect }, "BPF_TRAMP_F_INDIRECT"},
		{"no call orig", func(p *trampoline.Plan) { p.Flags = 0 }, "without BPF_TRAMP_F_CALL_ORIG"},
	}
	for _, an := range []string{"x86_64", "arm64", "riscv64", "s390x"} {
		g, err := For(an)
		require.NoError(t, err)
		_, err = g.Size(good(an, g))
		require.NoError(t, err, "%s: the good plan", an)
		for _, b := range bad {
			p := good(an, g)
			b.mutate(p)
			_, err := g.Size(p)
			require.ErrorContains(t, err, b.want, "%s %s: size pass", an, b.name)
			_, err = g.Generate(p, g.Placeholder(good(an, g)))
			require.ErrorContains(t, err, b.want, "%s %s: generate", an, b.name)
		}
	}
}
