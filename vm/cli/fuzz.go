package cli

import (
	"context"
	"fmt"
	"github.com/bpftramp/tramp/vm/recording"
	"io"
	"math/rand"
	"os"
	"strings"

	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
)

// FuzzCase writes a random case: programs of every kind on one target and
// ops attach/detach/run chosen by seed, attaching past the slot limit.
// Detaches are only of programs the model says are linked, so the case
// replays on any profile; the kernel's answers are checked against the
// model step by step, not against expect lines.
func FuzzCase(seed int64, ops int, profile *trampoline.Profile, a *trampoline.Arch) string {
	rng := rand.New(rand.NewSource(seed))
	var sb strings.Builder
	fmt.Fprintf(&sb, "# tramp vm fuzz --seed %d --ops %d\nkernel %s\narch %s\ntarget bpf_fentry_test1\n", seed, ops, profile.Name, a.Name)
	kinds := []trampoline.Kind{trampoline.KindFentry, trampoline.KindFexit, trampoline.KindFmodRet}
	if profile.Fsession && a.FsessionJIT {
		kinds = append(kinds, trampoline.KindFsession, trampoline.KindFsession)
	}
	type prog struct {
		name string
		p    *trampoline.Prog
	}
	var progs []prog
	n := 30 + rng.Intn(16)
	for i := 0; i < n; i++ {
		p := &trampoline.Prog{Name: fmt.Sprintf("p%02d", i), Kind: kinds[rng.Intn(len(kinds))]}
		if p.Kind == trampoline.KindFsession && rng.Intn(2) == 0 {
			p.Cookie = true
		}
		if rng.Intn(6) == 0 {
			p.IP = true
		}
		if rng.Intn(5) == 0 {
			p.LinkCookie = rng.Uint64() >> uint(rng.Intn(64))
		}
		progs = append(progs, prog{p.Name, p})
		sb.WriteString(cases.FormatProg(p) + "\n")
	}
	target, _ := trampoline.KnownTarget("bpf_fentry_test1")
	tr := trampoline.New(profile, a, target)
	tr.SizeFunc = generators.SizeFunc(a.Name)
	links := map[*trampoline.Prog]*trampoline.Link{}
	limit := profile.SlotLimit(a)
	for i := 0; i < ops; i++ {
		// Fill up towards (and past) the slot limit, then churn around it.
		attachW, detachW := 80, 12
		if tr.SlotsUsed() >= limit-2 {
			attachW, detachW = 50, 42
		}
		var linked, unlinked []*trampoline.Prog
		for _, pr := range progs {
			if links[pr.p] != nil {
				linked = append(linked, pr.p)
			} else {
				unlinked = append(unlinked, pr.p)
			}
		}
		switch r := rng.Intn(100); {
		case r < attachW || len(linked) == 0:
			// Mostly programs without a link; sometimes a linked one (EBUSY).
			p := progs[rng.Intn(len(progs))].p
			if len(unlinked) > 0 && rng.Intn(8) != 0 {
				p = unlinked[rng.Intn(len(unlinked))]
			}
			fmt.Fprintf(&sb, "attach %s\n", p.Name)
			if l, err := tr.Attach(p); err == nil {
				links[p] = l
			}
		case r < attachW+detachW:
			p := linked[rng.Intn(len(linked))]
			fmt.Fprintf(&sb, "detach %s\n", p.Name)
			tr.Detach(links[p])
			delete(links, p)
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
	if code, ok := parse(fs, args, stdout); !ok {
		return code
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
	var runs []*suiteRun
	for _, ka := range arches {
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
		runs = append(runs, &suiteRun{profile: prof, kernel: prof.Name, arch: ka, cases: []*cases.Case{c}})
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	bootAll(ctx, runs, f, bootOpts{accel: *accel}, stderr, func(*suiteRun, *recording.Recording) {})
	return report(runs, stdout, stderr, false, "", "")
}
