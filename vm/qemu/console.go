package qemu

import (
	"regexp"
	"strings"
)

// Splat is a kernel problem found on the console.
type Splat struct {
	Kind    string   // "panic", "oops", "bug", "warning", "call-trace", "stall", "hung-task"
	Line    int      // index of the first line in the console
	Excerpt []string // the relevant console lines
}

var timestampRe = regexp.MustCompile(`^\s*(?:<\d+>)?\[\s*\d+\.\d+\]\s?(?:\[\s*[TC]\d+\]\s?)?`)

// KernelMessage strips the "[    1.234567] " timestamp (and a caller id such
// as "[  T1] ") from a console line.
func KernelMessage(line string) string {
	return timestampRe.ReplaceAllString(strings.TrimRight(line, "\r"), "")
}

var splatPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"panic", regexp.MustCompile(`^Kernel panic - not syncing`)},
	{"oops", regexp.MustCompile(`^(?:Internal error: )?Oops\b|^general protection fault|^Unable to handle kernel|^BUG: unable to handle`)},
	{"bug", regexp.MustCompile(`^(?:\S+: )?BUG: |^kernel BUG at |^UBSAN: `)},
	{"warning", regexp.MustCompile(`^WARNING: |^------------\[ cut here \]------------`)},
	{"call-trace", regexp.MustCompile(`^Call [Tt]race:`)},
	{"stall", regexp.MustCompile(`^rcu: INFO: \S+ detected (?:expedited )?stalls|^INFO: rcu_\S+ (?:self-)?detected stall`)},
	{"hung-task", regexp.MustCompile(`^INFO: task \S+ blocked for more than`)},
}

var endOfSplatRe = regexp.MustCompile(`^---\[ end (?:trace|Kernel panic)`)

// maxExcerpt bounds the lines quoted per splat.
const maxExcerpt = 40

// FindSplats scans console lines for kernel panics, oopses, BUGs, WARNINGs,
// call traces and stalls. Lines belonging to one report are grouped, so a
// WARNING with its call trace is one Splat; its kind is that of the first
// line, upgraded to "panic" when the report ends in a panic.
func FindSplats(lines []string) []Splat {
	var out []Splat
	for i := 0; i < len(lines); i++ {
		kind := splatKind(KernelMessage(lines[i]))
		if kind == "" {
			continue
		}
		s := Splat{Kind: kind, Line: i}
		j := i
		for ; j < len(lines) && j-i < maxExcerpt; j++ {
			msg := KernelMessage(lines[j])
			if j > i {
				if k := splatKind(msg); k == "panic" {
					s.Kind = "panic"
				}
			}
			s.Excerpt = append(s.Excerpt, strings.TrimRight(lines[j], "\r"))
			if endOfSplatRe.MatchString(msg) {
				break
			}
		}
		if s.Kind == "warning" && strings.Contains(s.Excerpt[0], "cut here") && len(s.Excerpt) > 1 {
			// The interesting line follows the marker.
			if k := splatKind(KernelMessage(s.Excerpt[1])); k != "" && k != "warning" {
				s.Kind = k
			}
		}
		out = append(out, s)
		i = j
	}
	return out
}

func splatKind(msg string) string {
	for _, p := range splatPatterns {
		if p.re.MatchString(msg) {
			return p.kind
		}
	}
	return ""
}

var ansiRe = regexp.MustCompile(`\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_c])`)

// CleanLine removes terminal escape sequences (firmware clears the screen)
// and the trailing carriage return from a console line.
func CleanLine(s string) string {
	return ansiRe.ReplaceAllString(strings.TrimRight(s, "\r\n"), "")
}
