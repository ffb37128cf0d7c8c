package report

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseShard(t *testing.T) {
	for s, want := range map[string]Shard{"1/1": {1, 1}, "2/4": {2, 4}, "4/4": {4, 4}, "1000/1000": {1000, 1000}} {
		got, err := ParseShard(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got)
		assert.Equal(t, s, got.String())
	}
	for _, s := range []string{"", "0/2", "3/2", "x/y", "1", "1/", "/2", "1/0", "-1/2", "+1/2", "1/2/3", " 1/2", "1/1001", "1.0/2"} {
		_, err := ParseShard(s)
		assert.Error(t, err, s)
		if err != nil {
			assert.Contains(t, err.Error(), fmt.Sprintf("%q", s))
		}
	}
	assert.True(t, Shard{1, 1}.Whole())
	assert.True(t, Shard{}.Whole())
	assert.False(t, Shard{1, 2}.Whole())
}

// unit is one case of one group, by build, arch and case index.
type unit struct {
	build, arch string
	i           int
}

func randomGroups(rng *rand.Rand) []Group {
	var gs []Group
	builds := 1 + rng.Intn(5)
	for b := 0; b < builds; b++ {
		for _, a := range []string{"x86_64", "arm64", "riscv64"}[:1+rng.Intn(3)] {
			gs = append(gs, Group{Build: fmt.Sprintf("debian-7.%d.%d", b, rng.Intn(3)), Arch: a, Cases: rng.Intn(40)})
		}
	}
	rng.Shuffle(len(gs), func(i, j int) { gs[i], gs[j] = gs[j], gs[i] })
	return dedup(gs)
}

func dedup(gs []Group) []Group {
	seen := map[string]bool{}
	var out []Group
	for _, g := range gs {
		if k := g.Build + "/" + g.Arch; !seen[k] {
			seen[k] = true
			out = append(out, g)
		}
	}
	return out
}

// units are the cases the shards of n run, each once per time it is run.
func units(t *testing.T, gs []Group, n int) (map[unit]int, [][]Piece) {
	t.Helper()
	plan := Plan(gs, n)
	require.Len(t, plan, n)
	got := map[unit]int{}
	for s := range plan {
		require.Equal(t, plan[s], Shard{s + 1, n}.Pieces(gs), "Pieces of %d/%d", s+1, n)
		for _, p := range plan[s] {
			g := gs[p.Group]
			require.True(t, 0 <= p.From && p.From < p.To && p.To <= g.Cases, "piece %+v of %+v", p, g)
			for i := p.From; i < p.To; i++ {
				got[unit{g.Build, g.Arch, i}]++
			}
		}
	}
	return got, plan
}

// TestPlanUnion: the shards of any plan together run every case of
// every group exactly once, whatever the groups and the shard count.
func TestPlanUnion(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 300; iter++ {
		gs := randomGroups(rng)
		full := map[unit]int{}
		total := 0
		for _, g := range gs {
			for i := 0; i < g.Cases; i++ {
				full[unit{g.Build, g.Arch, i}] = 1
			}
			total += g.Cases
		}
		for n := 1; n <= len(gs)+total+2; n += 1 + n/4 {
			got, _ := units(t, gs, n)
			require.Equal(t, full, got, "groups %+v, %d shards", gs, n)
		}
	}
}

// TestPlanDeterministic: the same groups give the same plan, in any
// order.
func TestPlanDeterministic(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for iter := 0; iter < 100; iter++ {
		gs := randomGroups(rng)
		n := 1 + rng.Intn(2*len(gs)+1)
		byKey := func(gs []Group) []map[string][2]int {
			var out []map[string][2]int
			for _, s := range Plan(gs, n) {
				m := map[string][2]int{}
				for _, p := range s {
					m[gs[p.Group].Build+"/"+gs[p.Group].Arch] = [2]int{p.From, p.To}
				}
				out = append(out, m)
			}
			return out
		}
		want := byKey(gs)
		assert.Equal(t, want, byKey(gs))
		shuffled := append([]Group(nil), gs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		assert.Equal(t, want, byKey(shuffled), "groups %+v shuffled to %+v", gs, shuffled)
	}
}

// TestPlanWholeGroups: with no more shards than groups, every group
// boots once, whole, and the loads are balanced greedily; the shard's
// pieces keep the run's order.
func TestPlanWholeGroups(t *testing.T) {
	gs := []Group{
		{"debian-6.12.117", "x86_64", 19}, {"debian-6.12.117", "arm64", 19},
		{"debian-7.2.13", "x86_64", 51}, {"debian-7.2.13", "arm64", 43},
		{"debian-7.3.4", "x86_64", 51}, {"debian-7.3.4", "arm64", 43},
		{"debian-7.9.9", "arm64", 0},
	}
	plan := Plan(gs, 2)
	assert.Equal(t, [][]Piece{
		{{1, 0, 19}, {2, 0, 51}, {3, 0, 43}}, // 113 cases
		{{0, 0, 19}, {4, 0, 51}, {5, 0, 43}}, // 113 cases
	}, plan)
	for n := 1; n <= 6; n++ {
		for s, pieces := range Plan(gs, n) {
			seen := map[int]bool{}
			for i, p := range pieces {
				assert.Equal(t, [2]int{0, gs[p.Group].Cases}, [2]int{p.From, p.To}, "%d shards: a group split", n)
				assert.False(t, seen[p.Group])
				seen[p.Group] = true
				if i > 0 {
					assert.Less(t, pieces[i-1].Group, p.Group, "shard %d/%d out of order", s+1, n)
				}
			}
		}
	}
	assert.Equal(t, [][]Piece{{{0, 0, 19}, {1, 0, 19}, {2, 0, 51}, {3, 0, 43}, {4, 0, 51}, {5, 0, 43}}}, Plan(gs, 1))
	assert.Equal(t, Plan(gs, 1)[0], Shard{1, 1}.Pieces(gs))
	assert.Equal(t, Plan(gs, 1)[0], Shard{}.Pieces(gs))
}

// TestPlanSplit: with more shards than groups, each shard boots at most
// once, the bigger group gets more shards, and no shard runs nothing
// while a group has a part of more than one case.
func TestPlanSplit(t *testing.T) {
	gs := []Group{{"b", "x86_64", 30}, {"a", "arm64", 10}}
	plan := Plan(gs, 4)
	assert.Equal(t, [][]Piece{{{1, 0, 10}}, {{0, 0, 10}}, {{0, 10, 20}}, {{0, 20, 30}}}, plan)
	tiny := []Group{{"a", "x86_64", 1}, {"a", "arm64", 2}}
	assert.Equal(t, [][]Piece{{{1, 0, 1}}, {{1, 1, 2}}, {{0, 0, 1}}, nil, nil}, Plan(tiny, 5))
	rng := rand.New(rand.NewSource(3))
	for iter := 0; iter < 200; iter++ {
		gs := randomGroups(rng)
		n := len(gs) + 1 + rng.Intn(20)
		plan := Plan(gs, n)
		empty, splittable := 0, false
		for _, s := range plan {
			assert.LessOrEqual(t, len(s), 1)
			if len(s) == 0 {
				empty++
			} else if s[0].To-s[0].From > 1 {
				splittable = true
			}
		}
		assert.False(t, empty > 0 && splittable, "groups %+v, %d shards: %d idle while a part could split: %v", gs, n, empty, plan)
	}
}
