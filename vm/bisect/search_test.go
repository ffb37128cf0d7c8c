package bisect

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/trampoline"
)

func builds(t *testing.T, vs ...string) []Build {
	t.Helper()
	var out []Build
	for _, s := range vs {
		v, err := trampoline.ParseVersion(s)
		require.NoError(t, err)
		out = append(out, Build{Name: "debian-" + s, Version: v})
	}
	return out
}

// A fake kernel: the delta came into mainline with 7.3 and was taken into
// 7.2 stable at 7.2.10 and into 7.1 at 7.1.12; 7.0 never got it.
func fakeProbe(t *testing.T, probed map[string]int) Probe {
	has := map[string]bool{}
	for _, s := range []string{"7.1.12", "7.1.13", "7.2.10", "7.2.11", "7.2.13", "7.3.1", "7.3.4", "7.3-rc7"} {
		has["debian-"+s] = true
	}
	return func(_ context.Context, b Build) (Judgement, error) {
		probed[b.Name]++
		if b.Name == "debian-6.99.1" {
			return Judgement{}, errors.New("no such build")
		}
		if has[b.Name] {
			return Judgement{State: With, Cases: 1, Telling: 1}, nil
		}
		return Judgement{State: Without, Cases: 1, Telling: 1}, nil
	}
}

func TestSearchPinsEachBranch(t *testing.T) {
	bs := builds(t, "7.3.4", "7.0.4", "7.0.13", "7.1.3", "7.1.7", "7.1.12", "7.1.13",
		"7.2.6", "7.2.9", "7.2.10", "7.2.11", "7.2.13", "7.3-rc7", "7.3.1")
	probed := map[string]int{}
	got := map[string][2]string{}
	var order []string
	for _, r := range Search(context.Background(), bs, fakeProbe(t, probed)) {
		require.NoError(t, r.Err)
		var w [2]string
		if r.LastWithout != nil {
			w[0] = r.LastWithout.Name
		}
		if r.FirstWith != nil {
			w[1] = r.FirstWith.Name
		}
		got[r.Branch] = w
		order = append(order, r.Branch)
	}
	want := map[string][2]string{
		"7.0": {"debian-7.0.13", ""},
		"7.1": {"debian-7.1.7", "debian-7.1.12"},
		"7.2": {"debian-7.2.9", "debian-7.2.10"},
		"7.3": {"", "debian-7.3-rc7"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pins (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"7.0", "7.1", "7.2", "7.3"}, order); diff != "" {
		t.Errorf("branch order (-want +got):\n%s", diff)
	}
	for n, k := range probed {
		if k != 1 {
			t.Errorf("%s probed %d times", n, k)
		}
	}
	// 7.0: newest only; 7.3: newest and oldest; 7.1 (4 builds) and 7.2
	// (5): both ends and a bisection of what lies between.
	if len(probed) >= len(bs) {
		t.Errorf("probed all %d builds; bisection should skip some: %v", len(bs), probed)
	}
}

func TestSearchStopsAtAnUnjudgedBuild(t *testing.T) {
	probed := map[string]int{}
	rs := Search(context.Background(), builds(t, "6.99.1"), fakeProbe(t, probed))
	require.Len(t, rs, 1)
	require.ErrorContains(t, rs[0].Err, "debian-6.99.1: no such build")
	if rs[0].FirstWith != nil || rs[0].LastWithout != nil {
		t.Errorf("a branch whose probe failed got pins: %+v", rs[0])
	}
	undecided := func(context.Context, Build) (Judgement, error) { return Judgement{State: Undecided}, nil }
	rs = Search(context.Background(), builds(t, "7.2.9", "7.2.11"), undecided)
	require.ErrorContains(t, rs[0].Err, "debian-7.2.11: undecided")
}
