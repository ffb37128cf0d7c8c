package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/facts"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
	"github.com/bpftramp/tramp/vm/record"
	"github.com/bpftramp/tramp/vm/recording"
	"github.com/bpftramp/tramp/vm/report"
)

// DefaultTestdata is where "tramp vm record" files recordings.
const DefaultTestdata = "cases/testdata"

// suiteRun is one (kernel, arch) boot of a suite and what came of it.
type suiteRun struct {
	profile *trampoline.Profile
	kernel  string // profile name or image path
	arch    kernels.Arch
	// index is the run's build × arch in the whole (unsharded) run.
	index int
	// stated are the build's facts its recordings carry.
	stated *recording.StatedFacts
	cases  []*cases.Case
	// caseIndex is each case's position in its build × arch's whole
	// list (report.Case.Index); nil for 0, 1, ...
	caseIndex []int
	res       *record.Result
	err       error
	// started is when the boot began, arrivals when each case's
	// recording came (the cases' times).
	started  time.Time
	arrivals []arrival
}

// suite runs cases on every (kernel, arch), all arches of one kernel in
// parallel, compares every recording with the model, and prints a table.
// It returns the exit code.
func suite(ctx context.Context, name string, args []string, stdout, stderr io.Writer, write bool) int {
	fs := newFlags(name, name+" [--kernel PROFILES|PATH] [--arch x86_64,arm64] [CASE.tramp ...]", stderr)
	kernelFlag := fs.String("kernel", kernels.DefaultProfile, "comma-separated served builds (tramp vm kernels; recorded ones: "+strings.Join(kernels.ProfileNames(), ", ")+"), globs such as debian-7.2.*, \"all\", or kernel image paths")
	profileFlag := fs.String("profile", "", "model profile for a kernel image path (default: "+trampoline.DefaultProfile+")")
	archFlag := fs.String("arch", "x86_64,arm64", "comma-separated architectures")
	testdata := fs.String("testdata", DefaultTestdata, "where recordings are written (record) or kept (check --out)")
	out := fs.String("out", "", "check: also write the recordings under this directory")
	ci := addCIFlags(fs)
	workdir := fs.String("workdir", "", "keep each boot's console.log and results.bin under this directory (<build>/<arch>.<n>)")
	planOnly := fs.Bool("plan", false, "print the builds × arches this run (or --shard) boots, with each image package's version and the SHA256 the archive states (a CI kernel cache's key), and boot nothing")
	cache := fs.String("cache", "", "cache directory (default: $TRAMP_CACHE_DIR or the user cache dir)")
	kaslr := fs.Bool("kaslr", false, "boot with KASLR (default: nokaslr)")
	accel := accelFlag(fs)
	cpu := fs.String("cpu", "", "QEMU -cpu model for a single --arch, e.g. EPYC-Rome (default: max); recordings go to <case>.cpu-<model>.json")
	var appendArgs listFlag
	fs.Var(&appendArgs, "append", "extra kernel command-line words, e.g. retbleed=stuff (repeatable; named in the recording's file name)")
	files, code, ok := parseArgs(fs, args, stdout)
	if !ok {
		return code
	}
	shard, err := ci.parseShard()
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm %s: --shard: %v\n", name, err)
		return ExitUsage
	}
	arches, err := parseArches(*archFlag)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm %s: --arch: %v\n", name, err)
		return ExitUsage
	}
	if *cpu != "" && len(arches) != 1 {
		fmt.Fprintf(stderr, "tramp vm %s: --cpu names one architecture's CPU model: give a single --arch too\n", name)
		return ExitUsage
	}
	var words []string
	for _, a := range appendArgs {
		words = append(words, strings.Fields(a)...)
	}
	if _, err := qemu.ParseAccel(*accel); err != nil {
		fmt.Fprintf(stderr, "tramp vm %s: --accel: %v\n", name, err)
		return ExitUsage
	}
	opts := bootOpts{kaslr: *kaslr, accel: *accel, cpu: *cpu, append: words, workdir: *workdir}
	var corpus []*cases.Case
	if len(files) == 0 {
		if corpus, err = cases.Corpus(); err != nil {
			fmt.Fprintf(stderr, "tramp vm %s: %v\n", name, err)
			return ExitUsage
		}
	}
	for _, f := range files {
		c, err := cases.ParseFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm %s: %v\n", name, err)
			return ExitUsage
		}
		corpus = append(corpus, c)
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	names, served, err := expandKernelsServed(ctx, f, *kernelFlag, arches)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm %s: %v\n", name, err)
		return ExitUsage
	}
	// The plan: every build × arch and the corpus cases of its arch,
	// known without fetching a kernel; the shard's part of it is
	// modelled and booted.
	type group struct {
		kernel string
		arch   kernels.Arch
		cases  []*cases.Case
	}
	var groups []group
	var plan []report.Group
	for _, k := range names {
		as, err := archesOf(k, arches)
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm %s: %v\n", name, err)
			return ExitUsage
		}
		if sv, ok := served[k]; ok {
			// From the catalog: only the arches that serve the build.
			as = slices.DeleteFunc(slices.Clone(as), func(a kernels.Arch) bool { return !slices.Contains(sv, a) })
		}
		for _, a := range as {
			g := group{kernel: k, arch: a}
			for _, c := range corpus {
				if onArch(c, string(a)) {
					g.cases = append(g.cases, c)
				}
			}
			groups = append(groups, g)
			plan = append(plan, report.Group{Build: k, Arch: string(a), Cases: len(g.cases)})
		}
	}
	pieces := shard.Pieces(plan)
	if *planOnly {
		if err := printPlan(ctx, f, stdout, arches, groupsOf(plan, pieces)); err != nil {
			fmt.Fprintf(stderr, "tramp vm %s: --plan: %v\n", name, err)
			return ExitCheck
		}
		return ExitOK
	}
	var runs []*suiteRun
	for i := 0; i < len(pieces); {
		// The pieces of one kernel: modelled once, for their arches.
		k := groups[pieces[i].Group].kernel
		j := i
		var kArches []kernels.Arch
		for ; j < len(pieces) && groups[pieces[j].Group].kernel == k; j++ {
			kArches = append(kArches, groups[pieces[j].Group].arch)
		}
		prof, stated, err := modelProfile(ctx, f, k, *profileFlag, kArches, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm %s: %v\n", name, err)
			return ExitUsage
		}
		for _, p := range pieces[i:j] {
			g := groups[p.Group]
			if prof[g.arch] == nil {
				fmt.Fprintf(stderr, "tramp vm %s: %s: no model profile for %s\n", name, k, g.arch)
				return ExitUsage
			}
			r := &suiteRun{profile: prof[g.arch], stated: stated[g.arch], kernel: k, arch: g.arch, index: p.Group}
			for x := p.From; x < p.To; x++ {
				if g.cases[x].AppliesTo(r.profile, mustArch(g.arch)) {
					r.cases = append(r.cases, g.cases[x])
					r.caseIndex = append(r.caseIndex, x)
				}
			}
			runs = append(runs, r)
		}
		i = j
	}
	if !shard.Whole() {
		fmt.Fprintf(stderr, "tramp vm %s: shard %s: %d of %d build × arch\n", name, shard, len(runs), len(plan))
	}
	bootAll(ctx, runs, f, opts, stderr, func(r *suiteRun, rec *recording.Recording) {
		if write {
			if _, err := recording.Write(*testdata, rec); err != nil {
				fmt.Fprintf(stderr, "tramp vm %s: %v\n", name, err)
			}
		} else if *out != "" {
			recording.Write(*out, rec)
		}
	})
	res := suiteReport(name, shard, runs, stdout, write, *testdata, *out)
	if err := ci.write(res, stdout); err != nil {
		fmt.Fprintf(stderr, "tramp vm %s: %v\n", name, err)
		return ExitCheck
	}
	if !res.OK() {
		return ExitCheck
	}
	return ExitOK
}

