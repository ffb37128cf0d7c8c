package main

import (
	"fmt"
	"io"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("diff", "--from PROFILE --to PROFILE [--arch ARCH] CASE", stderr)
	from := fs.String("from", "linux-7.2.8", "the old kernel profile")
	to := fs.String("to", trampoline.DefaultProfile, "the new kernel profile")
	archName := fs.String("arch", "", "x86_64 or arm64 (default: the case's first)")
	context := fs.Int("context", 3, "unchanged instructions shown around each change")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "tramp diff: want exactly one CASE file")
		fs.Usage()
		return exitUsage
	}
	c, err := cases.ParseFile(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "tramp diff: %v\n", err)
		return exitUsage
	}
	type side struct {
		img   *arch.Image
		lines []arch.Line
		plan  *trampoline.Plan
	}
	render := func(profile string) (*side, error) {
		sel, err := choose(c, profile, *archName, io.Discard)
		if err != nil {
			return nil, err
		}
		g, err := generators.For(sel.arch.Name)
		if err != nil {
			return nil, err
		}
		res, err := cases.Replay(c, sel.profile, sel.arch, sizeFunc(sel.arch.Name))
		if err != nil {
			return nil, err
		}
		if !res.Final.HasImage() {
			return nil, fmt.Errorf("on %s no program is attached after the last step", profile)
		}
		plan := res.Final.Plan()
		addrs := g.Placeholder(plan)
		img, err := g.Generate(plan, addrs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", profile, err)
		}
		lines, err := g.Explain(img, addrs.Image)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", profile, err)
		}
		return &side{img, lines, plan}, nil
	}
	a, err := render(*from)
	if err != nil {
		fmt.Fprintf(stderr, "tramp diff: %v\n", err)
		return exitUsage
	}
	b, err := render(*to)
	if err != nil {
		fmt.Fprintf(stderr, "tramp diff: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "--- %s: %d bytes, flags %s\n+++ %s: %d bytes, flags %s\n", *from, len(a.img.Code), a.plan.Flags.Hex(), *to, len(b.img.Code), b.plan.Flags.Hex())
	n := arch.WriteDiff(stdout, arch.Diff(a.img, a.lines, b.img, b.lines), *context)
	fmt.Fprintf(stdout, "%d instructions differ (placeholder addresses on both sides)\n", n)
	return exitOK
}
