package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/harness"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitCheck = 1 // a check (fetch, boot) failed
	ExitUsage = 2 // bad usage or bad input
)

const usage = `usage: tramp vm <command> [flags]

commands:
  kernels list every cloud kernel build the Debian archive serves, per arch, and which are cached
  fetch   download kernels into the cache and print where they are
  build   compile a rebuild (a served build's Debian source and config, a few options changed) into the cache
  hello   boot kernels under QEMU and print what the guest reports
  accel   say which accelerator boots would use here, and why (probes KVM)
  facts   every fact tramp reads from a kernel build (BTF, config, image, delta table) and where
  check   run the case corpus in real kernels and compare every outcome and observation with the model
  record  like check, and write the recordings to cases/testdata/<kernel>/<arch>/<case>.json
  pack    pack the recordings of vm check --out trees, one gzipped file per build and arch, for offline CI
  bisect  pin a delta no kernel states to the served builds: per stable branch, the last build without it and the first with it
  fuzz    random attach/detach sequences on one target, checked step by step against the model
  shapes  trampolines of real kernel functions chosen by BTF prototype shape, checked against model and generators

Run "tramp vm <command> --help" for the flags of a command.
`

// Main runs "tramp vm" with args (the words after "vm") and returns the exit
// code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "vm" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch args[0] {
	case "fetch":
		return fetch(ctx, args[1:], stdout, stderr)
	case "build":
		return buildCmd(ctx, args[1:], stdout, stderr)
	case "hello":
		return hello(ctx, args[1:], stdout, stderr)
	case "accel":
		return accel(ctx, args[1:], stdout, stderr)
	case "facts":
		return factsCmd(ctx, args[1:], stdout, stderr)
	case "kernels":
		return kernelsCmd(ctx, args[1:], stdout, stderr)
	case "pack":
		return packCmd(ctx, args[1:], stdout, stderr)
	case "bisect":
		return bisectCmd(ctx, args[1:], stdout, stderr)
	case "check":
		return suite(ctx, "check", args[1:], stdout, stderr, false)
	case "record":
		return suite(ctx, "record", args[1:], stdout, stderr, true)
	case "shapes":
		return shapes(ctx, args[1:], stdout, stderr)
	case "fuzz":
		return fuzz(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "tramp vm: unknown command %q\n\n%s", args[0], usage)
	return ExitUsage
}

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tramp vm "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: tramp vm %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse handles --help (exit 0, usage on stdout) and errors (exit 2).
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) (int, bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return ExitOK, false
	}
	if err != nil {
		return ExitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return ExitUsage, false
	}
	return 0, true
}

// parseArgs is parse for a command that takes arguments, with flags
// before, between or after them.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer) (pos []string, code int, ok bool) {
	rest := args
	for {
		err := fs.Parse(rest)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, ExitOK, false
		}
		if err != nil {
			return nil, ExitUsage, false
		}
		if fs.NArg() == 0 {
			return pos, 0, true
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}

func parseArches(s string) ([]kernels.Arch, error) {
	var out []kernels.Arch
	for _, w := range strings.Split(s, ",") {
		if strings.TrimSpace(w) == "" {
			continue
		}
		a, err := kernels.ParseArch(w)
		if err != nil {
			return nil, err
		}
		if !contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no architecture given")
	}
	return out, nil
}

func contains[T comparable](list []T, x T) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}

func fetch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("fetch", "fetch [--kernel debian-7.2.13,debian-7.2.*,...|all] [--arch x86_64,arm64]", stderr)
	kflag := fs.String("kernel", kernels.DefaultProfile, "comma-separated served builds (tramp vm kernels), globs such as debian-7.2.*, or \"all\"")
	aflag := fs.String("arch", "x86_64,arm64", "comma-separated architectures")
	cache := fs.String("cache", "", "cache directory (default $TRAMP_CACHE_DIR or the user cache dir + /tramp)")
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	arches, err := parseArches(*aflag)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm fetch: %v\n", err)
		return ExitUsage
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	for _, w := range splitList(*kflag) {
		if _, err := kernels.LookupProfile(w); err != nil && w != "all" && !kernels.IsBuildName(w) {
			fmt.Fprintf(stderr, "tramp vm fetch: %q is not a served build name (debian-<version>, a glob, or all; tramp vm kernels lists them)\n", w)
			return ExitUsage
		}
	}
	profiles, err := expandKernels(ctx, f, *kflag, arches)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm fetch: %v\n", err)
		return ExitUsage
	}
	code := ExitOK
	for _, p := range profiles {
		for _, a := range arches {
			k, err := f.Get(ctx, p, a)
			if err != nil {
				fmt.Fprintf(stderr, "tramp vm fetch: %s %s: %v\n", p, a, err)
				code = ExitCheck
				continue
			}
			fmt.Fprintf(stdout, "%s %s: %s\n  %s %s, %d bytes, sha256 %s\n", p, a, k.Path, k.Package, k.Version, k.Size, k.SHA256)
			if k.Config != "" {
				fmt.Fprintf(stdout, "  config %s\n", k.Config)
			}
		}
	}
	return code
}

