package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/bisect"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
	"github.com/bpftramp/tramp/vm/record"
	"github.com/bpftramp/tramp/vm/recording"
)

// bisectCmd pins a delta no kernel states to the served builds: per
// stable branch, the newest build without it and the first with it,
// judged by the delta's probe cases (booted, or read from recordings).
func bisectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bisect", "bisect --delta NAME [--arch x86_64] [--kernel all|GLOB,...] [--recordings DIR] | --table --recordings DIR [--write FILE]", stderr)
	deltaFlag := fs.String("delta", "", "the delta to pin (one of "+strings.Join(deltaNames(), ", ")+")")
	table := fs.Bool("table", false, "judge every delta on every build recorded under --recordings at once (all of its recordings, every on/off assignment) and print the builds × deltas table of trampoline/builds.txt, the embedded rows merged in")
	write := fs.String("write", "", "--table: also write the merged table to this file (trampoline/builds.txt)")
	archFlag := fs.String("arch", "x86_64", "the architecture (one)")
	kernelFlag := fs.String("kernel", "all", "the builds to search: all served ones, globs (debian-7.2.*) or names")
	recs := fs.String("recordings", "", "judge a build by its recordings under this directory (<build>/<arch>/<case>.json, as vm check --out writes) where it has every probe; boot the others")
	out := fs.String("out", "", "also write the recordings of the builds booted under this directory")
	cache := fs.String("cache", "", "cache directory (default: $TRAMP_CACHE_DIR or the user cache dir)")
	accel := accelFlag(fs)
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tramp vm bisect: unexpected arguments %q\n", fs.Args())
		return ExitUsage
	}
	if *table {
		if *recs == "" {
			fmt.Fprintln(stderr, "tramp vm bisect: --table judges recordings: give --recordings DIR")
			return ExitUsage
		}
		return buildTable(*recs, *kernelFlag, *write, stdout, stderr)
	}
	d := trampoline.LookupDelta(*deltaFlag)
	if d == nil {
		fmt.Fprintf(stderr, "tramp vm bisect: --delta %q: want one of %s\n", *deltaFlag, strings.Join(deltaNames(), ", "))
		return ExitUsage
	}
	arches, err := parseArches(*archFlag)
	if err != nil || len(arches) != 1 {
		fmt.Fprintf(stderr, "tramp vm bisect: --arch %q: want one architecture\n", *archFlag)
		return ExitUsage
	}
	arch := arches[0]
	corpus, probes, err := probeCases(d, string(arch))
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm bisect: %v\n", err)
		return ExitUsage
	}
	if _, err := qemu.ParseAccel(*accel); err != nil {
		fmt.Fprintf(stderr, "tramp vm bisect: --accel: %v\n", err)
		return ExitUsage
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	names, err := bisectBuilds(ctx, f, *kernelFlag, *recs, arch)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm bisect: %v\n", err)
		return ExitUsage
	}
	var builds []bisect.Build
	for _, n := range names {
		v, err := trampoline.ParseVersion(strings.TrimPrefix(n, "debian-"))
		if err != nil || !kernels.IsBuildName(n) {
			fmt.Fprintf(stderr, "tramp vm bisect: --kernel %s: not a served build (bisect searches builds by version)\n", n)
			return ExitUsage
		}
		builds = append(builds, bisect.Build{Name: n, Version: v})
	}
	fmt.Fprintf(stderr, "bisect %s on %s over %d builds, probes %s\n", d.Name, arch, len(builds), strings.Join(caseNames(probes), ", "))
	probe := func(ctx context.Context, b bisect.Build) (bisect.Judgement, error) {
		start := time.Now()
		got, base, how, err := probeRecordings(ctx, f, b.Name, arch, probes, *recs, *out, *accel, stderr)
		if err != nil {
			return bisect.Judgement{}, err
		}
		j, err := bisect.Judge(got, corpus, base, d)
		if err == nil {
			fmt.Fprintf(stderr, "[%s %s] %s: %s (%s, %s)\n", b.Name, arch, d.Name, j, how, time.Since(start).Round(time.Second))
		}
		return j, err
	}
	results := bisect.Search(ctx, builds, probe)
	return printBisect(stdout, d, arch, results)
}

