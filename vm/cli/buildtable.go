package cli

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/bisect"
	"github.com/bpftramp/tramp/vm/record"
	"github.com/bpftramp/tramp/vm/recording"
)

// buildTable judges every delta on every build×arch recorded under dir
// (JudgeAll over all of its recordings) and prints the merged builds ×
// deltas table.
func buildTable(dir, kernelSpec, write string, stdout, stderr io.Writer) int {
	recs, err := recording.LoadAll(dir)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm bisect: --recordings %s: %v\n", dir, err)
		return ExitUsage
	}
	corpus, err := cases.CorpusByName()
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm bisect: %v\n", err)
		return ExitUsage
	}
	type key struct{ build, arch string }
	groups := map[key][]*recording.Recording{}
	// shapes are the cases shape recordings carry, per build and arch:
	// tramp vm shapes names a case after its function and mix, so two
	// builds' cases of one name may differ (a step one build refused).
	shapes := map[key]map[string]*cases.Case{}
	var order []key
	for _, rec := range recs {
		// The default boot only: a CPU model or KASLR changes bytes the
		// deltas do not.
		if rec.CPU != "" || rec.KASLR || len(rec.Append) > 0 {
			continue
		}
		if !rec.Complete {
			// A boot that died mid-case says nothing about the deltas
			// (and vm check has reported it).
			fmt.Fprintf(stderr, "[%s %s] %s: incomplete recording left out\n", rec.Profile, rec.Arch, rec.Case)
			continue
		}
		k := key{rec.Profile, rec.Arch}
		if rec.Source != "" { // tramp vm shapes: the recording carries its case
			c, err := record.ShapeCase(rec)
			if err != nil {
				fmt.Fprintf(stderr, "[%s %s] %s: %v\n", rec.Profile, rec.Arch, rec.Case, err)
				continue
			}
			if shapes[k] == nil {
				shapes[k] = map[string]*cases.Case{}
			}
			shapes[k][rec.Case] = c
		} else if corpus[rec.Case] == nil {
			continue
		}
		if kernelSpec != "all" && !matchesAny(rec.Profile, splitList(kernelSpec)) {
			continue
		}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], rec)
	}
	merged := &trampoline.BuildTable{Deltas: deltaNames()}
	rows := map[string]int{}
	for _, r := range trampoline.Builds.Rows {
		rows[r.Version.String()+" "+r.Arch] = len(merged.Rows)
		merged.Rows = append(merged.Rows, r)
	}
	code := ExitOK
	judgedBy := map[string]string{}
	slices.SortFunc(order, func(a, b key) int { return strings.Compare(a.build+" "+a.arch, b.build+" "+b.arch) })
	for _, k := range order {
		group := groups[k]
		v, err := trampoline.ParseVersion(group[0].Kernel.Release)
		if err != nil {
			fmt.Fprintf(stderr, "[%s %s] %v\n", k.build, k.arch, err)
			code = ExitCheck
			continue
		}
		base, err := record.ProfileOf(group[0])
		if err != nil {
			fmt.Fprintf(stderr, "[%s %s] %v\n", k.build, k.arch, err)
			code = ExitCheck
			continue
		}
		var ds []*trampoline.Delta
		for i := range trampoline.Deltas {
			if d := &trampoline.Deltas[i]; d.AppliesTo(k.arch) {
				ds = append(ds, d)
			}
		}
		groupCorpus := corpus
		if len(shapes[k]) > 0 {
			groupCorpus = maps.Clone(corpus)
			maps.Copy(groupCorpus, shapes[k])
		}
		states, problems, err := bisect.JudgeAll(group, groupCorpus, base, ds)
		if err != nil {
			fmt.Fprintf(stderr, "[%s %s] %v\n", k.build, k.arch, err)
			code = ExitCheck
			continue
		}
		row := trampoline.BuildRow{Version: v, Arch: k.arch, States: map[string]bool{}}
		var said []string
		for _, d := range ds {
			switch states[d.Name] {
			case bisect.With:
				row.States[d.Name] = true
			case bisect.Without:
				row.States[d.Name] = false
			}
			said = append(said, d.Name+" "+string(states[d.Name]))
		}
		fmt.Fprintf(stderr, "[%s %s] %d recordings: %s\n", k.build, k.arch, len(group), strings.Join(said, ", "))
		if len(problems) > 0 {
			code = ExitCheck
			fmt.Fprintf(stderr, "    no assignment of the deltas agrees with every recording; the closest disagrees in %d places, first: %s\n", len(problems), problems[0])
			continue
		}
		rk := v.String() + " " + k.arch
		if prev, ok := judgedBy[rk]; ok {
			// Two builds of one upstream version (Debian's +deb13 and
			// +deb14 of 7.2.12; Debian's s390x and its z196 rebuild)
			// must not contradict each other: the table has one row,
			// with what either judged.
			prevStates := merged.Rows[rows[rk]].States
			if d, ok := contradiction(prevStates, row.States); ok {
				fmt.Fprintf(stderr, "    %s and %s are both %s on %s but disagree on %s; the table keeps %s\n", prev, k.build, v, k.arch, d, prev)
				code = ExitCheck
				continue
			}
			maps.Copy(row.States, prevStates)
			k.build = prev + " and " + k.build
		}
		judgedBy[rk] = k.build
		if i, ok := rows[rk]; ok {
			merged.Rows[i] = row
		} else {
			rows[rk] = len(merged.Rows)
			merged.Rows = append(merged.Rows, row)
		}
	}
	out := merged.Format()
	fmt.Fprint(stdout, out)
	if write != "" {
		if err := writeBuildTable(write, out); err != nil {
			fmt.Fprintf(stderr, "tramp vm bisect: --write: %v\n", err)
			return ExitCheck
		}
	}
	return code
}

// contradiction names a delta two judgements of one version both judged,
// differently.
func contradiction(a, b map[string]bool) (string, bool) {
	for _, d := range slices.Sorted(maps.Keys(a)) {
		if on, ok := b[d]; ok && on != a[d] {
			return d, true
		}
	}
	return "", false
}

// writeBuildTable replaces the table below the file's leading comment.
func writeBuildTable(path, table string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var head strings.Builder
	for _, l := range strings.SplitAfter(string(old), "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		head.WriteString(l)
	}
	return os.WriteFile(path, []byte(head.String()+table), 0o644)
}

func matchesAny(name string, patterns []string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok || p == name {
			return true
		}
	}
	return false
}