// accelFlag defines --accel, shared by every command that boots.
func accelFlag(fs *flag.FlagSet) *string {
	return fs.String("accel", "", "accelerator: auto, kvm or tcg (default: $"+qemu.EnvAccel+", else auto: KVM for a guest of the host's arch once a probe boot shows it works, else TCG)")
}

// accel is "tramp vm accel": the accelerator decision for each arch, as
// every boot would make it (a KVM probe boot of the hello job, or its
// result kept from an earlier probe).
func accel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("accel", "accel [--kernel K] [--arch x86_64,arm64] [--accel auto|kvm|tcg] [--cpu MODEL] [--short]", stderr)
	kflag := fs.String("kernel", kernels.DefaultProfile, "kernel profile or image path the probe boots")
	aflag := fs.String("arch", "x86_64,arm64", "comma-separated architectures")
	acc := accelFlag(fs)
	cpu := fs.String("cpu", "", "QEMU -cpu model (default: max, or host with kvm)")
	cache := fs.String("cache", "", "cache directory (default $TRAMP_CACHE_DIR or the user cache dir + /tramp)")
	short := fs.Bool("short", false, "print only kvm or tcg, one line per arch")
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	arches, err := parseArches(*aflag)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm accel: %v\n", err)
		return ExitUsage
	}
	if _, err := qemu.ParseAccel(*acc); err != nil {
		fmt.Fprintf(stderr, "tramp vm accel: --accel: %v\n", err)
		return ExitUsage
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	code := ExitOK
	for _, a := range arches {
		dir, err := os.MkdirTemp("", "tramp-accel-")
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm accel: %v\n", err)
			return ExitCheck
		}
		defer os.RemoveAll(dir)
		cfg, _, err := harness.Prepare(ctx, harness.Boot{Kernel: *kflag, Arch: a, Fetcher: f, CacheDir: *cache,
			QEMU: qemu.Config{Accel: *acc, CPU: *cpu, Log: io.Discard}}, dir)
		var d qemu.Decision
		if err == nil {
			d, err = qemu.Decide(ctx, cfg)
		}
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm accel: %s: %v\n", a, err)
			code = ExitCheck
			continue
		}
		if *short {
			fmt.Fprintln(stdout, d.Accel)
			continue
		}
		fmt.Fprintf(stdout, "%s: %s -cpu %s (%s)\n", a, d.Accel, d.CPU, d.Reason)
	}
	return code
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func hello(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("hello", "hello [--kernel K] [--arch x86_64,arm64] [flags]", stderr)
	kflag := fs.String("kernel", kernels.DefaultProfile, "a served build (tramp vm kernels), a rebuild (tramp vm build) or the path of a kernel image")
	aflag := fs.String("arch", "x86_64,arm64", "comma-separated architectures; they boot in parallel")
	timeout := fs.Duration("timeout", 2*time.Minute, "per-boot timeout")
	kaslr := fs.Bool("kaslr", false, "leave KASLR on (default: nokaslr)")
	accel := accelFlag(fs)
	cpu := fs.String("cpu", "", "QEMU -cpu model (default: max, or host with kvm)")
	workdir := fs.String("workdir", "", "keep console.log, results.bin and the initramfs under this directory (one subdirectory per arch)")
	cache := fs.String("cache", "", "cache directory (default $TRAMP_CACHE_DIR or the user cache dir + /tramp)")
	var appendArgs listFlag
	fs.Var(&appendArgs, "append", "extra kernel command-line words, e.g. mitigations=off (repeatable)")
	if code, ok := parse(fs, args, stdout); !ok {
		return code
	}
	arches, err := parseArches(*aflag)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm hello: %v\n", err)
		return ExitUsage
	}
	if _, err := qemu.ParseAccel(*accel); err != nil {
		fmt.Fprintf(stderr, "tramp vm hello: --accel: %v\n", err)
		return ExitUsage
	}
	if _, err := kernels.LookupProfile(*kflag); err != nil && !kernels.IsBuildName(*kflag) {
		if _, serr := os.Stat(*kflag); serr != nil {
			fmt.Fprintf(stderr, "tramp vm hello: %v\n", err)
			return ExitUsage
		}
		// A kernel image of the user's: it must suit every requested arch.
		for _, a := range arches {
			if _, err := kernels.FromFile(*kflag, a); err != nil {
				fmt.Fprintf(stderr, "tramp vm hello: %v\n", err)
				return ExitUsage
			}
		}
	}
	var words []string
	for _, a := range appendArgs {
		words = append(words, strings.Fields(a)...)
	}
	f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
	defer f.Close()
	// Fetch and build first, one arch after the other, so the boots start
	// together and their timings are comparable.
	type run struct {
		arch kernels.Arch
		res  *qemu.Result
		err  error
		kern *kernels.Kernel
	}
	runs := make([]run, len(arches))
	cfgs := make([]qemu.Config, len(arches))
	for i, a := range arches {
		runs[i].arch = a
		dir := ""
		if *workdir != "" {
			dir = *workdir + "/" + string(a)
		} else {
			d, err := os.MkdirTemp("", "tramp-hello-")
			if err != nil {
				fmt.Fprintf(stderr, "tramp vm hello: %v\n", err)
				return ExitCheck
			}
			defer os.RemoveAll(d)
			dir = d
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintf(stderr, "tramp vm hello: %v\n", err)
			return ExitCheck
		}
		b := harness.Boot{Kernel: *kflag, Arch: a, Job: guestapi.Job{Kind: guestapi.JobHello}, Fetcher: f, CacheDir: *cache,
			QEMU: qemu.Config{Timeout: *timeout, KASLR: *kaslr, Accel: *accel, CPU: *cpu, Append: words, WorkDir: dir}}
		cfg, k, err := harness.Prepare(ctx, b, dir)
		if err != nil {
			runs[i].err = err
			continue
		}
		if *workdir == "" {
			cfg.WorkDir = "" // let qemu use (and remove) its own temp dir
		}
		cfgs[i], runs[i].kern = cfg, k
	}
	var wg sync.WaitGroup
	for i := range runs {
		if runs[i].err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i].res, runs[i].err = qemu.Run(ctx, cfgs[i])
		}()
	}
	wg.Wait()
	code := ExitOK
	for _, r := range runs {
		if r.err != nil {
			code = ExitCheck
			fmt.Fprintf(stdout, "%s %s: FAILED\n", *kflag, r.arch)
			fmt.Fprintf(stdout, "  %s\n", strings.ReplaceAll(r.err.Error(), "\n", "\n  "))
			if r.res != nil && r.res.HelloAfter > 0 {
				fmt.Fprintf(stdout, "  times: QEMU start→hello %s, start→exit %s\n", secs(r.res.HelloAfter), secs(r.res.Elapsed))
			}
			continue
		}
		printHello(stdout, *kflag, r.kern, r.res)
	}
	return code
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printHello(w io.Writer, spec string, k *kernels.Kernel, res *qemu.Result) {
	h := res.Hello
	fmt.Fprintf(w, "%s %s: ok\n", spec, k.Arch)
	if k.Package != "" {
		fmt.Fprintf(w, "  package    %s %s\n", k.Package, k.Version)
	}
	fmt.Fprintf(w, "  kernel     %s %s\n", h.Release, h.Version)
	fmt.Fprintf(w, "  machine    %s, cpu %q\n", h.Machine, h.CPUModel)
	fmt.Fprintf(w, "  cmdline    %s\n", h.Cmdline)
	fmt.Fprintf(w, "  lockdown   %s, /sys/kernel/btf/vmlinux %s, /proc/kcore %s\n", h.Lockdown, yesNo(h.BTFVmlinux), yesNo(h.Kcore))
	var names []string
	for n := range h.Vulnerabilities {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "  vulnerabilities:\n")
	for _, n := range names {
		fmt.Fprintf(w, "    %-26s %s\n", n, h.Vulnerabilities[n])
	}
	for _, e := range h.SetupErrors {
		fmt.Fprintf(w, "  setup error: %s\n", e)
	}
	fmt.Fprintf(w, "  times      QEMU start→hello %s, start→exit %s, kernel uptime at hello %.2fs (%s)\n",
		secs(res.HelloAfter), secs(res.Elapsed), float64(h.UptimeMS)/1000, res.Accel)
}
