package bisect

import (
	"context"
	"fmt"
	"slices"

	"github.com/bpftramp/tramp/trampoline"
)

// Build is one served kernel build, by its tramp name and version.
type Build struct {
	Name    string
	Version trampoline.Version
}

// Branch is a stable branch's name, "7.2".
func (b Build) Branch() string { return fmt.Sprintf("%d.%d", b.Version.Major, b.Version.Minor) }

// Probe judges one build (booting it, or reading its recordings).
type Probe func(ctx context.Context, b Build) (Judgement, error)

// BranchResult is where a delta starts in one stable branch.
type BranchResult struct {
	Branch string
	// Builds are the branch's served builds, oldest first.
	Builds []Build
	// LastWithout and FirstWith bracket the delta: both nil when the
	// search stopped at a build the probe could not judge (Err says
	// which); only FirstWith when every build has the delta, only
	// LastWithout when none has it.
	LastWithout, FirstWith *Build
	// Probed are the builds judged, in the order they were.
	Probed []Probed
	Err    error
}

// Probed is one judged build.
type Probed struct {
	Build     Build
	Judgement Judgement
}

// Search finds, in every stable branch of builds, the first build with
// the delta, by bisection under the assumption that within a branch a
// delta once present stays: it probes the branch's newest build, then
// its oldest, then halves the range between the newest without and the
// oldest with. Across branches it assumes nothing.
func Search(ctx context.Context, builds []Build, probe Probe) []BranchResult {
	byBranch := map[string][]Build{}
	var order []string
	for _, b := range builds {
		br := b.Branch()
		if _, ok := byBranch[br]; !ok {
			order = append(order, br)
		}
		byBranch[br] = append(byBranch[br], b)
	}
	slices.SortFunc(order, func(a, b string) int {
		return byBranch[a][0].Version.Compare(byBranch[b][0].Version)
	})
	var out []BranchResult
	for _, br := range order {
		bs := byBranch[br]
		slices.SortFunc(bs, func(a, b Build) int { return a.Version.Compare(b.Version) })
		out = append(out, searchBranch(ctx, br, bs, probe))
	}
	return out
}

func searchBranch(ctx context.Context, branch string, bs []Build, probe Probe) BranchResult {
	r := BranchResult{Branch: branch, Builds: bs}
	judge := func(i int) (State, bool) {
		j, err := probe(ctx, bs[i])
		r.Probed = append(r.Probed, Probed{bs[i], j})
		if err != nil {
			r.Err = fmt.Errorf("%s: %w", bs[i].Name, err)
			return "", false
		}
		if j.State != With && j.State != Without {
			r.Err = fmt.Errorf("%s: %s", bs[i].Name, j)
			return j.State, false
		}
		return j.State, true
	}
	hi := len(bs) - 1
	s, ok := judge(hi)
	if !ok {
		return r
	}
	if s == Without {
		r.LastWithout = &bs[hi]
		return r
	}
	lo := 0
	if hi > 0 {
		if s, ok = judge(0); !ok {
			return r
		}
	}
	if hi == 0 || s == With {
		r.FirstWith = &bs[0]
		return r
	}
	// bs[lo] is without, bs[hi] with.
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		s, ok := judge(mid)
		if !ok {
			return r
		}
		if s == With {
			hi = mid
		} else {
			lo = mid
		}
	}
	r.LastWithout, r.FirstWith = &bs[lo], &bs[hi]
	return r
}
