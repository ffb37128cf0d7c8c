package cases

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/trampoline"
)

// Every corpus case parses and, on every profile and arch it applies to,
// the model agrees with every expect line.
func TestCorpusAgreesWithModel(t *testing.T) {
	corpus, err := Corpus()
	require.NoError(t, err)
	if len(corpus) < 30 {
		t.Fatalf("corpus has %d cases, expected the full set", len(corpus))
	}
	runs := 0
	for _, c := range corpus {
		for _, cb := range c.Combos() {
			p, a := cb.Profile, cb.Arch
			res, err := Replay(c, p, a, generators.SizeFunc(a.Name))
			if err != nil {
				t.Errorf("%s on %s/%s: %v", c.Name, p.Name, a.Name, err)
				continue
			}
			runs++
			for _, o := range res.Disagreements() {
				t.Errorf("%s:%d on %s/%s: %s %s: model says %s (%s %s), case expects %s",
					c.File, o.Line, p.Name, a.Name, o.Op, o.Prog, o.Result, o.Stage, o.Reason, o.Expect)
			}
		}
	}
	t.Logf("%d cases, %d case×profile×arch replays", len(corpus), runs)
}

// Every delta's probe is a corpus case (tramp vm bisect runs them).
func TestDeltaProbesAreCorpusCases(t *testing.T) {
	cs, err := Corpus()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, c := range cs {
		names[c.Name] = true
	}
	for _, d := range trampoline.Deltas {
		for _, p := range d.Probes {
			if !names[p] {
				t.Errorf("delta %s: probe %s is not a corpus case", d.Name, p)
			}
		}
	}
}
