package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strings"

	"github.com/bpftramp/tramp/vm/recording"
	"github.com/bpftramp/tramp/vm/report"

	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
)

// FuzzCase writes a random case: programs of every kind and ops
// attach/detach/run chosen by seed, attaching past the slot limit. On a
// kernel with tracing multi links the case has three targets, single
// programs on any of them (most on the first, which fills up) and multi
// programs linked to random subsets with random cookies. Detaches are
// only of programs the model says are linked, so the case replays on
// any profile; the kernel's answers are checked against the model step
// by step, not against expect lines.
func FuzzCase(seed int64, ops int, profile *trampoline.Profile, a *trampoline.Arch) string {
	rng := rand.New(rand.NewSource(seed))
	var sb strings.Builder
	fmt.Fprintf(&sb, "# tramp vm fuzz --seed %d --ops %d\nkernel %s\narch %s\n", seed, ops, profile.Name, a.Name)
	funcs := []string{"bpf_fentry_test1"}
	if profile.TracingMulti {
		funcs = append(funcs, "bpf_fentry_test2", "bpf_fentry_test3")
	}
	var targets []trampoline.Target
	for _, f := range funcs {
		fmt.Fprintf(&sb, "target %s\n", f)
		t, _ := trampoline.KnownTarget(f)
		targets = append(targets, t)
	}
	kinds := []trampoline.Kind{trampoline.KindFentry, trampoline.KindFexit, trampoline.KindFmodRet}
	if profile.Fsession && profile.FsessionJIT(a) {
		kinds = append(kinds, trampoline.KindFsession, trampoline.KindFsession)
	}
	switch {
	case profile.TracingMulti && a.TracingMulti:
		kinds = append(kinds, trampoline.KindFentryMulti, trampoline.KindFexitMulti)
		if profile.Fsession && profile.FsessionJIT(a) {
			kinds = append(kinds, trampoline.KindFsessionMulti)
		}
	case profile.TracingMulti:
		// The arch refuses them (EOPNOTSUPP): a few, to see it does.
		kinds = append(kinds, trampoline.KindFsessionMulti)
	}
	type prog struct {
		p  *trampoline.Prog
		on string // a single program's function
	}
	var progs []prog
	n := 30 + rng.Intn(16)
	if len(funcs) > 1 {
		n += 40 // enough single programs on the first function to fill it
	}
	for i := 0; i < n; i++ {
		p := &trampoline.Prog{Name: fmt.Sprintf("p%02d", i), Kind: kinds[rng.Intn(len(kinds))]}
		if p.Kind.Session() && rng.Intn(2) == 0 {
			p.Cookie = true
		}
		if rng.Intn(6) == 0 {
			p.IP = true
		}
		if !p.Kind.Multi() && rng.Intn(5) == 0 {
			p.LinkCookie = rng.Uint64() >> uint(rng.Intn(64))
		}
		pr := prog{p: p}
		line := cases.FormatProg(p)
		if len(funcs) > 1 && !p.Kind.Multi() {
			pr.on = funcs[0]
			if rng.Intn(3) == 0 {
				pr.on = funcs[1+rng.Intn(len(funcs)-1)]
			}
			line += " on=" + pr.on
		}
		progs = append(progs, pr)
		sb.WriteString(line + "\n")
	}
	k := trampoline.NewKernel(profile, a, targets, generators.SizeFunc(a.Name))
	first := k.Trampoline(funcs[0])
	links := map[*trampoline.Prog]*trampoline.Link{}
	multis := map[*trampoline.Prog]*trampoline.MultiLink{}
	limit := profile.SlotLimit(a)
	for i := 0; i < ops; i++ {
		// Fill up towards (and past) the slot limit, then churn around it.
		attachW, detachW := 80, 12
		if first.SlotsUsed() >= limit-2 {
			attachW, detachW = 50, 42
		}
		var linked, unlinked []prog
		for _, pr := range progs {
			if links[pr.p] != nil || multis[pr.p] != nil {
				linked = append(linked, pr)
			} else {
				unlinked = append(unlinked, pr)
			}
		}
		switch r := rng.Intn(100); {
		case r < attachW || len(linked) == 0:
			// Mostly programs without a link; sometimes a linked one (EBUSY).
			pr := progs[rng.Intn(len(progs))]
			if len(unlinked) > 0 && rng.Intn(8) != 0 {
				pr = unlinked[rng.Intn(len(unlinked))]
			}
			if !pr.p.Kind.Multi() {
				fmt.Fprintf(&sb, "attach %s\n", pr.p.Name)
				if l, err := k.Trampoline(pr.on).Attach(pr.p); err == nil {
					links[pr.p] = l
				}
				break
			}
			// A random non-empty subset of the functions, with cookies.
			var on []string
			var cookies []uint64
			var words []string
			for _, f := range funcs {
				if rng.Intn(3) != 0 {
					on = append(on, f)
				}
			}
			if len(on) == 0 {
				on = []string{funcs[rng.Intn(len(funcs))]}
			}
			line := fmt.Sprintf("attach %s on=%s", pr.p.Name, strings.Join(on, ","))
			if rng.Intn(2) == 0 {
				for range on {
					c := rng.Uint64() >> uint(rng.Intn(64))
					cookies = append(cookies, c)
					words = append(words, fmt.Sprintf("%#x", c))
				}
				line += " link-cookies=" + strings.Join(words, ",")
			}
			sb.WriteString(line + "\n")
			if ml, err := k.AttachMulti(pr.p, on, cookies); err == nil {
				multis[pr.p] = ml
			}
		case r < attachW+detachW:
			pr := linked[rng.Intn(len(linked))]
			fmt.Fprintf(&sb, "detach %s\n", pr.p.Name)
			if ml := multis[pr.p]; ml != nil {
				k.DetachMulti(ml)
				delete(multis, pr.p)
			} else {
				k.Trampoline(pr.on).Detach(links[pr.p])
				delete(links, pr.p)
			}
		default:
			sb.WriteString("run\n")
		}
	}
	sb.WriteString("run\n")
	return sb.String()
}

func fuzz(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("fuzz", "fuzz [--kernel PROFILE] [--arch x86_64,arm64] [--seed N] [--ops K] [--save DIR]", stderr)
	kernelFlag := fs.String("kernel", kernels.DefaultProfile, "kernel profile")
	archFlag := fs.String("arch", "x86_64,arm64", "comma-separated architectures")
	seed := fs.Int64("seed", 1, "random seed (the same seed gives the same case)")
	ops := fs.Int("ops", 80, "number of random steps")
	save := fs.String("save", "", "write each generated case here as fuzz-<arch>-<seed>.tramp")
	cache := fs.String("cache", "", "cache directory")
	accel := accelFlag(fs)
	ci := addCIFlags(fs)
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	shard, err := ci.parseShard()
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm fuzz: --shard: %v\n", err)
		return ExitUsage
	}
	if _, err := qemu.ParseAccel(*accel); err != nil {
		fmt.Fprintf(stderr, "tramp vm fuzz: --accel: %v\n", err)
		return ExitUsage
	}
	if *ops < 1 || *ops > 2000 {
		fmt.Fprintf(stderr, "tramp vm fuzz: --ops %d: want 1..2000\n", *ops)
		return ExitUsage
	}
	prof, err := trampoline.LookupProfile(*kernelFlag)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm fuzz: %v\n", err)
		return ExitUsage
	}
	if _, err := kernels.LookupProfile(*kernelFlag); err != nil {
		fmt.Fprintf(stderr, "tramp vm fuzz: %v\n", err)
		return ExitUsage
	}
	arches, err := parseArches(*archFlag)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm fuzz: --arch: %v\n", err)
		return ExitUsage
	}
	// One case per arch: a shard runs whole arches.
	var plan []report.Group
	for _, ka := range arches {
		plan = append(plan, report.Group{Build: prof.Name, Arch: string(ka), Cases: 1})
	}
	var runs []*suiteRun
	for _, p := range shard.Pieces(plan) {
		ka := arches[p.Group]
		a, err := trampoline.LookupArch(string(ka))
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm fuzz: %v\n", err)
			return ExitUsage
		}
		name := fmt.Sprintf("fuzz-%s-%d", a.Name, *seed)
		src := FuzzCase(*seed, *ops, prof, a)
		if *save != "" {
			if err := os.MkdirAll(*save, 0o755); err == nil {
				err = os.WriteFile(fmt.Sprintf("%s/%s.tramp", *save, name), []byte(src), 0o644)
			}
			if err != nil {
				fmt.Fprintf(stderr, "tramp vm fuzz: --save: %v\n", err)
				return ExitUsage
			}
		}
		c, err := cases.Parse(name+".tramp", []byte(src))
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm fuzz: generated case does not parse (a tramp bug): %v\n%s", err, src)
			return ExitCheck
		}
		runs = append(runs, &suiteRun{profile: prof, kernel: prof.Name, arch: ka, index: p.Group, cases: []*cases.Case{c}})
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	bootAll(ctx, runs, f, bootOpts{accel: *accel}, stderr, func(*suiteRun, *recording.Recording) {})
	res := suiteReport("fuzz", shard, runs, stdout, false, "", "")
	if err := ci.write(res, stdout); err != nil {
		fmt.Fprintf(stderr, "tramp vm fuzz: %v\n", err)
		return ExitCheck
	}
	if !res.OK() {
		return ExitCheck
	}
	return ExitOK
}
