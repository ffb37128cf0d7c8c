package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/record"
	"github.com/bpftramp/tramp/vm/recording"
)

// runObserved prints what the observer programs saw in a real kernel, as
// a recording keeps it: per run step every invocation in the kernel's
// order, with the function it ran on (told by the arguments the kernel's
// test run passes, in a case with several targets), its phase, the
// arguments and return value it read, its link cookie, session cookie and
// func ip.
func runObserved(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("observed", "RECORDING.json [CASE]", stderr)
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "tramp observed: %s\n", fmt.Sprintf(format, a...))
		return exitUsage
	}
	if len(pos) < 1 || len(pos) > 2 {
		return fail("want a RECORDING.json and optionally its CASE file")
	}
	rec, err := recording.Load(pos[0])
	if err != nil {
		return fail("%v", err)
	}
	var c *cases.Case
	if len(pos) == 2 {
		c, err = cases.ParseFile(pos[1])
	} else {
		var byName map[string]*cases.Case
		if byName, err = cases.CorpusByName(); err == nil {
			if c = byName[rec.Case]; c == nil {
				err = fmt.Errorf("%s: no case %s in the corpus; name its CASE file", pos[0], rec.Case)
			}
		}
	}
	if err != nil {
		return fail("%v", err)
	}
	obs := map[int]guestapi.Observations{}
	for _, o := range rec.Observations {
		obs[o.Step] = o
	}
	release := rec.Kernel.Release
	if release == "" && rec.Start != nil {
		release = rec.Start.Release
	}
	fmt.Fprintf(stdout, "case %s recorded on %s/%s (Linux %s, %s)\n", rec.Case, rec.Profile, rec.Arch, release, orDash(rec.Kernel.Accel))
	for i, st := range c.Steps {
		if st.Op != cases.OpRun || i >= len(rec.Steps) {
			continue
		}
		ks := rec.Steps[i]
		what := "the kernel's trigger"
		if st.Func != "" {
			what = st.Func + " (the trigger calls every target; its invocations are shown)"
		}
		fmt.Fprintf(stdout, "\nrun at line %d, %s: %s\n", st.Line, what, ks.Errno)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  #\tfunction\tprog\tphase\targs\tret\tlink cookie\tsession cookie\tfunc ip")
		n := 0
		for _, r := range obs[i].Records {
			fn := record.ObservedFunc(c, r)
			if st.Func != "" && c.MultiTarget() && fn != st.Func {
				continue
			}
			var args []string
			for k := 0; k < int(r.ArgCnt) && k < len(r.Args); k++ {
				args = append(args, fmt.Sprintf("%#x", r.Args[k]))
			}
			ret, cookie, ip := "-", "-", "-"
			if r.Ret != nil {
				ret = fmt.Sprintf("%#x", *r.Ret)
			}
			if r.CookieRead != nil {
				cookie = fmt.Sprintf("%#x", *r.CookieRead)
				if r.CookieWritten != nil {
					cookie += fmt.Sprintf(" (writes %#x)", *r.CookieWritten)
				}
			}
			if r.IP != nil {
				ip = fmt.Sprintf("%#x", *r.IP)
				if rec.Start != nil && rec.Start.Symbols[fn] == *r.IP {
					ip += " = " + fn
				}
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%#x\t%s\t%s\n", n, fn, r.Prog, r.Phase, strings.Join(args, " "), ret, r.AttachCookie, cookie, ip)
			n++
		}
		tw.Flush()
		if n == 0 {
			fmt.Fprintln(stdout, "  no program ran")
		}
	}
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
