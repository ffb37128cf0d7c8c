package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/arch/x86"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// sizeFunc is the model's image sizer for an arch (nil when tramp has no
// generator for it).
func sizeFunc(archName string) func(*trampoline.Plan) (int, error) {
	return generators.SizeFunc(archName)
}

// featuresHelp describes the --features flag.
const featuresHelp = "x86_64 build and CPU features, comma-separated: endbr, sls, rethunk[=THUNK], calldepth " +
	"(default: endbr,sls, Debian under QEMU -cpu max; -cpu EPYC-Rome is endbr,sls,rethunk=retbleed_return_thunk, " +
	"-cpu Cascadelake-Server endbr,sls,rethunk=its_return_thunk, retbleed=stuff endbr,sls,calldepth)"

// generatorFor is the generator of an arch, on x86_64 with the --features
// list when one is given.
func generatorFor(archName, features string) (*generators.Generator, error) {
	if features == "" {
		return generators.For(archName)
	}
	if archName != "x86_64" {
		return nil, fmt.Errorf("--features describes x86_64 kernels, not %s", archName)
	}
	f, err := x86.ParseFeatures(features)
	if err != nil {
		return nil, fmt.Errorf("--features: %w", err)
	}
	return generators.ForBoot(generators.Boot{Arch: archName, X86: f})
}

// funcFlag is the --func flag of the commands that show one image.
func funcFlag(fs *flag.FlagSet) *string {
	return fs.String("func", "", "in a case with several targets, the function whose image to show (default: the first target)")
}

// pickFunc checks --func against the case's targets ("" is the first).
func pickFunc(c *cases.Case, name string) (string, error) {
	if name == "" {
		return c.Target.Name, nil
	}
	if _, ok := c.LookupTarget(name); !ok {
		var names []string
		for _, t := range c.Targets() {
			names = append(names, t.Name)
		}
		return "", fmt.Errorf("--func %s: %s has no such target (%s)", name, c.File, strings.Join(names, ", "))
	}
	return name, nil
}

// imageOf replays a case and renders its final image.
func imageOf(name string, args []string, stderr io.Writer) (img *arch.Image, g *generators.Generator, addrs arch.Addrs, plan *trampoline.Plan, rest map[string]string, code int) {
	fs := newFlags(name, "[--kernel PROFILE] [--arch ARCH] [--features LIST] [--addrs FILE] [--line N] [--func NAME] CASE", stderr)
	fn := funcFlag(fs)
	line := fs.Int("line", 0, "the image after the attach or detach step at this case line (default: after the last step)")
	kernel := fs.String("kernel", "", "kernel profile (default: as for link)")
	archName := fs.String("arch", "", "x86_64 or arm64 (default: the case's first)")
	addrsFile := fs.String("addrs", "", "JSON file of real addresses (image, im, func, symbols, progs); default: placeholders")
	format := fs.String("format", "asm", "output: asm, hex or json")
	features := fs.String("features", "", featuresHelp)
	pos, c, done := parseFlags(fs, args)
	if done {
		return nil, nil, addrs, nil, nil, c
	}
	fail := func(format string, a ...any) (*arch.Image, *generators.Generator, arch.Addrs, *trampoline.Plan, map[string]string, int) {
		fmt.Fprintf(stderr, "tramp %s: %s\n", name, fmt.Sprintf(format, a...))
		return nil, nil, addrs, nil, nil, exitUsage
	}
	if len(pos) != 1 {
		return fail("want exactly one CASE file")
	}
	switch *format {
	case "asm", "hex", "json":
	default:
		return fail("--format %q: want asm, hex or json", *format)
	}
	cs, err := cases.ParseFile(pos[0])
	if err != nil {
		return fail("%v", err)
	}
	sel, err := choose(cs, *kernel, *archName, stderr)
	if err != nil {
		return fail("%v", err)
	}
	g, err = generatorFor(sel.arch.Name, *features)
	if err != nil {
		return fail("%v", err)
	}
	res, err := cases.Replay(cs, sel.profile, sel.arch, g.Size)
	if err != nil {
		return fail("%v", err)
	}
	f, err := pickFunc(cs, *fn)
	if err != nil {
		return fail("%v", err)
	}
	final := res.Model.Trampoline(f)
	if *line != 0 {
		var at *cases.Outcome
		for i := range res.Ops {
			if res.Ops[i].Line == *line {
				at = &res.Ops[i]
			}
		}
		if at == nil {
			return fail("--line %d: %s has no attach or detach step there", *line, cs.File)
		}
		if at.Plans[f] == nil {
			fmt.Fprintf(stderr, "tramp %s: after line %d of %s no program is attached to %s, so there is no image\n", name, *line, cs.File, f)
			return nil, nil, addrs, nil, nil, exitCheck
		}
		plan = at.Plans[f]
	} else if !final.HasImage() {
		hint := ""
		for _, o := range res.Ops {
			if o.Plans[f] != nil {
				hint = fmt.Sprintf(" (--line %d shows the image after the last step that leaves one)", o.Line)
			}
		}
		fmt.Fprintf(stderr, "tramp %s: after the last step of %s no program is attached to %s, so there is no image%s\n", name, cs.File, f, hint)
		return nil, nil, addrs, nil, nil, exitCheck
	} else {
		plan = final.Plan()
	}
	if *addrsFile == "" {
		addrs = g.Placeholder(plan)
		fmt.Fprintf(stderr, "note: no --addrs given; placeholder addresses are used (immediates and call targets are not a real kernel's)\n")
	} else if addrs, err = arch.LoadAddrs(*addrsFile); err != nil {
		return fail("--addrs: %v", err)
	}
	img, err = g.Generate(plan, addrs)
	if err != nil {
		fmt.Fprintf(stderr, "tramp %s: %v\n", name, err)
		return nil, nil, addrs, nil, nil, exitCheck
	}
	return img, g, addrs, plan, map[string]string{"format": *format}, exitOK
}

