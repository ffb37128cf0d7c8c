package guestapi

import (
	"fmt"
	"strings"
)

// A bench job measures what attached trampoline programs cost per call
// of the traced function, inside the guest. The method is a syscall loop:
// the guest calls getpgid(0) with syscall.RawSyscall in a tight loop and
// the programs are attached to the arch's syscall wrapper
// (__x64_sys_getpgid, __arm64_sys_getpgid, __riscv_sys_getpgid), which
// every such call enters exactly once. Each configuration's cost per call minus the cost with no
// program attached is that configuration's overhead.
//
// Why a syscall loop and not the kernel bench's method (a BPF driver
// program looping on a helper such as bpf_get_numa_node_id, run with
// BPF_PROG_TEST_RUN): one target must take every configuration, fmod_ret
// included. A helper is not an fmod_ret target (it is neither on the
// error-injection list nor in an fmodret kfunc set), so the driver method
// needs a second target for fmod_ret (the kernel bench uses the test kfunc
// bpf_modify_return_test_tp), and then fmod_ret is not measured on the
// same function as the rest. Debian's 7.x cloud kernels, built without
// CONFIG_FUNCTION_ERROR_INJECTION, accept fmod_ret on the syscall
// wrappers, so one wrapper serves all configurations. The price is a
// larger baseline (syscall entry and exit, with the guest's
// mitigations), which the overhead subtracts; medians over several
// repetitions keep the difference stable.
//
// The driver method (BenchJob.Method "driver") is the kernel bench's, so
// that tramp's figures can sit beside the published ones: a raw_tp
// program calls bpf_get_numa_node_id DriverBatch times per
// BPF_PROG_TEST_RUN and the programs are attached to that helper. It has
// no fmod_ret figure (the helper is no fmod_ret target: the kernel
// refuses, and the report says so).
//
// The configurations are measured in interleaved rounds: every program
// is loaded first; then each round links every configuration's programs
// in turn, warms up, times one repetition and unlinks them, so that slow
// drift of the machine (TCG's translation cache, the other VM on the same
// cores) spreads over all configurations alike, and each repetition has a
// baseline repetition next to it. Odd rounds go through the
// configurations in reverse order.
//
// Records, in order: one KindBenchStart, one KindBenchRound per round, and
// one KindBenchResult per configuration in the job's order.

// BenchJob is the params of a "bench" guest job.
type BenchJob struct {
	// Method is BenchSyscall ("" too) or BenchDriver.
	Method string `json:"method,omitempty"`
	// Configs names the configurations to measure, in order (empty:
	// every one of BenchConfigs). The baseline "none" is always measured
	// first.
	Configs []string `json:"configs,omitempty"`
	// Iters is the number of calls per repetition (0: calibrate on the
	// baseline so that one repetition takes about TargetMS).
	Iters int `json:"iters,omitempty"`
	// TargetMS is the calibration goal (0: DefaultBenchTargetMS).
	TargetMS int `json:"target_ms,omitempty"`
	// Reps is the number of timed repetitions per configuration (0:
	// DefaultBenchReps).
	Reps int `json:"reps,omitempty"`
	// CheckCalls is the number of calls made with kernel.bpf_stats_enabled
	// after the timed repetitions, to count how often the programs ran
	// (0: DefaultBenchCheckCalls; negative: no check).
	CheckCalls int `json:"check_calls,omitempty"`
	// AttachCounts, when set, adds the attach-cost measurement after the
	// per-call one: for each count N, one fentry.multi link over N
	// functions against N fentry programs with a link each (loads,
	// links and closes timed), AttachReps times (0:
	// DefaultBenchAttachReps). The functions come from the shapes' BTF
	// walk, each linked alone by a fentry program first.
	AttachCounts []int `json:"attach_counts,omitempty"`
	AttachReps   int   `json:"attach_reps,omitempty"`
}