// onArch says that case c runs on arch.
func onArch(c *cases.Case, arch string) bool {
	for _, a := range c.ArchList() {
		if a.Name == arch {
			return true
		}
	}
	return false
}

// suiteReport compares every recording of the runs with the model (and,
// for record and --out, writes each once more, now with the accelerator
// known), prints the table, and returns the results.
func suiteReport(command string, shard report.Shard, runs []*suiteRun, stdout io.Writer, write bool, testdata, out string) *report.Results {
	results := newResults(command, shard)
	for _, r := range runs {
		if len(r.cases) == 0 {
			continue
		}
		byName := map[string]*recording.Recording{}
		if r.res != nil {
			for _, rec := range r.res.Recordings {
				byName[rec.Case] = rec
				if write {
					recording.Write(testdata, rec)
				} else if out != "" {
					recording.Write(out, rec)
				}
			}
		}
		a, _ := trampoline.LookupArch(string(r.arch))
		run := bootRun(r.profile.Name, string(r.arch), r.index, r.res, r.err)
		times := caseTimes(r.arrivals, r.res, r.started)
		for i, c := range r.cases {
			rc := report.Case{Case: c.Name, Index: i, TimeMS: times[c.Name].Milliseconds()}
			if r.caseIndex != nil {
				rc.Index = r.caseIndex[i]
			}
			if rec := byName[c.Name]; rec == nil {
				rc.Status, rc.Result = report.Fail, report.NoResult
			} else {
				cmp := record.CompareBoot(rec, c, r.profile, a)
				rc.Status, rc.Result = status(cmp.Verdict), string(cmp.Verdict)
				rc.Steps, rc.Runs, rc.Calls, rc.Images, rc.Problems = cmp.Steps, cmp.Runs, cmp.Invocations, cmp.Images, cmp.Problems
			}
			run.Cases = append(run.Cases, rc)
		}
		results.Runs = append(results.Runs, run)
	}
	report.WriteTable(stdout, results)
	return results
}