func runGen(args []string, stdout, stderr io.Writer) int {
	img, g, addrs, plan, opts, code := imageOf("gen", args, stderr)
	if img == nil {
		return code
	}
	switch opts["format"] {
	case "hex":
		fmt.Fprintln(stdout, arch.HexBytes(img.Code))
	case "json":
		out := struct {
			Plan  *trampoline.Plan `json:"plan"`
			Addrs arch.Addrs       `json:"addrs"`
			Code  string           `json:"code"`
			*arch.Image
		}{plan, addrs, strings.ReplaceAll(arch.HexBytes(img.Code), " ", ""), img}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(stderr, "tramp gen: %v\n", err)
			return exitUsage
		}
	default:
		lines, err := g.Explain(img, addrs.Image)
		if err != nil {
			fmt.Fprintf(stderr, "tramp gen: %v\n", err)
			return exitCheck
		}
		arch.WriteListing(stdout, lines)
	}
	if err := g.Check(img, addrs.Image, plan); err != nil {
		fmt.Fprintf(stderr, "tramp gen: the generated image fails the checker: %v\n", err)
		return exitCheck
	}
	return exitOK
}

func runExplain(args []string, stdout, stderr io.Writer) int {
	img, g, addrs, plan, _, code := imageOf("explain", args, stderr)
	if img == nil {
		return code
	}
	lines, err := g.Explain(img, addrs.Image)
	fmt.Fprintf(stdout, "%s trampoline for %s on %s: %d bytes of code (%d allocated), flags %s (%s)\n",
		plan.Arch, plan.Target, plan.Profile, len(img.Code), img.AllocSize, plan.Flags.Hex(), plan.Flags)
	fmt.Fprintf(stdout, "arg slots %d, fsession %d, cookies %d\n\n", plan.ArgSlots, plan.FsessionCount, plan.CookieCount)
	arch.WriteFrame(stdout, img, g.FrameReg)
	fmt.Fprintln(stdout)
	arch.WriteListing(stdout, lines)
	if err != nil {
		fmt.Fprintf(stderr, "tramp explain: %v\n", err)
		return exitCheck
	}
	if err := g.Check(img, addrs.Image, plan); err != nil {
		fmt.Fprintf(stderr, "tramp explain: the image fails the checker: %v\n", err)
		return exitCheck
	}
	return exitOK
}
