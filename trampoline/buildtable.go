package trampoline

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
)

// A BuildRow is what one served kernel build showed on one arch, delta by
// delta: the live evidence the deltas are pinned by (builds.txt).
type BuildRow struct {
	Version Version
	Arch    string
	// States maps a delta's name to whether the build has it; a delta
	// the build was not judged for is absent.
	States map[string]bool
}

// BuildTable is the table of builds × deltas.
type BuildTable struct {
	// Deltas are the column names, in the file's order.
	Deltas []string
	Rows   []BuildRow
}

//go:embed builds.txt
var buildsTxt string

// Builds is the embedded table (builds.txt), parsed once.
var Builds = mustBuildTable(buildsTxt)

func mustBuildTable(s string) *BuildTable {
	t, err := ParseBuildTable(s)
	if err != nil {
		panic("trampoline/builds.txt: " + err.Error())
	}
	return t
}

// ParseBuildTable reads the builds × deltas table: '#' comments, a header
// "build arch DELTA..." naming known deltas, then one row per build and
// arch with '+' (has it), '-' (has not) or '.' (not judged) per delta.
func ParseBuildTable(s string) (*BuildTable, error) {
	t := &BuildTable{}
	seen := map[string]bool{}
	for n, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if t.Deltas == nil {
			if len(f) < 3 || f[0] != "build" || f[1] != "arch" {
				return nil, fmt.Errorf("line %d: want the header \"build arch DELTA...\", got %q", n+1, line)
			}
			for _, d := range f[2:] {
				if LookupDelta(d) == nil {
					return nil, fmt.Errorf("line %d: unknown delta %q", n+1, d)
				}
				if slices.Contains(t.Deltas, d) {
					return nil, fmt.Errorf("line %d: delta %s named twice", n+1, d)
				}
				t.Deltas = append(t.Deltas, d)
			}
			continue
		}
		if len(f) != 2+len(t.Deltas) {
			return nil, fmt.Errorf("line %d: %d fields, the header has %d", n+1, len(f), 2+len(t.Deltas))
		}
		v, err := ParseVersion(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		if _, err := LookupArch(f[1]); err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		key := v.String() + " " + f[1] // 7.2 and 7.2.0 are one build
		if seen[key] {
			return nil, fmt.Errorf("line %d: %s %s listed twice", n+1, v, f[1])
		}
		seen[key] = true
		r := BuildRow{Version: v, Arch: f[1], States: map[string]bool{}}
		for i, c := range f[2:] {
			switch c {
			case "+":
				r.States[t.Deltas[i]] = true
			case "-":
				r.States[t.Deltas[i]] = false
			case ".":
			default:
				return nil, fmt.Errorf("line %d: %s: want +, - or ., got %q", n+1, t.Deltas[i], c)
			}
		}
		t.Rows = append(t.Rows, r)
	}
	if t.Deltas == nil {
		return nil, fmt.Errorf("no header line")
	}
	return t, nil
}

// Format writes the table back in ParseBuildTable's form, rows in version
// then arch order.
func (t *BuildTable) Format() string {
	rows := slices.Clone(t.Rows)
	slices.SortStableFunc(rows, func(a, b BuildRow) int {
		if c := a.Version.Compare(b.Version); c != 0 {
			return c
		}
		return strings.Compare(a.Arch, b.Arch)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %-7s", "build", "arch")
	for _, d := range t.Deltas {
		fmt.Fprintf(&b, " %s", d)
	}
	b.WriteString("\n")
	for _, r := range rows {
		line := fmt.Sprintf("%-10s %-7s", r.Version, r.Arch)
		for _, d := range t.Deltas {
			c := "."
			if on, ok := r.States[d]; ok {
				c = "-"
				if on {
					c = "+"
				}
			}
			line += fmt.Sprintf(" %-*s", len(d), c)
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	return b.String()
}

// decide is what the table says of delta d for release v on arch: the
// build's own row; else the branch's judged builds around v; else the
// nearest judged build of any branch. ok is false when no build was
// judged for d on arch.
func (t *BuildTable) decide(d *Delta, v Version, arch string) (a AppliedDelta, ok bool) {
	a.Delta = d
	var below, above *BuildRow // nearest judged rows, same branch first
	var anyBelow, anyAbove *BuildRow
	for i := range t.Rows {
		r := &t.Rows[i]
		on, judged := r.States[d.Name]
		if r.Arch != arch || !judged {
			continue
		}
		c := r.Version.Compare(v)
		if c == 0 {
			a.On, a.Pinned = on, true
			a.Note = fmt.Sprintf("live: %s %s %s it", r.Version, arch, hasWord(on))
			return a, true
		}
		same := r.Version.Major == v.Major && r.Version.Minor == v.Minor
		if c < 0 {
			if anyBelow == nil || anyBelow.Version.Less(r.Version) {
				anyBelow = r
			}
			if same && (below == nil || below.Version.Less(r.Version)) {
				below = r
			}
		} else {
			if anyAbove == nil || r.Version.Less(anyAbove.Version) {
				anyAbove = r
			}
			if same && (above == nil || r.Version.Less(above.Version)) {
				above = r
			}
		}
	}
	state := func(r *BuildRow) bool { return r.States[d.Name] }
	switch {
	case below != nil && above != nil && state(below) == state(above):
		a.On, a.Pinned = state(below), true
		a.Note = fmt.Sprintf("between live %s and %s (%s %s), both %s it", below.Version, above.Version, v.branch(), arch, hasWord(a.On))
	case below != nil && above != nil:
		a.On = true
		a.Note = fmt.Sprintf("between %s (%s it) and %s (%s it) on %s, not pinned: assumed on", below.Version, hasWord(state(below)), above.Version, hasWord(state(above)), arch)
	case below != nil:
		a.On = state(below)
		a.Note = fmt.Sprintf("newer than %s, the newest judged %s build on %s: assumed as it (%s)", below.Version, v.branch(), arch, hasWord(a.On))
	case above != nil:
		a.On = state(above)
		a.Note = fmt.Sprintf("older than %s, the oldest judged %s build on %s: assumed as it (%s)", above.Version, v.branch(), arch, hasWord(a.On))
	case anyBelow != nil:
		a.On = state(anyBelow)
		a.Note = fmt.Sprintf("no %s build judged on %s; the newest older one, %s, %s it: assumed the same", v.branch(), arch, anyBelow.Version, hasWord(a.On))
	case anyAbove != nil:
		a.On = state(anyAbove)
		a.Note = fmt.Sprintf("no %s build judged on %s; the oldest newer one, %s, %s it: assumed the same", v.branch(), arch, anyAbove.Version, hasWord(a.On))
	default:
		return a, false
	}
	return a, true
}

func hasWord(on bool) string {
	if on {
		return "has"
	}
	return "lacks"
}

func (v Version) branch() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }
