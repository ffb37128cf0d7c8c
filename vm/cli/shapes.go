package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
	"github.com/bpftramp/tramp/vm/record"
	"github.com/bpftramp/tramp/vm/recording"
	"github.com/bpftramp/tramp/vm/report"
)

// shapeRun is one (kernel, arch) boot of "tramp vm shapes".
type shapeRun struct {
	profile *trampoline.Profile
	// stated are the build's facts its recordings carry.
	stated *recording.StatedFacts
	arch   kernels.Arch
	// index is the run's build × arch in the whole (unsharded) run.
	index int
	res   *record.ShapeResult
	err   error
	// started is when the boot began, arrivals when each shape's
	// recording came (the shapes' times).
	started  time.Time
	arrivals []arrival
}

// shapes runs "tramp vm shapes": on every (kernel, arch) it boots once,
// records trampolines of real kernel functions picked by BTF prototype
// shape, compares each with the model, prints a table and, with
// --record, files the recordings as <testdata>/<kernel>/<arch>/shape-*.json.
func shapes(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("shapes", "shapes [--kernel PROFILES] [--arch x86_64,arm64] [--per-bucket K] [--seed N] [--multi N] [--record]", stderr)
	kernelFlag := fs.String("kernel", kernels.DefaultProfile, "comma-separated served builds (tramp vm kernels) or rebuilds (tramp vm build)")
	archFlag := fs.String("arch", "x86_64,arm64", "comma-separated architectures")
	perBucket := fs.Int("per-bucket", 1, "functions per shape bucket")
	seed := fs.Uint64("seed", 1, "seed of the per-bucket choice")
	mixes := fs.String("mixes", strings.Join(guestapi.DefaultShapeMixes, ","), "comma-separated program mixes ("+strings.Join(mixNames(), ", ")+")")
	funcs := fs.String("funcs", "", "comma-separated functions to use instead of the seeded choice")
	limit := fs.Int("limit", 0, "at most this many functions (0: all chosen)")
	multi := fs.Int("multi", 64, "then one fsession.multi link (session cookie, func ip) on this many functions at once, the chosen ones first (0: none)")
	testdata := fs.String("testdata", DefaultTestdata, "where --record files the recordings")
	write := fs.Bool("record", false, "write the recordings (and remove shape recordings of earlier runs)")
	verbose := fs.Bool("v", false, "print every shape, not only the ones that disagree")
	cache := fs.String("cache", "", "cache directory (default: $TRAMP_CACHE_DIR or the user cache dir)")
	kaslr := fs.Bool("kaslr", false, "boot with KASLR (default: nokaslr)")
	accel := accelFlag(fs)
	cpu := fs.String("cpu", "", "QEMU -cpu model for a single --arch, e.g. EPYC-Rome (default: max); recordings go to shape-*.cpu-<model>.json")
	var appendArgs listFlag
	fs.Var(&appendArgs, "append", "extra kernel command-line words, e.g. retbleed=stuff (repeatable; named in the recordings' file names)")
	ci := addCIFlags(fs)
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	shard, err := ci.parseShard()
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm shapes: --shard: %v\n", err)
		return ExitUsage
	}
	arches, err := parseArches(*archFlag)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm shapes: --arch: %v\n", err)
		return ExitUsage
	}
	if _, err := qemu.ParseAccel(*accel); err != nil {
		fmt.Fprintf(stderr, "tramp vm shapes: --accel: %v\n", err)
		return ExitUsage
	}
	if *cpu != "" && len(arches) != 1 {
		fmt.Fprintf(stderr, "tramp vm shapes: --cpu names one architecture's CPU model: give a single --arch too\n")
		return ExitUsage
	}
	var words []string
	for _, a := range appendArgs {
		words = append(words, strings.Fields(a)...)
	}
	job := guestapi.ShapeJob{PerBucket: *perBucket, Seed: *seed, Mixes: splitList(*mixes), Funcs: splitList(*funcs), Limit: *limit, Multi: *multi}
	for _, m := range job.Mixes {
		if _, ok := guestapi.ShapeMixes[m]; !ok {
			fmt.Fprintf(stderr, "tramp vm shapes: unknown mix %q (known: %s)\n", m, strings.Join(mixNames(), ", "))
			return ExitUsage
		}
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	var runs []*shapeRun
	for _, k := range splitList(*kernelFlag) {
		if _, err := kernels.LookupProfile(k); err != nil && !kernels.IsBuildName(k) {
			fmt.Fprintf(stderr, "tramp vm shapes: %v\n", err)
			return ExitUsage
		}
		// A table profile, or (a served build, a rebuild) the profile the
		// kernel's own facts make, as tramp vm check models it.
		profs, stated, err := modelProfile(ctx, f, k, "", arches, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm shapes: %v\n", err)
			return ExitUsage
		}
		for _, a := range arches {
			runs = append(runs, &shapeRun{profile: profs[a], stated: stated[a], arch: a})
		}
	}
	if len(runs) == 0 {
		fmt.Fprintf(stderr, "tramp vm shapes: no kernel given\n")
		return ExitUsage
	}
	// The guest chooses a boot's shapes: a shard runs whole boots.
	var plan []report.Group
	for _, r := range runs {
		plan = append(plan, report.Group{Build: r.profile.Name, Arch: string(r.arch), Cases: 1})
	}
	var mine []*shapeRun
	for _, p := range shard.Pieces(plan) {
		runs[p.Group].index = p.Group
		mine = append(mine, runs[p.Group])
	}
	runs = mine
	var mu sync.Mutex
	// The arches of one kernel boot side by side (one vCPU each).
	for i := 0; i < len(runs); {
		j := i
		var wg sync.WaitGroup
		for ; j < len(runs) && runs[j].profile.Name == runs[i].profile.Name; j++ {
			r := runs[j]
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := 0
				r.started = time.Now()
				r.res, r.err = record.RunShapes(ctx, record.ShapeBoot{
					Machine: record.Machine{Kernel: r.profile.Name, Profile: r.profile.Name, Arch: r.arch,
						Fetcher: f, KASLR: *kaslr, CPU: *cpu, Accel: *accel, Append: words},
					Job: job,
					OnRecording: func(rec *recording.Recording) {
						mu.Lock()
						defer mu.Unlock()
						n++
						r.arrivals = append(r.arrivals, arrival{rec.Case, time.Now()})
						if rec.Kernel.Stated == nil {
							rec.Kernel.Stated = r.stated
						}
						if n%50 == 0 {
							fmt.Fprintf(stderr, "[%s %s] %d shapes recorded\n", r.profile.Name, r.arch, n)
						}
					},
				})
			}()
		}
		wg.Wait()
		i = j
	}
	full := len(job.Funcs) == 0 && job.Limit == 0
	// Pruning keeps to the recordings of the same kind of boot (a boot with
	// another CPU model files its own beside the default ones,
	// <case>.cpu-<model>.json), and a KASLR boot (<case>.kaslr.json)
	// prunes nothing.
	code, res := shapeReport(runs, stdout, stderr, *verbose, *write, full && !*kaslr, *testdata)
	if !shard.Whole() {
		res.Shard = shard.String()
	}
	if err := ci.write(res, stdout); err != nil {
		fmt.Fprintf(stderr, "tramp vm shapes: %v\n", err)
		return ExitCheck
	}
	return code
}

