package main

import (
	"fmt"
	"io"

	"github.com/bpftramp/tramp/vm/recording"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/record"
)

func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("diff", "--from PROFILE --to PROFILE [--arch ARCH] [--features LIST] [--to-features LIST] CASE | --recording FILE.json [CASE]", stderr)
	from := fs.String("from", "linux-7.2.8", "the old kernel profile")
	to := fs.String("to", trampoline.DefaultProfile, "the new kernel profile")
	archName := fs.String("arch", "", "x86_64 or arm64 (default: the case's first)")
	fn := funcFlag(fs)
	context := fs.Int("context", 3, "unchanged instructions shown around each change")
	recording := fs.String("recording", "", "compare the model's images with the ones in this recording (cases/testdata/...json; x86_64 features from the recorded boot) instead of two profiles")
	features := fs.String("features", "", featuresHelp+"; both sides")
	toFeatures := fs.String("to-features", "", "x86_64 features of the --to side when they differ from --features (e.g. --from debian-7.2.13 --to debian-7.2.13 --to-features endbr,sls,calldepth)")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	if *recording != "" {
		if *features != "" || *toFeatures != "" {
			fmt.Fprintln(stderr, "tramp diff: --recording takes the features of the recorded boot; drop --features")
			return exitUsage
		}
		return diffRecording(*recording, pos, stdout, stderr)
	}
	if *toFeatures == "" {
		toFeatures = features
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
	render := func(profile, features string) (*side, error) {
		sel, err := choose(c, profile, *archName, io.Discard)
		if err != nil {
			return nil, err
		}
		g, err := generatorFor(sel.arch.Name, features)
		if err != nil {
			return nil, err
		}
		res, err := cases.Replay(c, sel.profile, sel.arch, g.Size)
		if err != nil {
			return nil, err
		}
		f, err := pickFunc(c, *fn)
		if err != nil {
			return nil, err
		}
		final := res.Model.Trampoline(f)
		if !final.HasImage() {
			return nil, fmt.Errorf("on %s no program is attached to %s after the last step", profile, f)
		}
		plan := final.Plan()
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
	a, err := render(*from, *features)
	if err != nil {
		fmt.Fprintf(stderr, "tramp diff: %v\n", err)
		return exitUsage
	}
	b, err := render(*to, *toFeatures)
	if err != nil {
		fmt.Fprintf(stderr, "tramp diff: %v\n", err)
		return exitUsage
	}
	name := func(profile, features string) string {
		if features != "" {
			return profile + " [" + features + "]"
		}
		return profile
	}
	fmt.Fprintf(stdout, "--- %s: %d bytes, flags %s\n+++ %s: %d bytes, flags %s\n", name(*from, *features), len(a.img.Code), a.plan.Flags.Hex(), name(*to, *toFeatures), len(b.img.Code), b.plan.Flags.Hex())
	n := arch.WriteDiff(stdout, arch.Diff(a.img, a.lines, b.img, b.lines), *context)
	fmt.Fprintf(stdout, "%d instructions differ (placeholder addresses on both sides)\n", n)
	return exitOK
}

// diffRecording renders the model's image for every capture of a recording
// with that kernel's addresses and shows where it differs from the real
// one (the recording's case comes from the corpus, its own source, or the
// CASE argument).
func diffRecording(path string, pos []string, stdout, stderr io.Writer) int {
	rec, err := recording.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "tramp diff: %v\n", err)
		return exitUsage
	}
	var c *cases.Case
	switch {
	case len(pos) == 1:
		c, err = cases.ParseFile(pos[0])
	case len(pos) > 1:
		err = fmt.Errorf("at most one CASE with --recording")
	case rec.Source != "":
		c, err = record.ShapeCase(rec)
	default:
		var corpus []*cases.Case
		corpus, err = cases.Corpus()
		for _, cc := range corpus {
			if cc.Name == rec.Case {
				c = cc
			}
		}
		if err == nil && c == nil {
			err = fmt.Errorf("%s: case %s is not in the corpus; give its CASE file", path, rec.Case)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tramp diff: %v\n", err)
		return exitUsage
	}
	prof, err := record.ProfileOf(rec)
	if err != nil {
		fmt.Fprintf(stderr, "tramp diff: %s: %v\n", path, err)
		return exitUsage
	}
	results := record.CompareImages(rec, c, prof)
	if len(results) == 0 {
		fmt.Fprintf(stderr, "tramp diff: %s has no captured images\n", path)
		return exitUsage
	}
	bad := 0
	for _, r := range results {
		if r.OK {
			fmt.Fprintf(stdout, "%s %s/%s step %d: byte-exact (%d bytes of code)\n", rec.Case, rec.Profile, rec.Arch, r.Step, r.Len)
			continue
		}
		bad++
		fmt.Fprintf(stdout, "%s %s/%s step %d: %s\n", rec.Case, rec.Profile, rec.Arch, r.Step, r.Diff)
	}
	if bad > 0 {
		return exitCheck
	}
	return exitOK
}
