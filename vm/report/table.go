package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// NoResult is the Result of a case the boot gave no recording for.
const NoResult = "no result"

// WriteTable prints r as tramp vm check does: a row per case (and its
// problems), a line per boot (its times, and its VM error with the last
// console lines), the build × arch matrix when there are several builds,
// and the totals.
func WriteTable(w io.Writer, r *Results) {
	fmt.Fprintf(w, "%-15s %-7s %-36s %5s %4s %5s %6s  %s\n", "kernel", "arch", "case", "steps", "runs", "calls", "images", "result")
	for _, run := range r.Runs {
		for _, c := range run.Cases {
			if c.Result == NoResult {
				fmt.Fprintf(w, "%-15s %-7s %-36s %5s %4s %5s %6s  NO RESULT\n", run.Build, run.Arch, c.Case, "-", "-", "-", "-")
				continue
			}
			fmt.Fprintf(w, "%-15s %-7s %-36s %5d %4d %5d %6d  %s\n", run.Build, run.Arch, c.Case, c.Steps, c.Runs, c.Calls, c.Images, c.Result)
			for _, p := range c.Problems {
				fmt.Fprintf(w, "    %s\n", p)
			}
		}
	}
	fmt.Fprintln(w)
	for _, run := range r.Runs {
		line := fmt.Sprintf("%s %s: %d cases", run.Build, run.Arch, len(run.Cases))
		if run.ElapsedMS > 0 {
			line += fmt.Sprintf(", boot→hello %s, whole run %s", ms(run.HelloMS).Round(10*time.Millisecond), ms(run.ElapsedMS).Round(10*time.Millisecond))
		}
		if run.Error != "" {
			line += fmt.Sprintf("\n  VM error: %s", run.Error)
			if len(run.ConsoleTail) > 0 {
				line += "\n  last console lines:\n    " + strings.Join(run.ConsoleTail, "\n    ")
			}
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "(skipped: cases whose target is not in the booted kernel's BTF; the model alone covers them)\n")
	if len(r.Runs) > 1 && len(builds(r.Runs)) > 1 {
		WriteMatrix(w, r.Runs)
	}
	t := r.Totals()
	fmt.Fprintf(w, "vm: %d passed, %d failed, %d skipped\n", t.Passed, t.Failed, t.Skipped)
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func builds(runs []Run) []string {
	var out []string
	for _, r := range runs {
		if !slices.Contains(out, r.Build) {
			out = append(out, r.Build)
		}
	}
	return out
}

func arches(runs []Run) []string {
	var out []string
	for _, r := range runs {
		if !slices.Contains(out, r.Arch) {
			out = append(out, r.Arch)
		}
	}
	return out
}

// cell is one build × arch of the matrix: the runs of it added up.
type cell struct {
	passed, failed, skipped int
	elapsed                 time.Duration
	booted, vmError         bool
	splats                  int
}

// cells adds up runs by build × arch ("build/arch").
func cells(runs []Run) map[string]*cell {
	out := map[string]*cell{}
	for _, r := range runs {
		c := out[r.Build+"/"+r.Arch]
		if c == nil {
			c = &cell{}
			out[r.Build+"/"+r.Arch] = c
		}
		for _, cs := range r.Cases {
			switch cs.Status {
			case Pass:
				c.passed++
			case Skip:
				c.skipped++
			default:
				c.failed++
			}
		}
		if r.ElapsedMS > 0 {
			c.booted = true
			c.elapsed += ms(r.ElapsedMS)
		}
		c.vmError = c.vmError || r.Error != ""
		c.splats += len(r.Splats)
	}
	return out
}

// WriteMatrix prints the build × arch table: passed/failed/skipped and
// the boots' wall time per cell (added up when a build × arch was split
// over shards).
func WriteMatrix(w io.Writer, runs []Run) {
	bs, as := builds(runs), arches(runs)
	cs := cells(runs)
	fmt.Fprintf(w, "\n%-22s", "build (passed/failed/skipped)")
	for _, a := range as {
		fmt.Fprintf(w, "  %-20s", a)
	}
	fmt.Fprintln(w)
	for _, b := range bs {
		fmt.Fprintf(w, "%-29s", b)
		for _, a := range as {
			v := "-"
			if c := cs[b+"/"+a]; c != nil {
				v = fmt.Sprintf("%d/%d/%d", c.passed, c.failed, c.skipped)
				if c.booted {
					v += " " + c.elapsed.Round(time.Second).String()
				}
				if c.vmError {
					v += " VM error"
				}
			}
			fmt.Fprintf(w, "  %-20s", v)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}
