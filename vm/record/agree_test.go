package record

import (
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/recording"
)

// TestRecordingsAgree compares every recording in cases/testdata with the
// model, as tramp vm check does after a boot: each step's outcome, each
// run's invocations and observations, and each image.
func TestRecordingsAgree(t *testing.T) {
	recs, err := recording.LoadAll(testdata)
	require.NoError(t, err)
	byName := corpusByName(t)
	verdicts := map[Verdict]int{}
	var steps, runs, calls, images int
	for _, rec := range recs {
		c := byName[rec.Case]
		if rec.Source != "" {
			if c, err = ShapeCase(rec); err != nil {
				t.Errorf("%s/%s/%s: %v", rec.Profile, rec.Arch, rec.Case, err)
				continue
			}
		}
		if c == nil {
			t.Errorf("%s/%s/%s: no such case", rec.Profile, rec.Arch, rec.Case)
			continue
		}
		prof, err := ProfileOf(rec)
		if err != nil {
			t.Errorf("%s/%s/%s: %v", rec.Profile, rec.Arch, rec.Case, err)
			continue
		}
		a, err := trampoline.LookupArch(rec.Arch)
		require.NoError(t, err)
		cmp := CompareBoot(rec, c, prof, a)
		verdicts[cmp.Verdict]++
		steps, runs, calls, images = steps+cmp.Steps, runs+cmp.Runs, calls+cmp.Invocations, images+cmp.Images
		if cmp.Verdict != Agree && cmp.Verdict != NotInBTF {
			t.Errorf("%s/%s/%s (%s): %s %v", rec.Profile, rec.Arch, rec.Case, recording.PathOf("", rec), cmp.Verdict, cmp.Problems)
		}
	}
	var vs []string
	for v, n := range verdicts {
		vs = append(vs, fmt.Sprintf("%s: %d", v, n))
	}
	sort.Strings(vs)
	t.Logf("%d recordings %v; %d steps, %d runs, %d invocations, %d images compared", len(recs), vs, steps, runs, calls, images)
	if verdicts[Agree] == 0 {
		t.Fatal("no recording agrees: nothing was compared")
	}
}