// bootOpts are how every boot of a suite is made.
type bootOpts struct {
	kaslr  bool
	accel  string   // qemu.Config.Accel
	cpu    string   // QEMU -cpu model, "" for the default
	append []string // extra kernel command-line words
	// workdir keeps each boot's console.log and results.bin under
	// workdir/<build>/<arch>[.<part>] ("" for none).
	workdir string
}

// bootAll boots every run, the arches of one kernel side by side (one vCPU
// each), reporting progress on stderr and handing each recording to
// onRecording as soon as it is complete.
func bootAll(ctx context.Context, runs []*suiteRun, f *kernels.Fetcher, o bootOpts, stderr io.Writer, onRecording func(*suiteRun, *recording.Recording)) {
	var mu sync.Mutex
	for i := 0; i < len(runs); {
		j := i
		var wg sync.WaitGroup
		for ; j < len(runs) && runs[j].kernel == runs[i].kernel; j++ {
			r := runs[j]
			if len(r.cases) == 0 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := 0
				r.started = time.Now()
				var wd string
				if o.workdir != "" {
					wd = filepath.Join(o.workdir, filepath.Base(r.kernel), fmt.Sprintf("%s.%d", r.arch, r.index))
					if err := os.MkdirAll(wd, 0o755); err != nil {
						r.err = err
						return
					}
				}
				r.res, r.err = record.Run(ctx, record.Boot{
					Machine: record.Machine{Kernel: r.kernel, Profile: r.profile.Name, Arch: r.arch,
						Fetcher: f, KASLR: o.kaslr, CPU: o.cpu, Accel: o.accel, Append: o.append, WorkDir: wd},
					Cases: r.cases,
					OnRecording: func(rec *recording.Recording) {
						mu.Lock()
						defer mu.Unlock()
						n++
						r.arrivals = append(r.arrivals, arrival{rec.Case, time.Now()})
						if rec.Kernel.Stated == nil {
							rec.Kernel.Stated = r.stated
						}
						status := "recorded"
						if !rec.Complete {
							status = "incomplete"
						}
						fmt.Fprintf(stderr, "[%s %s] %d/%d %s: %s\n", r.profile.Name, r.arch, n, len(r.cases), rec.Case, status)
						onRecording(r, rec)
					},
				})
				if r.err != nil {
					// Said when it happens, not after the other arch ends.
					mu.Lock()
					fmt.Fprintf(stderr, "[%s %s] boot FAILED (%d/%d cases recorded): %s\n", r.profile.Name, r.arch, n, len(r.cases),
						strings.ReplaceAll(r.err.Error(), "\n", "\n    "))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		i = j
	}
}

// modelProfile is the link model's profile for a kernel on each arch: the
// named profile of a build tramp has recordings for, or (for any other
// served build and for an image path) the profile the kernel's own facts
// make (package facts), with what it had to assume said once. --profile
// names a table profile to use instead. stated are the facts the build
// states, for its recordings to carry (nil for an arch whose image could
// not be read: a table profile's kernel need not be at hand).
func modelProfile(ctx context.Context, f *kernels.Fetcher, k, override string, arches []kernels.Arch, stderr io.Writer) (profs map[kernels.Arch]*trampoline.Profile, stated map[kernels.Arch]*recording.StatedFacts, err error) {
	profs = map[kernels.Arch]*trampoline.Profile{}
	stated = map[kernels.Arch]*recording.StatedFacts{}
	name := k
	if override != "" {
		name = override
	}
	if p, err := trampoline.LookupProfile(name); err == nil {
		for _, a := range arches {
			profs[a] = p
			if kern, err := f.Resolve(ctx, k, a); err == nil {
				if kf, err := facts.Read(kern.Path, kern.Config, a); err == nil {
					stated[a] = kf.Stated()
				}
			}
		}
		return profs, stated, nil
	} else if override != "" {
		return nil, nil, err
	}
	arches, err = archesOf(k, arches)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range arches {
		kern, err := f.Resolve(ctx, k, a)
		if err != nil {
			return nil, nil, err
		}
		kf, err := facts.Read(kern.Path, kern.Config, a)
		if err != nil {
			return nil, nil, err
		}
		p, err := kf.Profile(k)
		if err != nil {
			return nil, nil, err
		}
		var assumed []string
		for _, fa := range kf.Facts {
			if fa.Source == facts.Assumed {
				assumed = append(assumed, fa.Name+" "+fa.Value)
			}
		}
		fmt.Fprintf(stderr, "[%s %s] modelled from the kernel's facts: %d slots (BTF), fsession %v; assumed: %s (tramp vm facts --kernel %s shows each)\n",
			k, a, p.SlotLimit(mustArch(a)), p.Fsession, orNone(assumed), k)
		profs[a] = p
		stated[a] = kf.Stated()
	}
	return profs, stated, nil
}

func mustArch(a kernels.Arch) *trampoline.Arch {
	ta, err := trampoline.LookupArch(string(a))
	if err != nil {
		panic(err)
	}
	return ta
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

// groupsOf is the groups the pieces of one shard touch, each once, with
// the cases the shard runs of it.
func groupsOf(plan []report.Group, pieces []report.Piece) []report.Group {
	var out []report.Group
	for _, p := range pieces {
		g := plan[p.Group]
		g.Cases = p.To - p.From
		out = append(out, g)
	}
	return out
}

// printPlan is --plan: a line per build × arch, "BUILD ARCH PACKAGE
// VERSION SHA256 cases N"; an image path has "-" for the package fields.
func printPlan(ctx context.Context, f *kernels.Fetcher, w io.Writer, arches []kernels.Arch, groups []report.Group) error {
	var cat []kernels.Build
	for _, g := range groups {
		pkg, ver, sum := "-", "-", "-"
		if kernels.IsBuildName(g.Build) {
			if cat == nil {
				var err error
				if cat, err = f.Catalog(ctx, arches); err != nil {
					return err
				}
			}
			i := slices.IndexFunc(cat, func(b kernels.Build) bool { return b.Name == g.Build && string(b.Arch) == g.Arch })
			if i < 0 {
				return fmt.Errorf("%s %s is not a served build", g.Build, g.Arch)
			}
			h, err := f.PackageSHA256(ctx, cat[i])
			if err != nil {
				return err
			}
			pkg, ver, sum = cat[i].Package, cat[i].PkgVersion, h
		}
		fmt.Fprintf(w, "%s %s %s %s %s cases %d\n", g.Build, g.Arch, pkg, ver, sum, g.Cases)
	}
	return nil
}
