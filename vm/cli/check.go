package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
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
)

// DefaultTestdata is where "tramp vm record" files recordings.
const DefaultTestdata = "cases/testdata"

// suiteRun is one (kernel, arch) boot of a suite and what came of it.
type suiteRun struct {
	profile *trampoline.Profile
	kernel  string // profile name or image path
	arch    kernels.Arch
	// stated are the build's facts its recordings carry.
	stated *recording.StatedFacts
	cases  []*cases.Case
	res    *record.Result
	err    error
	cmps   []record.Comparison
	// results are the per-case outcomes, in case order (--json, the
	// matrix).
	results []caseResult
}

// caseResult is one case on one build and arch, as --json writes it.
type caseResult struct {
	Kernel   string   `json:"kernel"`
	Arch     string   `json:"arch"`
	Case     string   `json:"case"`
	Result   string   `json:"result"`
	Steps    int      `json:"steps"`
	Runs     int      `json:"runs"`
	Calls    int      `json:"calls"`
	Images   int      `json:"images"`
	Problems []string `json:"problems,omitempty"`
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
	jsonOut := fs.String("json", "", "also write every case result as JSON to this file (- for stdout)")
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
	opts := bootOpts{kaslr: *kaslr, accel: *accel, cpu: *cpu, append: words}
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
	names, err := expandKernels(ctx, f, *kernelFlag, arches)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm %s: %v\n", name, err)
		return ExitUsage
	}
	var runs []*suiteRun
	for _, k := range names {
		prof, stated, err := modelProfile(ctx, f, k, *profileFlag, arches, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm %s: %v\n", name, err)
			return ExitUsage
		}
		for _, a := range arches {
			r := &suiteRun{profile: prof[a], stated: stated[a], kernel: k, arch: a}
			for _, c := range corpus {
				if applies(c, prof[a], string(a)) {
					r.cases = append(r.cases, c)
				}
			}
			runs = append(runs, r)
		}
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
	code = report(runs, stdout, stderr, write, *testdata, *out)
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, stdout, runs); err != nil {
			fmt.Fprintf(stderr, "tramp vm %s: --json: %v\n", name, err)
			return ExitCheck
		}
	}
	return code
}

func applies(c *cases.Case, p *trampoline.Profile, arch string) bool {
	if !c.AppliesTo(p) {
		return false
	}
	for _, a := range c.ArchList() {
		if a.Name == arch {
			return true
		}
	}
	return false
}

func report(runs []*suiteRun, stdout, stderr io.Writer, write bool, testdata, out string) int {
	failed := false
	counts := map[record.Verdict]int{}
	fmt.Fprintf(stdout, "%-15s %-7s %-36s %5s %4s %5s %6s  %s\n", "kernel", "arch", "case", "steps", "runs", "calls", "images", "result")
	for _, r := range runs {
		if len(r.cases) == 0 {
			continue
		}
		byName := map[string]*recording.Recording{}
		if r.res != nil {
			for _, rec := range r.res.Recordings {
				byName[rec.Case] = rec
				if write {
					recording.Write(testdata, rec) // again, now with the accelerator known
				} else if out != "" {
					recording.Write(out, rec)
				}
			}
		}
		a, _ := trampoline.LookupArch(string(r.arch))
		for _, c := range r.cases {
			rec := byName[c.Name]
			if rec == nil {
				failed = true
				counts["no result"]++
				fmt.Fprintf(stdout, "%-15s %-7s %-36s %5s %4s %5s %6s  NO RESULT\n", r.profile.Name, r.arch, c.Name, "-", "-", "-", "-")
				r.results = append(r.results, caseResult{Kernel: r.profile.Name, Arch: string(r.arch), Case: c.Name, Result: "no result"})
				continue
			}
			cmp := record.CompareBoot(rec, c, r.profile, a)
			r.cmps = append(r.cmps, cmp)
			counts[cmp.Verdict]++
			r.results = append(r.results, caseResult{Kernel: r.profile.Name, Arch: string(r.arch), Case: c.Name, Result: string(cmp.Verdict),
				Steps: cmp.Steps, Runs: cmp.Runs, Calls: cmp.Invocations, Images: cmp.Images, Problems: cmp.Problems})
			fmt.Fprintf(stdout, "%-15s %-7s %-36s %5d %4d %5d %6d  %s\n", r.profile.Name, r.arch, c.Name, cmp.Steps, cmp.Runs, cmp.Invocations, cmp.Images, cmp.Verdict)
			for _, p := range cmp.Problems {
				fmt.Fprintf(stdout, "    %s\n", p)
			}
			if cmp.Verdict == record.Disagree || cmp.Verdict == record.Incomplete {
				failed = true
			}
		}
	}
	fmt.Fprintln(stdout)
	for _, r := range runs {
		if len(r.cases) == 0 {
			continue
		}
		line := fmt.Sprintf("%s %s: %d cases", r.profile.Name, r.arch, len(r.cases))
		if r.res != nil {
			line += fmt.Sprintf(", boot→hello %s, whole run %s", r.res.HelloAfter.Round(10*time.Millisecond), r.res.Elapsed.Round(10*time.Millisecond))
		}
		if r.err != nil {
			failed = true
			line += fmt.Sprintf("\n  VM error: %v", r.err)
			if r.res != nil && len(r.res.Console) > 0 {
				tail := r.res.Console[max(0, len(r.res.Console)-15):]
				line += "\n  last console lines:\n    " + strings.Join(tail, "\n    ")
			}
		}
		fmt.Fprintln(stdout, line)
	}
	passed, skipped := counts[record.Agree], counts[record.NotInBTF]
	bad := 0
	for k, v := range counts {
		if k != record.Agree && k != record.NotInBTF {
			bad += v
		}
	}
	fmt.Fprintf(stdout, "(skipped: cases whose target is not in the booted kernel's BTF; the model alone covers them)\n")
	if builds := map[string]bool{}; len(runs) > 1 {
		for _, r := range runs {
			builds[r.profile.Name] = true
		}
		if len(builds) > 1 {
			writeMatrix(stdout, runs)
		}
	}
	fmt.Fprintf(stdout, "vm: %d passed, %d failed, %d skipped\n", passed, bad, skipped)
	if failed {
		return ExitCheck
	}
	return ExitOK
}

