package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// selection is the profile and arch a single-case command works on.
type selection struct {
	profile *trampoline.Profile
	arch    *trampoline.Arch
}

// choose picks the profile and arch for a case: the flags when given,
// else the case's first (the primary profile when the case allows it).
func choose(c *cases.Case, kernel, arch string, stderr io.Writer) (selection, error) {
	var s selection
	profiles := c.Profiles()
	if len(profiles) == 0 {
		return s, fmt.Errorf("%s: no kernel profile supports all of its program kinds", c.File)
	}
	if kernel == "" {
		s.profile = profiles[0]
		for _, p := range profiles {
			if p.Name == trampoline.DefaultProfile {
				s.profile = p
			}
		}
	} else {
		p, err := trampoline.LookupProfile(kernel)
		if err != nil {
			return s, fmt.Errorf("--kernel: %w", err)
		}
		s.profile = p
		if !hasProfile(profiles, p) {
			fmt.Fprintf(stderr, "note: %s is written for %s, not %s; its expect lines may not hold there\n", c.File, profileNames(profiles), p.Name)
		}
	}
	arches := c.ArchList()
	if arch == "" {
		s.arch = arches[0]
	} else {
		a, err := trampoline.LookupArch(arch)
		if err != nil {
			return s, fmt.Errorf("--arch: %w", err)
		}
		s.arch = a
	}
	return s, nil
}

func hasProfile(list []*trampoline.Profile, p *trampoline.Profile) bool {
	for _, x := range list {
		if x == p {
			return true
		}
	}
	return false
}

func profileNames(list []*trampoline.Profile) string {
	var n []string
	for _, p := range list {
		n = append(n, p.Name)
	}
	return strings.Join(n, ", ")
}

func runLink(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("link", "[--kernel PROFILE] [--arch ARCH] [--json] CASE", stderr)
	kernel := fs.String("kernel", "", "kernel profile (default: the case's first, "+trampoline.DefaultProfile+" when it applies); one of "+strings.Join(trampoline.ProfileNames(), ", "))
	arch := fs.String("arch", "", "architecture (default: the case's first); one of "+strings.Join(trampoline.ArchNames(), ", "))
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "tramp link: want exactly one CASE file")
		fs.Usage()
		return exitUsage
	}
	c, err := cases.ParseFile(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "tramp link: %v\n", err)
		return exitUsage
	}
	sel, err := choose(c, *kernel, *arch, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tramp link: %v\n", err)
		return exitUsage
	}
	res, err := cases.Replay(c, sel.profile, sel.arch, sizeFunc(sel.arch.Name))
	if err != nil {
		fmt.Fprintf(stderr, "tramp link: %v\n", err)
		return exitUsage
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "tramp link: %v\n", err)
			return exitUsage
		}
	} else {
		printLink(stdout, c, res)
	}
	bad := res.Disagreements()
	for _, o := range bad {
		fmt.Fprintf(stderr, "%s:%d: %s %s: model says %s, the case expects %s\n", c.File, o.Line, o.Op, o.Prog, o.Result, o.Expect)
	}
	if len(bad) > 0 {
		return exitCheck
	}
	return exitOK
}

func printLink(w io.Writer, c *cases.Case, res *cases.Result) {
	fmt.Fprintf(w, "case %s on %s/%s\n", c.Name, res.Kernel, res.Arch)
	for _, t := range c.Targets() {
		fmt.Fprintf(w, "target %s%s", t.Name, t.Proto)
		if k := t.KsymName(); k != "" {
			fmt.Fprintf(w, "  (%s)", k)
		}
		fmt.Fprintln(w)
	}
	for _, o := range res.Ops {
		fmt.Fprintln(w)
		result := o.Result
		if o.Stage != "" {
			result += " at " + o.Stage
		}
		mark := ""
		switch {
		case o.Expect != "" && o.Agrees():
			mark = "  (as expected)"
		case o.Expect != "":
			mark = "  MISMATCH: expected " + o.Expect
		}
		fmt.Fprintf(w, "line %-3d %s %s: %s%s\n", o.Line, o.Op, o.Prog, result, mark)
		if o.Reason != "" {
			fmt.Fprintf(w, "         %s\n", o.Reason)
		}
		if len(o.Funcs) > 0 {
			fmt.Fprintf(w, "         on %s", strings.Join(o.Funcs, ","))
			if len(o.Cookies) > 0 {
				var ck []string
				for _, v := range o.Cookies {
					ck = append(ck, fmt.Sprintf("%#x", uint64(v)))
				}
				fmt.Fprintf(w, "  link-cookies %s", strings.Join(ck, ","))
			}
			fmt.Fprintln(w)
		}
		if o.Functions == nil {
			printState(w, "         ", &cases.FuncState{Lists: o.Lists, Freplace: o.Freplace, Flags: o.Flags, Slots: o.Slots}, o.MaxSlots)
			continue
		}
		for _, t := range c.Targets() {
			fmt.Fprintf(w, "         %s\n", t.Name)
			printState(w, "           ", o.Functions[t.Name], o.MaxSlots)
		}
	}
}

// printState prints one trampoline's flags, slots and lists.
func printState(w io.Writer, indent string, fs *cases.FuncState, maxSlots int) {
	fmt.Fprintf(w, "%sflags %s (%s)  slots %d/%d\n", indent, fs.Flags.Hex(), fs.Flags, fs.Slots, maxSlots)
	for _, l := range trampoline.Lists() {
		names := fs.Lists[l.String()]
		list := "-"
		if len(names) > 0 {
			list = strings.Join(names, " ")
		}
		fmt.Fprintf(w, "%s%-9s %s\n", indent, l.String()+":", list)
	}
	if fs.Freplace != "" {
		fmt.Fprintf(w, "%sfreplace: %s\n", indent, fs.Freplace)
	}
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plan", "[--kernel PROFILE] [--arch ARCH] [--func NAME] CASE", stderr)
	fn := funcFlag(fs)
	kernel := fs.String("kernel", "", "kernel profile (default: as for link)")
	arch := fs.String("arch", "", "architecture (default: as for link)")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "tramp plan: want exactly one CASE file")
		fs.Usage()
		return exitUsage
	}
	c, err := cases.ParseFile(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "tramp plan: %v\n", err)
		return exitUsage
	}
	sel, err := choose(c, *kernel, *arch, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tramp plan: %v\n", err)
		return exitUsage
	}
	res, err := cases.Replay(c, sel.profile, sel.arch, sizeFunc(sel.arch.Name))
	if err != nil {
		fmt.Fprintf(stderr, "tramp plan: %v\n", err)
		return exitUsage
	}
	f, err := pickFunc(c, *fn)
	if err != nil {
		fmt.Fprintf(stderr, "tramp plan: %v\n", err)
		return exitUsage
	}
	final := res.Model.Trampoline(f)
	if !final.HasImage() {
		fmt.Fprintf(stderr, "tramp plan: after the last step of %s no program is attached to %s, so there is no image\n", c.File, f)
		return exitCheck
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(final.Plan()); err != nil {
		fmt.Fprintf(stderr, "tramp plan: %v\n", err)
		return exitUsage
	}
	return exitOK
}