func mixNames() []string {
	var n []string
	for k := range guestapi.ShapeMixes {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func splitList(s string) []string {
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// shapeStats counts what one boot's shapes gave.
type shapeStats struct {
	recorded, withImage, exact, agree int
	classes, protos                   map[string]bool // bucket×mix and prototype×mix with a byte-exact image
	errnos                            map[string]int  // attach outcomes by mix kind
}

// shapeReport prints the shapes that disagree (every one with verbose)
// and each boot's summary, files the recordings when write is set, and
// returns the exit code and the results (each shape a case).
func shapeReport(runs []*shapeRun, stdout, stderr io.Writer, verbose, write, full bool, testdata string) (int, *report.Results) {
	results := newResults("shapes", report.Shard{})
	failed := false
	passed, bad, skipped := 0, 0, 0
	var stats []*shapeStats
	// The table's header comes with its first row: a run whose shapes all
	// agree prints no rows without -v.
	headerDone := false
	header := func() {
		if !headerDone {
			headerDone = true
			fmt.Fprintf(stdout, "%-15s %-7s %-26s %-15s %-34s %5s %6s  %s\n", "kernel", "arch", "bucket", "mix", "function", "steps", "images", "result")
		}
	}
	for _, r := range runs {
		st := &shapeStats{classes: map[string]bool{}, protos: map[string]bool{}, errnos: map[string]int{}}
		stats = append(stats, st)
		var rr *record.Result
		if r.res != nil {
			rr = &r.res.Result
		}
		results.Runs = append(results.Runs, bootRun(r.profile.Name, string(r.arch), r.index, rr, r.err))
		run := &results.Runs[len(results.Runs)-1]
		if r.res == nil {
			if run.Error == "" {
				run.Error = "no result"
			}
			failed = true
			continue
		}
		times := caseTimes(r.arrivals, rr, r.started)
		a, _ := trampoline.LookupArch(string(r.arch))
		recs := append([]*recording.Recording(nil), r.res.Recordings...)
		sort.Slice(recs, func(i, j int) bool { return recs[i].Case < recs[j].Case })
		for _, rec := range recs {
			sh := r.res.Shapes[rec.Case]
			st.recorded++
			for _, s := range rec.Steps {
				if s.Op == "attach" {
					st.errnos[s.Prog+":"+s.Errno+atStage(s.Stage)]++
				}
			}
			c, err := record.ShapeCase(rec)
			if err != nil {
				bad++
				failed = true
				header()
				fmt.Fprintf(stdout, "%-15s %-7s %-26s %-15s %-34s %5s %6s  BAD SOURCE: %v\n", r.profile.Name, r.arch, sh.Bucket, sh.Mix, sh.Func, "-", "-", err)
				run.Cases = append(run.Cases, report.Case{Case: rec.Case, Index: len(run.Cases), Status: report.Fail, Result: "bad source",
					TimeMS: times[rec.Case].Milliseconds(), Problems: []string{err.Error()}})
				continue
			}
			cmp := record.CompareBoot(rec, c, r.profile, a)
			run.Cases = append(run.Cases, report.Case{Case: rec.Case, Index: len(run.Cases), Status: status(cmp.Verdict), Result: string(cmp.Verdict),
				Steps: cmp.Steps, Runs: cmp.Runs, Calls: cmp.Invocations, Images: cmp.Images, Problems: cmp.Problems, TimeMS: times[rec.Case].Milliseconds()})
			switch cmp.Verdict {
			case record.Agree:
				passed++
			case record.NotInBTF:
				skipped++
			default:
				bad++
				failed = true
			}
			if len(rec.Captures) > 0 {
				st.withImage++
			}
			if cmp.Verdict == record.Agree && cmp.Images > 0 {
				st.exact += cmp.Images
				st.classes[sh.Bucket+" "+sh.Mix] = true
				st.protos[sh.Proto+" "+sh.Mix] = true
			}
			if cmp.Verdict == record.Agree {
				st.agree++
			}
			if verbose || cmp.Verdict != record.Agree {
				header()
				fmt.Fprintf(stdout, "%-15s %-7s %-26s %-15s %-34s %5d %6d  %s\n", r.profile.Name, r.arch, sh.Bucket, sh.Mix, sh.Func, cmp.Steps, cmp.Images, cmp.Verdict)
				for _, p := range cmp.Problems {
					fmt.Fprintf(stdout, "    %s\n", strings.ReplaceAll(p, "\n", "\n    "))
				}
				for _, e := range rec.Errors {
					fmt.Fprintf(stdout, "    guest: %s\n", e)
				}
			}
		}
		if write {
			if err := writeShapes(testdata, r, full && r.err == nil); err != nil {
				fmt.Fprintf(stderr, "tramp vm shapes: %v\n", err)
				failed = true
			}
		}
		if r.err != nil {
			failed = true
		}
	}
	for i, r := range runs {
		printShapeSummary(stdout, r, stats[i])
	}
	fmt.Fprintf(stdout, "vm: %d passed, %d failed, %d skipped\n", passed, bad, skipped)
	if failed {
		return ExitCheck, results
	}
	return ExitOK, results
}

func printShapeSummary(w io.Writer, r *shapeRun, st *shapeStats) {
	fmt.Fprintf(w, "\n%s %s:", r.profile.Name, r.arch)
	if r.res == nil {
		fmt.Fprintf(w, " no result: %v\n", r.err)
		return
	}
	fmt.Fprintf(w, " boot→hello %s, whole run %s\n", r.res.HelloAfter.Round(10*time.Millisecond), r.res.Elapsed.Round(10*time.Millisecond))
	if s := r.res.Scan; s != nil {
		// The guest says -1 when the kernel has no error-injection list.
		inject := fmt.Sprintf("%d error-injectable", s.ErrorInject)
		if s.ErrorInject < 0 {
			inject = "no error-injection list"
		}
		fmt.Fprintf(w, "  scan: %d BTF functions, %d traceable (%s%s), %d denied, %d ambiguous, %d refused, %d out of range, %d candidates in %d buckets, %s; %d chosen, mixes %s (%d ms)\n",
			s.BTFFuncs, s.Traceable, s.FuncSource, note(s.FuncSourceNote), s.Denied, s.Ambiguous, s.Refused, s.OutOfRange, s.Candidates, len(s.Buckets), inject,
			len(s.Chosen), strings.Join(s.Mixes, ","), s.Millis)
		fmt.Fprintf(w, "  scan time: %d ms reading the traceable functions, %d ms walking BTF\n", s.ReadMillis, s.BTFMillis)
		if s.ErrorInjectNote != "" {
			fmt.Fprintf(w, "  error injection list: %s\n", s.ErrorInjectNote)
		}
	}
	fmt.Fprintf(w, "  %d shapes recorded, %d agree with the model, %d with an image, %d images byte-exact; distinct byte-exact shapes: %d bucket×mix, %d prototype×mix\n",
		st.recorded, st.agree, st.withImage, st.exact, len(st.classes), len(st.protos))
	var keys []string
	for k := range st.errnos {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, st.errnos[k]))
	}
	fmt.Fprintf(w, "  attach outcomes (prog:errno): %s\n", strings.Join(parts, ", "))
	if r.err != nil {
		fmt.Fprintf(w, "  VM error: %v\n", r.err)
		if len(r.res.Console) > 0 {
			tail := r.res.Console[max(0, len(r.res.Console)-15):]
			fmt.Fprintf(w, "  last console lines:\n    %s\n", strings.Join(tail, "\n    "))
		}
	}
}

func note(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func atStage(stage string) string {
	if stage == "" {
		return ""
	}
	return "@" + stage
}

// writeShapes files a boot's shape recordings; when prune is set (a full,
// clean run) shape recordings of earlier runs that this one did not make
// are removed.
func writeShapes(root string, r *shapeRun, prune bool) error {
	written := map[string]bool{}
	for _, rec := range r.res.Recordings {
		p, err := recording.Write(root, rec)
		if err != nil {
			return err
		}
		written[p] = true
	}
	if !prune {
		return nil
	}
	old, err := filepath.Glob(filepath.Join(root, r.profile.Name, string(r.arch), "shape-*.json"))
	if err != nil {
		return err
	}
	if len(r.res.Recordings) == 0 {
		return nil
	}
	this := r.res.Recordings[0]
	for _, p := range old {
		if written[p] {
			continue
		}
		rec, err := recording.Load(p)
		if err != nil {
			return err
		}
		if rec.KASLR == this.KASLR && recording.VariantOf(rec) == recording.VariantOf(this) {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	return nil
}
