package emu

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/arch/s390x"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// Every run step of every corpus case, on every profile and arch the case
// applies to: tramp's image, executed, agrees with the model.
func TestCorpusModel(t *testing.T) {
	cs, err := cases.Corpus()
	require.NoError(t, err)
	runs := 0
	for _, c := range cs {
		for _, cb := range c.Combos() {
			prof, a := cb.Profile, cb.Arch
			steps, err := RunSteps(c, prof, a)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			for _, cr := range steps {
				if cr.Plan == nil {
					continue
				}
				g, err := Generate(cr.Plan, nil, c.Progs)
				if err != nil {
					t.Errorf("%s %s %s line %d: %v", c.Name, prof.Name, a.Name, cr.Line, err)
					continue
				}
				res, err := Check(g.Setup, cr.Plan, cr.Run)
				require.NoError(t, err)
				runs++
				if err := res.Err(); err != nil {
					t.Errorf("%s %s %s line %d: %v", c.Name, prof.Name, a.Name, cr.Line, err)
				}
			}
		}
	}
	t.Logf("%d runs of generated images agree with the model", runs)
	if runs == 0 {
		t.Fatal("no runs")
	}
	_ = trampoline.PageSize
}

// Every run step of every corpus case that runs on the default arches,
// on every profile whose s390x trampolines the generator models, given
// the s390x JIT, built without and with expolines: tramp's s390x image,
// executed, agrees with the model.
func TestCorpusModelS390x(t *testing.T) {
	for _, expoline := range []bool{false, true} {
		g, err := generators.ForBoot(generators.Boot{Arch: "s390x", S390X: s390x.Features{Expoline: expoline}})
		require.NoError(t, err)
		t.Run(fmt.Sprintf("expoline=%v", expoline), func(t *testing.T) { corpusS390x(t, g) })
	}
}

func corpusS390x(t *testing.T, gen *generators.Generator) {
	cs, err := cases.Corpus()
	require.NoError(t, err)
	a, err := trampoline.LookupArch("s390x")
	require.NoError(t, err)
	runs, thunks := 0, 0
	profiles := map[string]bool{}
	for _, c := range cs {
		if len(c.Arches) > 0 {
			continue // written for the arches it names
		}
		for _, prof := range c.Profiles() {
			steps, err := RunSteps(c, s390xJIT(prof), a)
			if err != nil {
				// The generator models 7.2.13's s390x JIT; it refuses older
				// kernels' trampolines (no skip NOPs or func_meta).
				require.ErrorContains(t, err, "not modelled", "%s %s", c.Name, prof.Name)
				continue
			}
			for _, cr := range steps {
				if cr.Plan == nil {
					continue
				}
				profiles[prof.Name] = true
				g, err := GenerateWith(gen, cr.Plan, nil, c.Progs)
				if err != nil {
					t.Errorf("%s %s line %d: %v", c.Name, prof.Name, cr.Line, err)
					continue
				}
				e, err := New(g.Setup)
				require.NoError(t, err)
				for _, st := range e.stubs {
					if st.kind == stubJumpThunk {
						thunks++
					}
				}
				res, err := Check(g.Setup, cr.Plan, cr.Run)
				require.NoError(t, err)
				runs++
				if err := res.Err(); err != nil {
					t.Errorf("%s %s line %d: %v", c.Name, prof.Name, cr.Line, err)
				}
			}
		}
	}
	t.Logf("%d runs of generated s390x images on %d profiles agree with the model", runs, len(profiles))
	if runs == 0 || thunks == 0 {
		t.Fatalf("%d runs, %d expoline thunk stubs", runs, thunks)
	}
}