// DefaultBenchAttachCounts are tramp bench's function counts of the
// attach-cost measurement.
var DefaultBenchAttachCounts = []int{1, 16, 64}

// DefaultBenchAttachReps is how often each attach-cost point is timed.
const DefaultBenchAttachReps = 5

// Ways of attaching N functions in the attach-cost measurement.
const (
	AttachMulti  = "multi"  // one fentry.multi program, one multi link
	AttachSingle = "single" // N fentry programs, one link each
)

// BenchAttach is one point of the attach-cost measurement: attaching
// (loading the program(s) and creating the link(s)) and detaching
// (closing the links, then the programs) N functions one way, in
// nanoseconds per repetition.
type BenchAttach struct {
	N     int    `json:"n"`
	Way   string `json:"way"`
	Errno string `json:"errno"`
	Stage string `json:"stage,omitempty"`
	// AttachNs and DetachNs have one entry per repetition.
	AttachNs []float64 `json:"attach_ns"`
	DetachNs []float64 `json:"detach_ns"`
	// Funcs are the functions of the largest N, in order (on the first
	// point only).
	Funcs []string `json:"funcs,omitempty"`
}

// Defaults of a BenchJob: many short rounds rather than a few long ones,
// which under TCG with two VMs on two cores gave spreads of 10-30%
// instead of 50-90% (bursts of interference then spoil single rounds,
// and the median of the paired differences drops them).
const (
	DefaultBenchTargetMS   = 100
	DefaultBenchReps       = 15
	DefaultBenchCheckCalls = 1000
)

// Record kinds of a bench job.
const (
	KindBenchStart  = "bench_start"  // BenchStart, once
	KindBenchRound  = "bench_round"  // BenchRound, after each round
	KindBenchResult = "bench_result" // BenchResult, per configuration
	KindBenchAttach = "bench_attach" // BenchAttach, per attach-cost point
)

// BenchRound says a round is done.
type BenchRound struct {
	Round  int   `json:"round"`
	Millis int64 `json:"ms"`
}

// Bench methods (BenchJob.Method).
const (
	BenchSyscall = "syscall"
	BenchDriver  = "driver"
)

// DriverBatch is how many helper calls the driver program makes per run.
const DriverBatch = 100

// BenchMethod names the syscall method in the records.
const BenchMethod = "syscall loop: getpgid(0) via syscall.RawSyscall, programs on the arch's syscall wrapper"

// BenchDriverMethod names the driver method in the records.
const BenchDriverMethod = "driver program (the kernel bench's trig-*): a raw_tp program calling bpf_get_numa_node_id 100 times per BPF_PROG_TEST_RUN, programs on bpf_get_numa_node_id"

// BenchStart describes the measurement.
type BenchStart struct {
	Arch    string `json:"arch"`
	Release string `json:"release"`
	Method  string `json:"method"`
	Target  string `json:"target"`
	BTFID   uint32 `json:"btf_id"`
	// Iters calls per repetition, WarmupIters before each, Reps
	// repetitions (rounds).
	Iters       int `json:"iters"`
	WarmupIters int `json:"warmup_iters"`
	Reps        int `json:"reps"`
	// CalibrationNs is the baseline's cost per call during calibration.
	CalibrationNs float64 `json:"calibration_ns"`
	// Clock is what the repetitions are timed with.
	Clock    string   `json:"clock"`
	InitMS   int64    `json:"init_ms"`
	Configs  []string `json:"configs"`
	Warnings []string `json:"warnings,omitempty"`
}

