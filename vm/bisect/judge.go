package bisect

import (
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/record"
	"github.com/bpftramp/tramp/vm/recording"
)

// State is what a build's recordings say about one delta.
type State string

// States.
const (
	With    State = "with"
	Without State = "without"
	// Undecided: the model agrees with the kernel either way, so the
	// recordings cannot tell (the probe cases do not exercise the delta).
	Undecided State = "undecided"
	// Neither: the model disagrees with the kernel either way: something
	// besides the delta differs (the judgement's problems say what).
	Neither State = "neither"
)

// Judgement is the state of one delta on one build and its grounds.
type Judgement struct {
	State State
	// Cases counts the recordings compared; Telling those whose verdict
	// changes with the delta.
	Cases, Telling int
	// Problems are the disagreements of the closer model (the one with
	// fewer), for Neither.
	Problems []string
}

func (j Judgement) String() string {
	s := fmt.Sprintf("%s (%d of %d recordings tell)", j.State, j.Telling, j.Cases)
	if len(j.Problems) > 0 {
		s += ": " + j.Problems[0]
		if len(j.Problems) > 1 {
			s += fmt.Sprintf(" (and %d more)", len(j.Problems)-1)
		}
	}
	return s
}

// Judge compares every recording of one build and arch with the model
// of base (the build's profile from its facts) with delta d set on and
// set off. corpus finds each recording's case by name; recordings of
// other cases are an error, not skipped.
func Judge(recs []*recording.Recording, corpus map[string]*cases.Case, base *trampoline.Profile, d *trampoline.Delta) (Judgement, error) {
	on, off := *base, *base
	d.Set(&on, true)
	d.Set(&off, false)
	var j Judgement
	okOn, counted, onProblems, err := replay(recs, corpus, &on)
	if err != nil {
		return j, err
	}
	okOff, _, offProblems, err := replay(recs, corpus, &off)
	if err != nil {
		return j, err
	}
	for i := range recs {
		if counted[i] {
			j.Cases++
			if okOn[i] != okOff[i] {
				j.Telling++
			}
		}
	}
	switch {
	case j.Cases == 0:
		j.State = Undecided
	case len(onProblems) == 0 && len(offProblems) == 0:
		j.State = Undecided
	case len(onProblems) == 0:
		j.State = With
	case len(offProblems) == 0:
		j.State = Without
	default:
		j.State = Neither
		j.Problems = onProblems
		if len(offProblems) < len(onProblems) {
			j.Problems = offProblems
		}
	}
	return j, nil
}

// replay compares every recording with the model of p, as tramp vm check
// does: ok[i] says whether recs[i] agrees, counted[i] whether it was
// compared at all (its case applies to p and its target is in the
// build's BTF), bad lists the disagreements. A recording of a case
// corpus lacks is an error, not skipped.
func replay(recs []*recording.Recording, corpus map[string]*cases.Case, p *trampoline.Profile) (ok, counted []bool, bad []string, err error) {
	ok, counted = make([]bool, len(recs)), make([]bool, len(recs))
	for i, rec := range recs {
		c := corpus[rec.Case]
		if c == nil {
			return nil, nil, nil, fmt.Errorf("recording of %s on %s/%s: no such case", rec.Case, rec.Profile, rec.Arch)
		}
		a, err := trampoline.LookupArch(rec.Arch)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("recording of %s on %s: %w", rec.Case, rec.Profile, err)
		}
		if !c.AppliesTo(p, a) {
			continue
		}
		cmp := record.CompareBoot(rec, c, p, a)
		if cmp.Verdict == record.NotInBTF {
			continue
		}
		counted[i] = true
		ok[i] = cmp.Verdict == record.Agree
		if !ok[i] {
			bad = append(bad, firstLines(cmp)...)
		}
	}
	return ok, counted, bad, nil
}

func firstLines(c record.Comparison) []string {
	if len(c.Problems) == 0 {
		return []string{c.Case + ": " + string(c.Verdict)}
	}
	out := make([]string, len(c.Problems))
	for i, p := range c.Problems {
		out[i] = strings.SplitN(p, "\n", 2)[0]
	}
	return out
}

// JudgeAll judges several deltas at once on one build: every on/off
// assignment of ds is replayed against all of recs, and a delta's state
// is the one every agreeing assignment gives it (Undecided where they
// differ). When no assignment agrees the build differs in something
// besides ds: the states are Neither and problems are the closest
// assignment's disagreements.
func JudgeAll(recs []*recording.Recording, corpus map[string]*cases.Case, base *trampoline.Profile, ds []*trampoline.Delta) (states map[string]State, problems []string, err error) {
	if len(ds) > 8 {
		return nil, nil, fmt.Errorf("JudgeAll: %d deltas, at most 8 (2^n replays)", len(ds))
	}
	var agreeing []uint
	var closest []string // the disagreements of the assignment with fewest
	for mask := uint(0); mask < 1<<len(ds); mask++ {
		p := *base
		for i, d := range ds {
			d.Set(&p, mask&(1<<i) != 0)
		}
		_, _, bad, err := replay(recs, corpus, &p)
		if err != nil {
			return nil, nil, err
		}
		if len(bad) == 0 {
			agreeing = append(agreeing, mask)
		} else if closest == nil || len(bad) < len(closest) {
			closest = bad
		}
	}
	states = map[string]State{}
	if len(agreeing) == 0 {
		for _, d := range ds {
			states[d.Name] = Neither
		}
		return states, closest, nil
	}
	for i, d := range ds {
		on, off := false, false
		for _, m := range agreeing {
			if m&(1<<i) != 0 {
				on = true
			} else {
				off = true
			}
		}
		switch {
		case on && off:
			states[d.Name] = Undecided
		case on:
			states[d.Name] = With
		default:
			states[d.Name] = Without
		}
	}
	return states, nil, nil
}
