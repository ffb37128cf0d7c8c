package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/emu"
	"github.com/bpftramp/tramp/trampoline"
)

// emuRun is one emulated run step, as --json shows it.
type emuRun struct {
	Line int `json:"line"`
	// Func is the function run, in a case with several targets.
	Func       string          `json:"func,omitempty"`
	Args       []uint64        `json:"args"`
	Calls      []emu.Call      `json:"calls"`
	Retval     uint64          `json:"retval"`
	OrigRuns   int             `json:"orig_runs"`
	Insns      int             `json:"insns"`
	Violations []emu.Violation `json:"violations"`
}

func runEmu(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("emu", "[--kernel PROFILE] [--arch x86_64|arm64] [--trace] [--json] CASE", stderr)
	kernel := fs.String("kernel", "", "kernel profile (default: as for link)")
	archName := fs.String("arch", "", "x86_64 or arm64 (default: the case's first)")
	trace := fs.Bool("trace", false, "print every executed instruction and the registers it changed")
	asJSON := fs.Bool("json", false, "print the observations as JSON")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "tramp emu: %s\n", fmt.Sprintf(format, a...))
		return exitUsage
	}
	if len(pos) != 1 {
		return fail("want exactly one CASE file")
	}
	c, err := cases.ParseFile(pos[0])
	if err != nil {
		return fail("%v", err)
	}
	sel, err := choose(c, *kernel, *archName, stderr)
	if err != nil {
		return fail("%v", err)
	}
	if !sel.arch.Generator {
		return fail("no generator or emulator for %s (%s)", sel.arch.Name, strings.Join(trampoline.DefaultArches(), ", "))
	}
	steps, err := emu.RunSteps(c, sel.profile, sel.arch)
	if err != nil {
		return fail("%v", err)
	}
	if len(steps) == 0 {
		// No run line: trigger the final image once, as a bare run.
		last := len(c.Steps) - 1
		p, err := emu.PlanAt(c, sel.profile, sel.arch, last, "")
		if err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(stderr, "note: %s has no run line; the image after its last step is run once with the kernel's own arguments\n", c.File)
		steps = []emu.CaseRun{{Step: last, Line: 0, Func: c.Target.Name, Plan: p, Run: emu.RunFor(c.Target, trampoline.ModelOf(c.Target.Proto), nil)}}
	}
	var out []emuRun
	failed := false
	for _, cr := range steps {
		r := emuRun{Line: cr.Line}
		if c.MultiTarget() {
			r.Func = cr.Func
		}
		for _, a := range cr.Run.Args {
			r.Args = append(r.Args, a.Lo)
		}
		if cr.Plan == nil {
			if !*asJSON {
				fmt.Fprintf(stdout, "run at line %d: no program is attached, so the function runs untraced\n\n", cr.Line)
			}
			r.Calls = []emu.Call{}
			r.Retval, r.OrigRuns = cr.Run.OrigRet, 1
			out = append(out, r)
			continue
		}
		g, err := emu.Generate(cr.Plan, nil, c.Progs)
		if err != nil {
			fmt.Fprintf(stderr, "tramp emu: line %d: %v\n", cr.Line, err)
			return exitCheck
		}
		run := cr.Run
		if *trace && !*asJSON {
			fmt.Fprintf(stdout, "trace of the run at line %d:\n", cr.Line)
			run.Trace = func(s emu.TraceStep) {
				off := "      "
				if s.Off >= 0 {
					off = fmt.Sprintf("%#06x", s.Off)
				}
				fmt.Fprintf(stdout, "  %s  %-44s %s\n", off, s.Text, strings.Join(s.Changed, " "))
			}
		}
		res, err := emu.Check(g.Setup, cr.Plan, run)
		if err != nil {
			fmt.Fprintf(stderr, "tramp emu: %v\n", err)
			return exitUsage
		}
		r.Calls, r.Retval, r.OrigRuns, r.Insns, r.Violations = res.Calls, res.Retval, res.OrigRuns, res.Insns, res.Violations
		if r.Calls == nil {
			r.Calls = []emu.Call{}
		}
		if r.Violations == nil {
			r.Violations = []emu.Violation{}
		}
		if len(res.Violations) > 0 {
			failed = true
		}
		out = append(out, r)
		if !*asJSON {
			writeEmuRun(stdout, sel.profile.Name, sel.arch.Name, cr.Func, r)
		}
	}
	if *asJSON {
		last := out[len(out)-1]
		doc := struct {
			Kernel string `json:"kernel"`
			Arch   string `json:"arch"`
			Target string `json:"target"`
			emuRun
			Runs []emuRun `json:"runs"`
		}{sel.profile.Name, sel.arch.Name, c.Target.Name, last, out}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return fail("%v", err)
		}
	}
	if failed {
		return exitCheck
	}
	return exitOK
}

func opt(p *uint64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%#x", *p)
}

func writeEmuRun(w io.Writer, kernel, archName, target string, r emuRun) {
	var args []string
	for _, a := range r.Args {
		args = append(args, fmt.Sprintf("%#x", a))
	}
	fmt.Fprintf(w, "run at line %d on %s %s: %s(%s), %d instructions\n", r.Line, kernel, archName, target, strings.Join(args, ", "), r.Insns)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tPROG\tPHASE\tARGS\tARG_CNT\tIS_RETURN\tCOOKIE_IDX\tCOOKIE\tRET\tIP\tATTACH_COOKIE")
	for _, c := range r.Calls {
		var a []string
		for _, v := range c.Args {
			a = append(a, fmt.Sprintf("%#x", v))
		}
		cookie := "-"
		if c.CookieRead != nil {
			cookie = opt(c.CookieRead)
			if c.CookieWritten != nil {
				cookie += " -> " + opt(c.CookieWritten)
			}
		}
		idx := "-"
		if c.CookieSlot != nil {
			idx = fmt.Sprint(c.CookieIndex)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t[%s]\t%d\t%d\t%s\t%s\t%s\t%s\t%#x\n", c.Order, c.Prog, c.Phase, strings.Join(a, " "),
			c.ArgCnt, c.IsReturn, idx, cookie, opt(c.Ret), opt(c.IP), c.AttachCookie)
	}
	tw.Flush()
	fmt.Fprintf(w, "retval %#x (the traced function's body ran %d time(s))\n", r.Retval, r.OrigRuns)
	if len(r.Violations) == 0 {
		fmt.Fprintf(w, "checks: all passed\n\n")
		return
	}
	fmt.Fprintf(w, "checks: %d failed\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  %s\n", v)
	}
	fmt.Fprintln(w)
}
