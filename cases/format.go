package cases

import (
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/trampoline"
)

// Format writes c in the case-file syntax that Parse reads, one line per
// declaration and step in the order Parse keeps them: Parse(Format(c))
// gives back c's kernels, arches, target, programs and steps (the line
// numbers are Format's own). A target whose prototype and attributes are
// what tramp knows for its name is written by name alone.
func Format(c *Case) []byte {
	var b strings.Builder
	if len(c.Kernels) > 0 {
		fmt.Fprintf(&b, "kernel %s\n", strings.Join(c.Kernels, " "))
	}
	if len(c.Arches) > 0 {
		fmt.Fprintf(&b, "arch %s\n", strings.Join(c.Arches, " "))
	}
	for _, t := range c.Targets() {
		b.WriteString(formatTarget(t))
		b.WriteByte('\n')
	}
	for _, p := range c.Progs {
		b.WriteString(FormatProg(p))
		if f, ok := c.On[p.Name]; ok {
			b.WriteString(" on=" + f)
		}
		b.WriteByte('\n')
	}
	var all []string
	for _, t := range c.Targets() {
		all = append(all, t.Name)
	}
	for _, s := range c.Steps {
		b.WriteString(formatStep(s, all))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// formatTarget is the target line.
func formatTarget(t trampoline.Target) string {
	var attrs []string
	a := t.Attrs
	switch {
	case a.FmodRetSleepable:
		attrs = append(attrs, "fmodret-sleepable")
	case a.FmodRet:
		attrs = append(attrs, "fmodret")
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{a.ErrorInject, "error-inject"}, {a.NoReturn, "noreturn"}, {a.Deny, "deny"}, {a.NoTrace, "notrace"}, {a.BPFProg, "bpf-prog"}} {
		if f.on {
			attrs = append(attrs, f.name)
		}
	}
	if a.TailCallReachable && !a.TailCallViaSubprog && !a.TailCallTaken {
		attrs = append(attrs, "tail-call")
	}
	if a.TailCallViaSubprog {
		attrs = append(attrs, "tail-call-subprog")
	}
	if a.TailCallTaken {
		attrs = append(attrs, "tail-call-taken")
	}
	if a.GlobalSubprog {
		attrs = append(attrs, "global-subprog")
	}
	if t.BTFID != 0 {
		attrs = append(attrs, fmt.Sprintf("btf-id=%d", t.BTFID))
	}
	// A known name brings its prototype and attributes (Parse adds the
	// written attributes to them), so a target that is exactly the known
	// one is written by name; any other is written out in full.
	line := "target " + t.Name
	if known, ok := trampoline.KnownTarget(t.Name); ok && known.Proto.String() == t.Proto.String() && known.Attrs == t.Attrs {
		if t.BTFID != 0 {
			line += fmt.Sprintf(" btf-id=%d", t.BTFID)
		}
		return line
	}
	line += t.Proto.String()
	if len(attrs) > 0 {
		line += " " + strings.Join(attrs, " ")
	}
	return line
}

// FormatProg is a prog line.
func FormatProg(p *trampoline.Prog) string {
	w := []string{"prog", p.Name, p.Kind.String()}
	if p.Cookie {
		w = append(w, "cookie")
	}
	if p.IP {
		w = append(w, "ip")
	}
	if p.Sleepable {
		w = append(w, "sleepable")
	}
	if p.LinkCookie != 0 {
		w = append(w, fmt.Sprintf("link-cookie=%#x", p.LinkCookie))
	}
	if p.Returns != 0 {
		w = append(w, fmt.Sprintf("returns=%d", p.Returns))
	}
	return strings.Join(w, " ")
}

// formatStep is a step line; all are the case's targets, which a multi
// attach without on= names.
func formatStep(s Step, all []string) string {
	switch s.Op {
	case OpRun:
		w := []string{"run"}
		if s.Func != "" {
			w = append(w, s.Func)
		}
		for _, a := range s.Args {
			w = append(w, fmt.Sprint(a))
		}
		return strings.Join(w, " ")
	}
	line := string(s.Op) + " " + s.Prog.Name
	if s.Funcs != nil && strings.Join(s.Funcs, ",") != strings.Join(all, ",") {
		line += " on=" + strings.Join(s.Funcs, ",")
	}
	if s.Cookies != nil {
		var w []string
		for _, c := range s.Cookies {
			w = append(w, fmt.Sprintf("%#x", c))
		}
		line += " link-cookies=" + strings.Join(w, ",")
	}
	if s.Expect != "" {
		line += " expect " + s.Expect
	}
	return line
}
