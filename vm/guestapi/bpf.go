package guestapi

import (
	"fmt"

	"github.com/bpftramp/tramp/trampoline"
)

// Prog is one program of a job.
type Prog struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`        // fentry | fexit | fmod_ret | fsession | freplace | fentry.multi | fexit.multi | fsession.multi
	Cookie     bool   `json:"cookie"`      // program calls bpf_session_cookie (fsession only)
	IP         bool   `json:"ip"`          // program calls bpf_get_func_ip
	Sleepable  bool   `json:"sleepable"`   // BPF_F_SLEEPABLE
	LinkCookie uint64 `json:"link_cookie"` // link_create.tracing.cookie
	Returns    int64  `json:"returns"`     // the program's return value (fmod_ret; fentry etc. normally 0)
	// Target is the function a single-function program attaches to in a
	// job with several targets ("": BPFJob.Target).
	Target string `json:"target,omitempty"`
}

// Model is p as the trampoline model's program (what a case's prog line
// declares).
func (p Prog) Model() (*trampoline.Prog, error) {
	k, ok := trampoline.ParseKind(p.Kind)
	if !ok {
		return nil, fmt.Errorf("program %s: unknown kind %q", p.Name, p.Kind)
	}
	return &trampoline.Prog{Name: p.Name, Kind: k, Cookie: p.Cookie, IP: p.IP, Sleepable: p.Sleepable,
		LinkCookie: p.LinkCookie, Returns: p.Returns}, nil
}

// Op is one step: attach | detach | run.
type Op struct {
	Op   string `json:"op"`
	Prog string `json:"prog,omitempty"`
	Line int    `json:"line,omitempty"`
	// On and Cookies are a multi program's attach: the functions and
	// their cookies (link_create.tracing_multi.ids and .cookies; nil
	// cookies: the pointer is 0).
	On      []string `json:"on,omitempty"`
	Cookies []uint64 `json:"cookies,omitempty"`
	// Func is the function a run step is about in a job with several
	// targets (the trigger calls every one of them).
	Func string `json:"func,omitempty"`
}

// BPFJob is a target function, its programs and the steps to run.
type BPFJob struct {
	Target string `json:"target"`
	// Targets are the further functions of a job with several targets:
	// the guest resolves their BTF ids and kallsyms addresses and
	// captures each one's image.
	Targets []string `json:"targets,omitempty"`
	Progs   []Prog   `json:"progs"`
	Ops     []Op     `json:"ops"`
	Capture bool     `json:"capture"`
	// TargetProg: Target is the global function of a BPF program the
	// guest loads for this job, not a vmlinux function.
	TargetProg *TargetProg `json:"target_prog,omitempty"`
}

// Record kinds emitted by Run.
const (
	KindStart        = "start"        // Start, once per Run
	KindStep         = "step"         // Step, one per Op
	KindObservations = "observations" // Observations, after each run step
	KindCapture      = "capture"      // Capture, after attach/detach steps with links in place (BPFJob.Capture)
	KindJobDone      = "job_done"     // JobDone, at the end of Run (not the guest run's own KindDone)
)

// Start describes the kernel and the ids the job uses.
type Start struct {
	Release string `json:"release"`
	Machine string `json:"machine"`
	Target  string `json:"target"`
	// BTF ids in /sys/kernel/btf/vmlinux (0: not found).
	BTFIDs map[string]uint32 `json:"btf_ids"`
	// TrampolineKey is the key of the target's trampoline (its kallsyms
	// name is bpf_trampoline_<key>).
	TrampolineKey uint64 `json:"trampoline_key"`
	// TargetProg describes the target program of a BPF-program target
	// (BPFJob.TargetProg); its bpf_func is Symbols[Target].
	TargetProg *TargetProgInfo `json:"target_prog,omitempty"`
	// FsessionSupported: a trivial fsession program on bpf_fentry_test1
	// loaded; FsessionProbe is that load's errno name.
	FsessionSupported bool   `json:"fsession_supported"`
	FsessionProbe     string `json:"fsession_probe"`
	FsessionProbeLog  string `json:"fsession_probe_log,omitempty"`
	// TracingMultiProbe is the errno name of loading a trivial
	// fentry.multi program (attach type 59, no attach_btf_id): "ok"
	// where the kernel knows the multi attach types ("" in recordings
	// made before the probe existed).
	TracingMultiProbe    string `json:"tracing_multi_probe,omitempty"`
	TracingMultiProbeLog string `json:"tracing_multi_probe_log,omitempty"`
	// TracingMultiCnt is what a multi link of the probe program with cnt
	// 0 and with MAX_TRACING_MULTI_CNT+1 functions gives, by cnt
	// ("0", "1048577"): errno names.
	TracingMultiCnt map[string]string `json:"tracing_multi_cnt,omitempty"`
	// Trigger is the program BPF_PROG_TEST_RUN uses for run steps.
	Trigger      string `json:"trigger"`
	TriggerErrno string `json:"trigger_errno"`
	// Symbols: helper and target addresses from /proc/kallsyms, read once.
	Symbols map[string]uint64 `json:"symbols"`
	// Padding: the 16 bytes before each of the __bpf_* helpers in
	// Symbols, hex, as /proc/kcore shows them (x86: with call-depth
	// tracking the kernel may have put a call thunk there, and
	// x86_call_depth_emit_accounting looks).
	Padding map[string]string `json:"padding,omitempty"`
	// Sysctls read at start (value or error text).
	Sysctls map[string]string `json:"sysctls"`
	// InitMillis: time spent on BTF, kallsyms, probes.
	InitMillis int64    `json:"init_ms"`
	Errors     []string `json:"errors,omitempty"`
}

// TargetProgInfo is what the guest loaded as a BPF-program target.
type TargetProgInfo struct {
	ID       uint32 `json:"id"`
	Tag      string `json:"tag"`
	BPFFunc  uint64 `json:"bpf_func"`
	TailCall bool   `json:"tail_call"`
	// TailCallSubprog: the tail call is in a subprogram.
	TailCallSubprog bool `json:"tail_call_subprog,omitempty"`
	TailCallTaken   bool `json:"tail_call_taken,omitempty"`
	GlobalSubprog   bool `json:"global_subprog,omitempty"`
}

// Step is the result of one Op.
type Step struct {
	Step  int    `json:"step"` // index in BPFJob.Ops
	Op    string `json:"op"`
	Prog  string `json:"prog,omitempty"`
	Line  int    `json:"line,omitempty"`
	Errno string `json:"errno"`           // "ok" or errno name
	Stage string `json:"stage,omitempty"` // load | attach | detach | run (where it failed)
	// VerifierLog of a failed load (head and tail when long).
	VerifierLog string `json:"verifier_log,omitempty"`
	Error       string `json:"error,omitempty"` // non-kernel problems (unknown prog, ...)
	ProgID      uint32 `json:"prog_id,omitempty"`
	Loaded      bool   `json:"loaded,omitempty"` // this step loaded the program
	// Run steps: BPF_PROG_TEST_RUN's retval and duration (ns).
	Retval   *uint32 `json:"retval,omitempty"`
	Duration uint32  `json:"duration,omitempty"`
	Trigger  string  `json:"trigger,omitempty"`
	// Attached lists the programs with a live link after the step, in
	// attach order.
	Attached []string `json:"attached"`
	Millis   int64    `json:"ms"`
}

// Observations are the records the observers wrote during one run step,
// in global invocation order.
type Observations struct {
	Step    int      `json:"step"`
	Count   uint64   `json:"count"` // invocations counted
	Lost    uint64   `json:"lost"`  // invocations without a readable record
	Records []Obs    `json:"records"`
	Errors  []string `json:"errors,omitempty"`
}

// ProgImage describes one attached program's JITed image.
type ProgImage struct {
	Name       string `json:"name"`
	Index      int    `json:"index"`
	ID         uint32 `json:"id"`
	Tag        string `json:"tag"`
	JitedKsym  uint64 `json:"jited_ksym"` // bpf_func
	JitedLen   uint32 `json:"jited_len"`
	XlatedLen  uint32 `json:"xlated_len"`
	LinkCookie uint64 `json:"link_cookie"`
	Error      string `json:"error,omitempty"`
}

// Capture is a trampoline image read from /proc/kcore.
type Capture struct {
	Step       int      `json:"step"`
	Target     string   `json:"target"`
	TargetAddr uint64   `json:"target_addr"`
	TargetHead string   `json:"target_head"` // first 16 bytes of the traced function, hex
	CallSite   CallSite `json:"call_site"`
	// Live is where the patched entry leads, followed through an arm64
	// PLT or ftrace_ops.direct_call (LiveVia says how); 0 when it cannot
	// be told, and LiveError says why.
	Live      uint64 `json:"live,omitempty"`
	LiveVia   string `json:"live_via,omitempty"`
	LiveError string `json:"live_error,omitempty"`
	// Trampoline image.
	Name string `json:"name"` // bpf_trampoline_<key>
	Addr uint64 `json:"addr"`
	// AddrFrom: call_site (Live; one of Candidates when kallsyms was
	// read), kallsyms (the only candidate), kallsyms_settled (the only
	// one left after waiting WaitedMillis for superseded images to go).
	AddrFrom string `json:"addr_from"`
	// Candidates: every kallsyms address with the trampoline's name (an
	// old image is still listed until its RCU-tasks free has run).
	Candidates   []uint64 `json:"candidates,omitempty"`
	WaitedMillis int64    `json:"waited_ms,omitempty"`
	// NextSym: the symbol after the image that bounded the read: a
	// kallsyms [bpf] name, or "prog:<name>" for a program loaded here.
	NextSym  string      `json:"next_sym,omitempty"`
	NextAddr uint64      `json:"next_addr,omitempty"`
	Len      int         `json:"len"`
	Bytes    string      `json:"bytes"` // hex; up to NextAddr or 4096 bytes, code length unknown
	Progs    []ProgImage `json:"progs"`
	// BPFSyms: all [bpf] kallsyms symbols, by address (only when
	// kallsyms was read, see CaptureKallsyms).
	BPFSyms []Sym `json:"bpf_syms,omitempty"`
	Millis  int64 `json:"ms"`
	// Time spent re-reading kallsyms and reading the image.
	KallsymsMillis int64    `json:"kallsyms_ms"`
	KcoreMillis    int64    `json:"kcore_ms"`
	Errors         []string `json:"errors,omitempty"`
}

// JobDone ends a Run.
type JobDone struct {
	Steps  int   `json:"steps"`
	Millis int64 `json:"ms"`
}

// TargetProg asks the guest to trace a BPF program instead of a vmlinux
// function: it loads a socket filter whose one global function is named
// after Job.Target and has the prototype Args -> Ret, with BTF and
// func_info, so that tracing programs can attach to it with
// attach_prog_fd and its BTF function id. TailCall makes the program call
// bpf_tail_call through a one-slot program array (left empty, so the call
// falls through): the verifier then marks the program tail_call_reachable.
type TargetProg struct {
	TailCall bool `json:"tail_call"`
	// TailCallSubprog (with TailCall): the function calls a static
	// subprogram that makes the tail call.
	TailCallSubprog bool `json:"tail_call_subprog,omitempty"`
	// TailCallTaken (with TailCall): slot 0 of the program array holds a
	// socket filter returning TailCalleeRet, so the tail call is taken.
	TailCallTaken bool `json:"tail_call_taken,omitempty"`
	// GlobalSubprog: the target is a global subprogram (subprog 1) that
	// the program's main function (mainName) calls with ctx, not the
	// main function itself; its tail call, if any, is its own.
	GlobalSubprog bool     `json:"global_subprog,omitempty"`
	Args          []string `json:"args"` // case-file types: the guest takes exactly ["ptr"]
	Ret           string   `json:"ret"`  // s32 or u32
}

// TargetTrigger is the Start.Trigger of a job whose target is a BPF
// program: run steps execute the target itself with BPF_PROG_TEST_RUN.
const TargetTrigger = "target program"

// Obs is one decoded invocation of an observer program.
type Obs struct {
	Order        uint64   `json:"order"`
	ProgIndex    int      `json:"prog_index"`
	Prog         string   `json:"prog,omitempty"`
	Phase        string   `json:"phase"` // entry | exit | modret
	ArgCnt       uint64   `json:"arg_cnt"`
	Args         []uint64 `json:"args"`          // the args bpf_get_func_arg returned
	ArgErr       string   `json:"arg_err"`       // errno of the first failing bpf_get_func_arg ("ok" if all 12 worked)
	Ret          *uint64  `json:"ret,omitempty"` // bpf_get_func_ret value (fexit/fmod_ret/fsession)
	RetStatus    string   `json:"ret_status,omitempty"`
	IP           *uint64  `json:"ip,omitempty"` // bpf_get_func_ip (when Prog.IP)
	AttachCookie uint64   `json:"attach_cookie"`
	// Session cookie (fsession with Prog.Cookie).
	CookieRead    *uint64 `json:"cookie_read,omitempty"`
	CookieWritten *uint64 `json:"cookie_written,omitempty"` // entry only
	// CookieSlot is (ctx - cookie pointer)/8, the slot index the trampoline
	// gave this program (bits 8-15 of func_meta).
	CookieSlot *int64 `json:"cookie_slot,omitempty"`
	Ctx        uint64 `json:"ctx"`
	// Frame is frameWords u64 words read from ctx-128 (the trampoline's
	// stack below and around ctx: cookies, IP, func_meta, args).
	Frame       []uint64 `json:"frame,omitempty"`
	FrameOffset int      `json:"frame_offset"` // byte offset of Frame[0] relative to ctx
	FrameStatus string   `json:"frame_status,omitempty"`
}

// CallSite is what the traced function's patched entry says.
type CallSite struct {
	Kind   string `json:"kind"`             // call | jmp | bl | auipc+jalr | brasl | brcl | nop | unknown
	Offset int    `json:"offset"`           // byte offset of the patched insn from the function start
	Target uint64 `json:"target,omitempty"` // where it goes
}

// Sym is one /proc/kallsyms line: "<hex addr> <type> <name>[\t[<module>]]".
type Sym struct {
	Addr   uint64 `json:"addr"`
	Type   string `json:"type"`
	Name   string `json:"name"`
	Module string `json:"module,omitempty"`
}
