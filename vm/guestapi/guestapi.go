package guestapi

import "encoding/json"

// ResultsPortName is the virtio-serial port name of the results channel; in
// the guest, /sys/class/virtio-ports/<dev>/name holds it.
const ResultsPortName = "tramp.results"

// JobPath is where the host puts the job description in the initramfs.
const JobPath = "/job.json"

// Record kinds every guest run uses. A run sends KindHello first and
// KindDone (success) or KindError (failure) last. Job code may add its own
// kinds (see channel.ValidKind for the allowed spelling).
const (
	KindHello = "hello"
	KindDone  = "done"
	KindError = "error"
	KindLog   = "log"
	KindTick  = "tick"
)

// Job kinds understood by the guest.
const (
	JobHello  = "hello"  // send hello, then done
	JobSleep  = "sleep"  // send Ticks tick records SleepMS apart, then done
	JobPanic  = "panic"  // crash the kernel through /proc/sysrq-trigger
	JobHang   = "hang"   // send one tick record, then never finish
	JobBPF    = "bpf"    // BPF observation; implemented by cmd/tramp-guest/bpfobs
	JobShapes = "shapes" // trampolines of real kernel functions by prototype shape; cmd/tramp-guest/bpfobs RunShapes
	JobBench  = "bench"  // cost per call of attached programs; cmd/tramp-guest/bpfobs RunBench
)

// Job is the content of JobPath.
type Job struct {
	Kind    string `json:"kind"`
	SleepMS int    `json:"sleep_ms,omitempty"`
	Ticks   int    `json:"ticks,omitempty"`
	// Params is opaque to the harness; job kinds define its shape.
	Params json.RawMessage `json:"params,omitempty"`
}

// Hello is the payload of the first record: facts about the running kernel.
type Hello struct {
	Release  string `json:"release"`
	Version  string `json:"version"`
	Machine  string `json:"machine"`
	Cmdline  string `json:"cmdline"`
	CPUModel string `json:"cpu_model"`
	// CPUFamily is /proc/cpuinfo's "cpu family" (x86; 0 when absent).
	CPUFamily       int               `json:"cpu_family,omitempty"`
	Vulnerabilities map[string]string `json:"vulnerabilities"`
	// ReturnThunk is the last "active return thunk: NAME" line of the
	// kernel log (x86 set_return_thunk), empty when the log has none.
	ReturnThunk string `json:"return_thunk,omitempty"`
	// CallDepthTracking: the kernel log says "Setting up call depth
	// tracking" (x86 callthunks_setup, retbleed=stuff).
	CallDepthTracking bool   `json:"call_depth_tracking,omitempty"`
	Lockdown          string `json:"lockdown"`
	BTFVmlinux        bool   `json:"btf_vmlinux"`
	Kcore             bool   `json:"kcore"`
	// NoJIT: the kernel has no net/core/bpf_jit_enable, which
	// bpf_jit_enable's sysctl table registers only with CONFIG_BPF_JIT
	// (Debian's s390x): it says so itself.
	NoJIT bool `json:"no_jit,omitempty"`
	// UptimeMS is the kernel's uptime when hello was sent.
	UptimeMS int64 `json:"uptime_ms"`
	// SetupErrors lists mounts and sysctls that failed; they are not fatal.
	SetupErrors []string `json:"setup_errors,omitempty"`
	JobKind     string   `json:"job_kind,omitempty"`
}

// Tick is the payload of a tick record.
type Tick struct {
	N int `json:"n"`
}

// Done is the payload of the last record of a successful run.
type Done struct {
	Job      string `json:"job"`
	UptimeMS int64  `json:"uptime_ms"`
}

// Error is the payload of the last record of a failed run.
type Error struct {
	Stage   string `json:"stage"`
	Message string `json:"message"`
}
