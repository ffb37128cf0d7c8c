package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// File is one results file of a merge: its name (for errors) and what
// it holds.
type File struct {
	Name    string
	Results *Results
}

// Merge joins results into one: the shards i/n of one run (every i from
// 1 to n exactly once, the runs put back in the whole run's order), or
// whole runs of one command (in the order given). It refuses results of
// another schema version or command, shards of different counts, a shard
// given twice or missing, and a case (build, arch, case) in two places,
// naming the files.
func Merge(files []File) (*Results, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("no results to merge")
	}
	first := files[0]
	sharded := 0
	shardOf := map[int]string{}
	count := 0
	for _, f := range files {
		r := f.Results
		if r.Schema != SchemaVersion {
			return nil, fmt.Errorf("%s: results schema %d, this tramp merges schema %d only", f.Name, r.Schema, SchemaVersion)
		}
		if r.Command != first.Results.Command {
			return nil, fmt.Errorf("%s holds results of tramp vm %s, %s of tramp vm %s: merge the results of one command", first.Name, first.Results.Command, f.Name, r.Command)
		}
		if r.Shard == "" {
			continue
		}
		s, err := ParseShard(r.Shard)
		if err != nil {
			return nil, fmt.Errorf("%s: shard: %w", f.Name, err)
		}
		sharded++
		if count == 0 {
			count = s.Count
		} else if s.Count != count {
			return nil, fmt.Errorf("%s is shard %s, another file a shard of %d: merge the shards of one run", f.Name, s, count)
		}
		if other, ok := shardOf[s.Index]; ok {
			return nil, fmt.Errorf("%s and %s are both shard %s", other, f.Name, s)
		}
		shardOf[s.Index] = f.Name
	}
	if sharded > 0 && sharded < len(files) {
		for _, f := range files {
			if f.Results.Shard == "" {
				return nil, fmt.Errorf("%s is a whole run, the other files shards of %d: merge the shards of one run", f.Name, count)
			}
		}
	}
	var missing []string
	for i := 1; i <= count; i++ {
		if _, ok := shardOf[i]; !ok {
			missing = append(missing, Shard{i, count}.String())
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no results for shard %s (a shard that wrote none failed before its end)", strings.Join(missing, ", "))
	}
	type key struct{ build, arch, c string }
	seen := map[key]string{}
	type placed struct {
		file, index, firstCase int
		run                    Run
	}
	var all []placed
	for fi, f := range files {
		for _, run := range f.Results.Runs {
			for _, c := range run.Cases {
				k := key{run.Build, run.Arch, c.Case}
				if other, ok := seen[k]; ok {
					return nil, fmt.Errorf("%s: %s %s %s is also in %s", f.Name, run.Build, run.Arch, c.Case, other)
				}
				seen[k] = f.Name
			}
			p := placed{file: fi, index: run.Index, run: run}
			if sharded > 0 {
				p.file = 0 // one run's shards: its own order
			}
			if len(run.Cases) > 0 {
				p.firstCase = run.Cases[0].Index
			}
			all = append(all, p)
		}
	}
	slices.SortStableFunc(all, func(a, b placed) int {
		return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.index, b.index), cmp.Compare(a.firstCase, b.firstCase))
	})
	out := &Results{Schema: SchemaVersion, Command: first.Results.Command, Runs: []Run{}}
	for _, p := range all {
		out.Runs = append(out.Runs, p.run)
	}
	return out, nil
}
