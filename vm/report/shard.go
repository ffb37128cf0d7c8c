package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxShards bounds n in a shard i/n.
const MaxShards = 1000

// Shard is part Index (1-based) of Count parts of a run.
type Shard struct{ Index, Count int }

// ParseShard reads "i/n" (1 <= i <= n <= MaxShards). "1/1" is the whole run.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("%q: want i/n, e.g. 1/4", s)
	}
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if err1 != nil || err2 != nil || strings.HasPrefix(is, "+") || strings.HasPrefix(ns, "+") {
		return Shard{}, fmt.Errorf("%q: want i/n with whole numbers, e.g. 1/4", s)
	}
	if n < 1 || n > MaxShards {
		return Shard{}, fmt.Errorf("%q: the shard count %d is not in 1..%d", s, n, MaxShards)
	}
	if i < 1 || i > n {
		return Shard{}, fmt.Errorf("%q: the shard index %d is not in 1..%d", s, i, n)
	}
	return Shard{Index: i, Count: n}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Whole says that s is the whole run (no shard, or 1/1).
func (s Shard) Whole() bool { return s.Count <= 1 }

// Group is one build × arch of a run: one boot of Cases cases.
type Group struct {
	Build, Arch string
	Cases       int
}

// Piece is the part of a group one shard runs: the cases From..To-1 of
// groups[Group].
type Piece struct{ Group, From, To int }

// Pieces is what shard s runs of groups (Plan(groups, s.Count)[s.Index-1]);
// the whole run for a whole shard.
func (s Shard) Pieces(groups []Group) []Piece {
	if s.Whole() {
		return Plan(groups, 1)[0]
	}
	return Plan(groups, s.Count)[s.Index-1]
}

// Plan splits groups over n shards and returns each shard's pieces, in
// the groups' order. Whole groups go to shards, the largest first (by
// case count, then by build and arch), each into the least loaded shard
// (the first of equals), so that every build × arch boots once. Only when
// there are more shards than groups is a group split: each group gets
// one shard, and each further shard goes to the group with the most cases
// per shard, up to one case per shard; a group's parts are consecutive
// runs of its cases. Shards left over run nothing. Groups without cases
// are in no shard. The plan depends on the groups' builds, arches and case
// counts, not on their order, and the pieces of all shards together are
// every case of every group exactly once.
func Plan(groups []Group, n int) [][]Piece {
	if n < 1 {
		n = 1
	}
	shards := make([][]Piece, n)
	// The groups with cases, in the stable order: build, arch.
	var order []int
	for i, g := range groups {
		if g.Cases > 0 {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := strings.Compare(groups[a].Build, groups[b].Build); c != 0 {
			return c
		}
		return strings.Compare(groups[a].Arch, groups[b].Arch)
	})
	if n <= len(order) {
		byWeight := slices.Clone(order)
		slices.SortStableFunc(byWeight, func(a, b int) int { return groups[b].Cases - groups[a].Cases })
		load := make([]int, n)
		for _, g := range byWeight {
			s := 0
			for j := range load {
				if load[j] < load[s] {
					s = j
				}
			}
			load[s] += groups[g].Cases
			shards[s] = append(shards[s], Piece{Group: g, From: 0, To: groups[g].Cases})
		}
		for _, s := range shards {
			slices.SortFunc(s, func(a, b Piece) int { return a.Group - b.Group })
		}
		return shards
	}
	// More shards than groups: k[j] shards for order[j].
	k := make([]int, len(order))
	for j := range k {
		k[j] = 1
	}
	for left := n - len(order); left > 0; left-- {
		best := -1
		for j, g := range order {
			c := groups[g].Cases
			if k[j] >= c {
				continue
			}
			// most cases per shard: c/k[j] > best's
			if best < 0 || c*k[best] > groups[order[best]].Cases*k[j] {
				best = j
			}
		}
		if best < 0 {
			break
		}
		k[best]++
	}
	s := 0
	for j, g := range order {
		c := groups[g].Cases
		for p := 0; p < k[j]; p++ {
			shards[s] = []Piece{{Group: g, From: p * c / k[j], To: (p + 1) * c / k[j]}}
			s++
		}
	}
	return shards
}
