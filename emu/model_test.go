package emu

import (
	"testing"

	"github.com/stretchr/testify/require"

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
		for _, prof := range c.Profiles() {
			for _, a := range c.ArchList() {
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
	}
	t.Logf("%d runs of generated images agree with the model", runs)
	if runs == 0 {
		t.Fatal("no runs")
	}
	_ = trampoline.PageSize
}