// bootOpts are how every boot of a suite is made.
type bootOpts struct {
	kaslr  bool
	accel  string   // qemu.Config.Accel
	cpu    string   // QEMU -cpu model, "" for the default
	append []string // extra kernel command-line words
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
				r.res, r.err = record.Run(ctx, record.Boot{
					Machine: record.Machine{Kernel: r.kernel, Profile: r.profile.Name, Arch: r.arch,
						Fetcher: f, KASLR: o.kaslr, CPU: o.cpu, Accel: o.accel, Append: o.append},
					Cases: r.cases,
					OnRecording: func(rec *recording.Recording) {
						mu.Lock()
						defer mu.Unlock()
						n++
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

// writeMatrix prints the build x arch table: passed/failed/skipped and
// the whole run's wall time per cell.
func writeMatrix(w io.Writer, runs []*suiteRun) {
	var builds []string
	var arches []kernels.Arch
	cell := map[string]string{}
	for _, r := range runs {
		if !slices.Contains(builds, r.profile.Name) {
			builds = append(builds, r.profile.Name)
		}
		if !slices.Contains(arches, r.arch) {
			arches = append(arches, r.arch)
		}
		var p, f, sk int
		for _, c := range r.results {
			switch record.Verdict(c.Result) {
			case record.Agree:
				p++
			case record.NotInBTF:
				sk++
			default:
				f++
			}
		}
		v := fmt.Sprintf("%d/%d/%d", p, f, sk)
		if r.res != nil {
			v += " " + r.res.Elapsed.Round(time.Second).String()
		}
		if r.err != nil {
			v += " VM error"
		}
		cell[r.profile.Name+"/"+string(r.arch)] = v
	}
	fmt.Fprintf(w, "\n%-22s", "build (passed/failed/skipped)")
	for _, a := range arches {
		fmt.Fprintf(w, "  %-20s", a)
	}
	fmt.Fprintln(w)
	for _, b := range builds {
		fmt.Fprintf(w, "%-29s", b)
		for _, a := range arches {
			v := cell[b+"/"+string(a)]
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(w, "  %-20s", v)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// writeJSON writes every case result of the runs to path ("-": stdout).
func writeJSON(path string, stdout io.Writer, runs []*suiteRun) error {
	type runJSON struct {
		Kernel    string       `json:"kernel"`
		Arch      string       `json:"arch"`
		HelloMS   int64        `json:"boot_to_hello_ms,omitempty"`
		ElapsedMS int64        `json:"whole_run_ms,omitempty"`
		Error     string       `json:"vm_error,omitempty"`
		Cases     []caseResult `json:"cases"`
	}
	var out []runJSON
	for _, r := range runs {
		if len(r.cases) == 0 {
			continue
		}
		j := runJSON{Kernel: r.profile.Name, Arch: string(r.arch), Cases: r.results}
		if r.res != nil {
			j.HelloMS, j.ElapsedMS = r.res.HelloAfter.Milliseconds(), r.res.Elapsed.Milliseconds()
		}
		if r.err != nil {
			j.Error = r.err.Error()
		}
		out = append(out, j)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