// BenchResult is one configuration's measurement.
type BenchResult struct {
	Config string `json:"config"`
	Progs  []Prog `json:"progs"`
	// Errno is "ok" or the errno name of the first load or attach that
	// failed (Stage says which; Error has the detail). Nothing is timed
	// then.
	Errno string `json:"errno"`
	Stage string `json:"stage,omitempty"`
	Error string `json:"error,omitempty"`
	// NsPerCall has one entry per round: the repetition's wall time over
	// Iters.
	NsPerCall []float64 `json:"ns_per_call"`
	Iters     int       `json:"iters"`
	// RunsPerCall is how often the programs ran per call, from their
	// run_cnt during CheckCalls calls with bpf_stats_enabled (-1: not
	// checked, or the check failed; CheckError says why).
	RunsPerCall float64 `json:"runs_per_call"`
	CheckError  string  `json:"check_error,omitempty"`
}

// BenchConfig is one configuration: the trivial programs attached at
// once (every one returns 0; a Cookie program calls bpf_session_cookie).
type BenchConfig struct {
	Name  string
	Progs []Prog
	// Note says what the configuration shows.
	Note string
}

// benchFentries is n plain fentry programs.
func benchFentries(n int) []Prog {
	out := make([]Prog, n)
	for i := range out {
		out[i] = Prog{Name: fmt.Sprintf("e%d", i+1), Kind: "fentry"}
	}
	return out
}

// BenchConfigs are the configurations a bench job knows, in report
// order. "fentry" is also the N=1 point of the fentry-xN series.
var BenchConfigs = []BenchConfig{
	{Name: "none", Note: "no program: the baseline"},
	{Name: "fentry", Progs: benchFentries(1), Note: "one fentry"},
	{Name: "fexit", Progs: []Prog{{Name: "x", Kind: "fexit"}}, Note: "one fexit"},
	{Name: "fentry+fexit", Progs: []Prog{{Name: "e", Kind: "fentry"}, {Name: "x", Kind: "fexit"}}, Note: "two programs, entry and exit"},
	{Name: "fsession", Progs: []Prog{{Name: "s", Kind: "fsession"}}, Note: "one program run at entry and exit"},
	{Name: "fsession-cookie", Progs: []Prog{{Name: "s", Kind: "fsession", Cookie: true}}, Note: "fsession calling bpf_session_cookie"},
	{Name: "fmod_ret", Progs: []Prog{{Name: "m", Kind: "fmod_ret"}}, Note: "one fmod_ret returning 0"},
	{Name: "fentry-x2", Progs: benchFentries(2), Note: "2 fentry programs"},
	{Name: "fentry-x4", Progs: benchFentries(4), Note: "4 fentry programs"},
	{Name: "fentry-x8", Progs: benchFentries(8), Note: "8 fentry programs"},
	{Name: "fentry.multi", Progs: []Prog{{Name: "em", Kind: "fentry.multi"}}, Note: "one fentry through a multi link (on the target alone)"},
	{Name: "fsession.multi", Progs: []Prog{{Name: "sm", Kind: "fsession.multi"}}, Note: "one fsession through a multi link (on the target alone)"},
}

// LookupBenchConfig finds a configuration by name.
func LookupBenchConfig(name string) (BenchConfig, error) {
	for _, c := range BenchConfigs {
		if c.Name == name {
			return c, nil
		}
	}
	return BenchConfig{}, fmt.Errorf("unknown bench configuration %q (%s)", name, strings.Join(BenchConfigNames(), ", "))
}

// BenchConfigNames lists the configurations in report order.
func BenchConfigNames() []string {
	out := make([]string, len(BenchConfigs))
	for i, c := range BenchConfigs {
		out[i] = c.Name
	}
	return out
}

// BenchTarget is the traced syscall wrapper on arch (x86_64, arm64,
// riscv64, s390x).
func BenchTarget(arch string) (string, error) {
	switch arch {
	case "x86_64":
		return "__x64_sys_getpgid", nil
	case "arm64":
		return "__arm64_sys_getpgid", nil
	case "riscv64":
		return "__riscv_sys_getpgid", nil
	case "s390x":
		return "__s390x_sys_getpgid", nil
	}
	return "", fmt.Errorf("no bench target for arch %q", arch)
}
