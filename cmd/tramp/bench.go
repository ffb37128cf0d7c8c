package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/bpftramp/tramp/vm/bench"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
)

// runBench is "tramp bench": live overhead in real kernels (both arches
// side by side) and the static costs of the generated trampolines.
// joinInts writes counts as a flag value ("1,16,64").
func joinInts(ns []int) string {
	var w []string
	for _, n := range ns {
		w = append(w, strconv.Itoa(n))
	}
	return strings.Join(w, ",")
}

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", "[--arch x86_64,arm64] [--kernel debian-7.2.13] [--reps N] [--json] [--png FILE] [--static] [--from FILE]", stderr)
	archFlag := fs.String("arch", "x86_64,arm64", "comma-separated architectures to boot")
	kernel := fs.String("kernel", kernels.DefaultProfile, "kernel profile or image path")
	method := fs.String("method", guestapi.BenchSyscall, "how the traced function is called: syscall (getpgid loop, programs on the syscall wrapper) or driver (the kernel bench's: a raw_tp program looping on bpf_get_numa_node_id, programs on that helper; no fmod_ret)")
	reps := fs.Int("reps", guestapi.DefaultBenchReps, "timed repetitions per configuration")
	iters := fs.Int("iters", 0, "calls per repetition (0: calibrate to --rep-ms)")
	repMS := fs.Int("rep-ms", guestapi.DefaultBenchTargetMS, "calibration goal: milliseconds per repetition of the baseline")
	attachCounts := fs.String("attach-counts", joinInts(guestapi.DefaultBenchAttachCounts), "attach cost: function counts N of one fentry.multi link against N single links (\"\" or 0: skip)")
	configs := fs.String("configs", strings.Join(guestapi.BenchConfigNames(), ","), "configurations to measure")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	png := fs.String("png", "", "write a bar chart of the overheads (and static costs) to this PNG file")
	static := fs.Bool("static", false, "only the static costs (emulator); boot nothing")
	from := fs.String("from", "", "render a report saved with --json instead of measuring")
	cache := fs.String("cache", "", "cache directory (default: $TRAMP_CACHE_DIR or the user cache dir)")
	workDir := fs.String("workdir", "", "keep each boot's console.log and results.bin under DIR/<arch>")
	accel := fs.String("accel", "", "accelerator: auto, kvm or tcg (default: $"+qemu.EnvAccel+", else auto: KVM for a guest of the host's arch once a probe boot shows it works, else TCG)")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "tramp bench: %s\n", fmt.Sprintf(format, a...))
		return exitUsage
	}
	if len(pos) > 0 {
		return fail("unexpected argument %q", pos[0])
	}
	if _, err := qemu.ParseAccel(*accel); err != nil {
		return fail("--accel: %v", err)
	}
	var rep *bench.Report
	if *from != "" {
		b, err := os.ReadFile(*from)
		if err != nil {
			return fail("%v", err)
		}
		rep = &bench.Report{}
		if err := json.Unmarshal(b, rep); err != nil {
			return fail("%s: %v", *from, err)
		}
	} else {
		st, err := bench.Static()
		if err != nil {
			fmt.Fprintf(stderr, "tramp bench: %v\n", err)
			return exitCheck
		}
		var runs []*bench.ArchRun
		if !*static {
			var arches []kernels.Arch
			for _, a := range splitList(*archFlag) {
				ar, err := kernels.ParseArch(a)
				if err != nil {
					return fail("--arch: %v", err)
				}
				arches = append(arches, ar)
			}
			if len(arches) == 0 {
				return fail("--arch: no architecture given")
			}
			names := splitList(*configs)
			for _, n := range names {
				if _, err := guestapi.LookupBenchConfig(n); err != nil {
					return fail("--configs: %v", err)
				}
			}
			if *method != guestapi.BenchSyscall && *method != guestapi.BenchDriver {
				return fail("--method %q: want %s or %s", *method, guestapi.BenchSyscall, guestapi.BenchDriver)
			}
			if *reps < 1 {
				return fail("--reps must be at least 1")
			}
			var counts []int
			for _, w := range splitList(*attachCounts) {
				n, err := strconv.Atoi(w)
				if err != nil || n < 0 || n > 4096 {
					return fail("--attach-counts: %q is no function count (0 to 4096)", w)
				}
				if n > 0 {
					counts = append(counts, n)
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			f := &kernels.Fetcher{CacheDir: *cache, Log: stderr}
			defer f.Close()
			runs = bench.Live(ctx, bench.Options{
				Kernel: *kernel, Arches: arches, Fetcher: f, WorkDir: *workDir, Accel: *accel,
				Job: guestapi.BenchJob{Method: *method, Configs: names, Iters: *iters, TargetMS: *repMS, Reps: *reps, AttachCounts: counts},
				Progress: func(a kernels.Arch, line string) {
					fmt.Fprintf(stderr, "[%s %s] %s\n", *kernel, a, line)
				},
			})
		}
		rep = bench.NewReport(runs, st)
		rep.Command = "tramp bench " + strings.Join(args, " ")
	}
	if *png != "" {
		if err := bench.WritePNG(*png, rep); err != nil {
			fmt.Fprintf(stderr, "tramp bench: %v\n", err)
			return exitCheck
		}
		fmt.Fprintf(stderr, "tramp bench: wrote %s\n", *png)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail("%v", err)
		}
	} else {
		bench.WriteText(stdout, rep)
	}
	for _, l := range rep.Live {
		if l.Error != "" {
			return exitCheck
		}
	}
	return exitOK
}