// bisectBuilds are the builds to search: with recordings and --kernel
// all, the builds recorded there for arch (offline); explicit build
// names as they are; else the served ones the words select.
func bisectBuilds(ctx context.Context, f *kernels.Fetcher, spec, dir string, arch kernels.Arch) ([]string, error) {
	words := splitList(spec)
	if dir != "" && spec == "all" {
		recs, err := recording.LoadAll(dir)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, r := range recs {
			if r.Arch == string(arch) && kernels.IsBuildName(r.Profile) && !slices.Contains(out, r.Profile) {
				out = append(out, r.Profile)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no %s recordings of served builds under %s", arch, dir)
		}
		return out, nil
	}
	explicit := true
	for _, w := range words {
		if w == "all" || strings.ContainsAny(w, "*?[") || !kernels.IsBuildName(w) {
			explicit = false
		}
	}
	if explicit && len(words) > 0 {
		return words, nil
	}
	return expandKernels(ctx, f, spec, []kernels.Arch{arch})
}

func deltaNames() []string {
	var out []string
	for _, d := range trampoline.Deltas {
		out = append(out, d.Name)
	}
	return out
}

// probeCases are the delta's probe cases that apply to arch, and the
// corpus by name for the judge.
func probeCases(d *trampoline.Delta, arch string) (map[string]*cases.Case, []*cases.Case, error) {
	corpus, err := cases.CorpusByName()
	if err != nil {
		return nil, nil, err
	}
	var probes []*cases.Case
	for _, n := range d.Probes {
		c := corpus[n]
		if c == nil {
			return nil, nil, fmt.Errorf("delta %s: probe case %s is not in the corpus", d.Name, n)
		}
		for _, a := range c.ArchList() {
			if a.Name == arch {
				probes = append(probes, c)
			}
		}
	}
	if len(probes) == 0 {
		return nil, nil, fmt.Errorf("delta %s has no probe case for %s: no corpus case exercises it there, so no boot can tell", d.Name, arch)
	}
	return corpus, probes, nil
}

func caseNames(cs []*cases.Case) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// probeRecordings gives the build's recordings of the probe cases and the
// build's model profile: from dir when it has them all (the profile their
// stated facts make, offline), else from a boot that runs them (the
// profile the image's facts make).
func probeRecordings(ctx context.Context, f *kernels.Fetcher, build string, arch kernels.Arch,
	probes []*cases.Case, dir, out, accel string, stderr io.Writer) ([]*recording.Recording, *trampoline.Profile, string, error) {
	if dir != "" {
		var got []*recording.Recording
		packed, err := recording.LoadPack(recording.PackPath(dir, build, string(arch)))
		if err != nil && !os.IsNotExist(err) {
			return nil, nil, "", err
		}
		for _, c := range probes {
			var rec *recording.Recording
			for _, r := range packed {
				if r.Case == c.Name && r.CPU == "" && !r.KASLR && len(r.Append) == 0 {
					rec = r
				}
			}
			if rec == nil {
				rec, err = recording.Load(recording.Path(dir, build, string(arch), c.Name))
				if os.IsNotExist(err) {
					got = nil
					break
				}
				if err != nil {
					return nil, nil, "", err
				}
			}
			got = append(got, rec)
		}
		if got != nil {
			base, err := record.ProfileOf(got[0])
			if err != nil {
				return nil, nil, "", err
			}
			return got, base, "read from " + dir, nil
		}
	}
	profs, stated, err := modelProfile(ctx, f, build, "", []kernels.Arch{arch}, stderr)
	if err != nil {
		return nil, nil, "", err
	}
	prof := profs[arch]
	r := &suiteRun{profile: prof, stated: stated[arch], kernel: build, arch: arch, cases: probes}
	bootAll(ctx, []*suiteRun{r}, f, bootOpts{accel: accel}, stderr, func(_ *suiteRun, rec *recording.Recording) {
		if out != "" {
			if _, err := recording.Write(out, rec); err != nil {
				fmt.Fprintf(stderr, "tramp vm bisect: %v\n", err)
			}
		}
	})
	if r.err != nil {
		return nil, nil, "", fmt.Errorf("boot: %w", r.err)
	}
	if r.res == nil || len(r.res.Recordings) == 0 {
		return nil, nil, "", fmt.Errorf("the boot recorded no probe case")
	}
	return r.res.Recordings, prof, "booted", nil
}

func printBisect(w io.Writer, d *trampoline.Delta, arch kernels.Arch, results []bisect.BranchResult) int {
	code := ExitOK
	fmt.Fprintf(w, "delta %s on %s: %s\n", d.Name, arch, d.What)
	fmt.Fprintf(w, "%-7s %6s  %-22s %-22s %s\n", "branch", "builds", "last without", "first with", "probed")
	for _, r := range results {
		lw, fw := "-", "-"
		if r.LastWithout != nil {
			lw = r.LastWithout.Name
		}
		if r.FirstWith != nil {
			fw = r.FirstWith.Name
		}
		var probed []string
		for _, p := range r.Probed {
			probed = append(probed, fmt.Sprintf("%s %s", strings.TrimPrefix(p.Build.Name, "debian-"), p.Judgement.State))
		}
		fmt.Fprintf(w, "%-7s %6d  %-22s %-22s %s\n", r.Branch, len(r.Builds), lw, fw, strings.Join(probed, ", "))
		if r.Err != nil {
			fmt.Fprintf(w, "    not pinned: %v\n", r.Err)
			code = ExitCheck
		}
	}
	return code
}
