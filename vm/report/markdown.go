package report

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown writes r as a Markdown summary for a CI step summary: a
// headline with the totals, the build × arch matrix (passed/failed/
// skipped, wall time and accelerator per cell), then each failed case
// with its problems, each VM error with the last console lines, and each
// kernel splat.
func WriteMarkdown(w io.Writer, r *Results) error {
	var b strings.Builder
	t := r.Totals()
	mark := "✅"
	if !r.OK() {
		mark = "❌"
	}
	fmt.Fprintf(&b, "### %s tramp vm %s: %d passed, %d failed, %d skipped", mark, r.Command, t.Passed, t.Failed, t.Skipped)
	if t.VMErrors > 0 {
		fmt.Fprintf(&b, ", %d VM error%s", t.VMErrors, plural(t.VMErrors))
	}
	b.WriteString("\n\n")
	if len(r.Runs) == 0 {
		b.WriteString("No build × arch ran.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	bs, as := builds(r.Runs), arches(r.Runs)
	cs := cells(r.Runs)
	accel := map[string]string{}
	for _, run := range r.Runs {
		if k := run.Build + "/" + run.Arch; accel[k] == "" {
			accel[k] = run.Accel
		}
	}
	b.WriteString("| build |")
	for _, a := range as {
		fmt.Fprintf(&b, " %s |", cellText(a))
	}
	b.WriteString("\n| --- |")
	for range as {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, bl := range bs {
		fmt.Fprintf(&b, "| %s |", cellText(bl))
		for _, a := range as {
			c := cs[bl+"/"+a]
			if c == nil {
				b.WriteString(" - |")
				continue
			}
			m := "✅"
			if c.failed > 0 || c.vmError {
				m = "❌"
			}
			v := fmt.Sprintf("%s %d/%d/%d", m, c.passed, c.failed, c.skipped)
			if c.booted {
				v += ", " + c.elapsed.Round(time.Second).String()
			}
			if ac := accel[bl+"/"+a]; ac != "" {
				v += ", " + ac
			}
			if c.vmError {
				v += ", VM error"
			}
			if c.splats > 0 {
				v += fmt.Sprintf(", %d splat%s", c.splats, plural(c.splats))
			}
			fmt.Fprintf(&b, " %s |", cellText(v))
		}
		b.WriteString("\n")
	}
	b.WriteString("\npassed/failed/skipped per build × arch (skipped: the case's target is not in that kernel's BTF), the boots' wall time and accelerator.\n")
	var failed []string
	for _, run := range r.Runs {
		for _, c := range run.Cases {
			if c.Status != Fail {
				continue
			}
			s := fmt.Sprintf("- %s %s %s: %s\n", code(run.Build), code(run.Arch), code(c.Case), cellText(c.Result))
			if len(c.Problems) > 0 {
				s += fenced(strings.Join(c.Problems, "\n"))
			}
			failed = append(failed, s)
		}
	}
	section(&b, "Failed cases", failed)
	var vmErrors, splats []string
	for _, run := range r.Runs {
		if run.Error != "" {
			body := run.Error
			if len(run.ConsoleTail) > 0 {
				body += "\n\nlast console lines:\n" + strings.Join(run.ConsoleTail, "\n")
			}
			vmErrors = append(vmErrors, fmt.Sprintf("- %s %s: %s\n%s", code(run.Build), code(run.Arch), cellText(firstLine(run.Error)), fenced(body)))
		}
		for _, sp := range run.Splats {
			splats = append(splats, fmt.Sprintf("- %s %s: %s at console line %d\n%s", code(run.Build), code(run.Arch), cellText(sp.Kind), sp.Line+1, fenced(strings.Join(sp.Excerpt, "\n"))))
		}
	}
	section(&b, "VM errors", vmErrors)
	section(&b, "Kernel splats", splats)
	_, err := io.WriteString(w, b.String())
	return err
}

func section(b *strings.Builder, title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(b, "\n#### %s\n\n", title)
	for _, it := range items {
		b.WriteString(it)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// cellText is s on one line, safe in a table cell.
func cellText(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// code is s as inline code (outside a table).
func code(s string) string {
	return "`" + strings.NewReplacer("\n", " ", "`", "'").Replace(s) + "`"
}

// fenced is s as a code block indented under a list item, its fence
// longer than any run of backticks in s.
func fenced(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	var b strings.Builder
	b.WriteString("  " + fence + "\n")
	for _, l := range strings.Split(s, "\n") {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("  " + fence + "\n")
	return b.String()
}
