package qemu

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bpftramp/tramp/vm/kernels"
)

// Accelerator choices for Config.Accel. An empty Accel means
// $TRAMP_ACCEL, and when that is unset too, AccelAuto.
const (
	AccelAuto = "auto" // KVM when a probe boot proves it works for this guest, else TCG
	AccelTCG  = "tcg"  // always emulate
	AccelKVM  = "kvm"  // require KVM; a boot that fails under it fails
)

// EnvAccel is the environment variable that chooses the accelerator when
// Config.Accel is empty (make and CI set it).
const EnvAccel = "TRAMP_ACCEL"

// ParseAccel accepts "", "auto", "kvm" and "tcg" (any case); "" is
// returned as "".
func ParseAccel(s string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "", AccelAuto, AccelKVM, AccelTCG:
		return v, nil
	}
	return "", fmt.Errorf("unknown accelerator %q (want auto, kvm or tcg)", s)
}

// requestedAccel is the accelerator cfg asks for: Config.Accel, else
// $TRAMP_ACCEL, else auto.
func requestedAccel(cfg *Config) (string, error) {
	a, err := ParseAccel(cfg.Accel)
	if err != nil {
		return "", err
	}
	if a != "" {
		return a, nil
	}
	a, err = ParseAccel(os.Getenv(EnvAccel))
	if err != nil {
		return "", fmt.Errorf("$%s: %w", EnvAccel, err)
	}
	if a == "" {
		a = AccelAuto
	}
	return a, nil
}

// ProbeTimeout bounds a KVM probe boot. Under a working KVM the kernel
// says hello in 1-2 s; a KVM that needs longer than this is no faster
// than TCG (which says hello in about 5 s on a 2-core host).
const ProbeTimeout = 30 * time.Second

// Decision is the accelerator a boot runs under and why.
type Decision struct {
	Accel  string // "kvm" or "tcg"
	CPU    string // the -cpu value ("" for the arch's TCG default)
	Reason string // one line: why this accelerator and CPU
}

// kvmQuirk is a known way a QEMU/KVM combination fails at start, told by
// QEMU's own words on stderr, with the -cpu property that avoids it.
type kvmQuirk struct {
	name    string
	symptom *regexp.Regexp // matched against QEMU's stderr
	cpuProp string         // appended to the -cpu value
	why     string
}

// kvmQuirks are tried in order: a probe whose stderr shows a quirk's
// symptom is retried once with its property.
var kvmQuirks = []kvmQuirk{{
	// Seen with Debian's QEMU 7.2 on AMD hosts with nested KVM, and on
	// hosted CI runners: KVM lists IA32_ARCH_CAPABILITIES among the MSRs
	// it emulates but refuses QEMU's write of it, and QEMU asserts in
	// kvm_buf_set_msrs.
	name:    "arch-capabilities",
	symptom: regexp.MustCompile(`failed to set MSR 0x10a\b`),
	cpuProp: "-arch-capabilities",
	why:     "KVM refused IA32_ARCH_CAPABILITIES (MSR 0x10a)",
}}

// fatalStderr are QEMU messages after which the guest will never run on:
// QEMU pauses the VM (a KVM internal error) and would wait forever.
var fatalStderr = regexp.MustCompile(`^KVM internal error|^kvm run failed|^error: kvm run failed`)

// defaultCPU is the -cpu value for arch under accel when Config.CPU is
// empty.
func defaultCPU(arch kernels.Arch, accel string) string {
	if accel == AccelKVM {
		return "host"
	}
	switch arch {
	case kernels.ARM64:
		// Plain "max" emulates pointer authentication with QARMA5, 2-2.5x
		// slower under TCG; the implementation-defined algorithm is fast.
		return "max,pauth-impdef=on"
	case kernels.RISCV64:
		// rv64: RV64GC with the extensions QEMU enables by default
		// (bookworm's QEMU 7.2 has no riscv "max").
		return "rv64"
	}
	return "max"
}

// probeKey identifies what a probe proved: the QEMU binary, the guest
// arch and the CPU asked for.
type probeKey struct {
	bin  string
	arch kernels.Arch
	cpu  string
}

type probeEntry struct {
	once sync.Once
	d    Decision
}

var (
	probeMu    sync.Mutex
	probeCache = map[probeKey]*probeEntry{}
)

// kvmOpen reports why /dev/kvm cannot be used, or nil.
var kvmOpen = func() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// hostArch is the host's architecture (a variable for tests).
var hostArch = kernels.HostArch

// Decide chooses the accelerator and CPU for cfg. For auto it uses KVM
// only for a guest of the host's own arch, only where /dev/kvm opens, and
// only after a probe boot of cfg's own kernel and initramfs under KVM with
// the CPU the run will use has reached the guest's hello record; the
// probe's result is kept for the life of the process. Known QEMU/KVM
// incompatibilities (kvmQuirks) are retried with their fix. The decision
// is written once per (QEMU, arch, CPU) to cfg.Log (os.Stderr when nil).
func Decide(ctx context.Context, cfg Config) (Decision, error) {
	req, err := requestedAccel(&cfg)
	if err != nil {
		return Decision{}, err
	}
	switch req {
	case AccelTCG:
		return Decision{Accel: AccelTCG, CPU: orDefault(cfg.CPU, defaultCPU(cfg.Arch, AccelTCG)), Reason: "TCG requested"}, nil
	case AccelKVM:
		if err := kvmOpen(); err != nil {
			return Decision{}, &RunError{Kind: ErrQEMUFailed, Err: err,
				Msg: fmt.Sprintf("%s: KVM requested but /dev/kvm cannot be used: %v", cfg.Arch, err)}
		}
		if h := hostArch(); h != cfg.Arch {
			return Decision{}, &RunError{Kind: ErrQEMUFailed,
				Msg: fmt.Sprintf("%s: KVM requested, but KVM runs only guests of the host's arch (%s)", cfg.Arch, h)}
		}
		// Probed too, so that known quirks get their fix; a failed
		// probe fails the run instead of falling back.
		d := probed(ctx, cfg)
		if d.Accel != AccelKVM {
			return Decision{}, &RunError{Kind: ErrQEMUFailed,
				Msg: fmt.Sprintf("%s: KVM requested but it does not run this guest: %s", cfg.Arch, d.Reason)}
		}
		return d, nil
	}
	tcg := Decision{Accel: AccelTCG, CPU: orDefault(cfg.CPU, defaultCPU(cfg.Arch, AccelTCG))}
	if h := hostArch(); h != cfg.Arch {
		tcg.Reason = fmt.Sprintf("an %s guest on a %s host", cfg.Arch, orDefault(string(h), "other"))
		return tcg, nil
	}
	if err := kvmOpen(); err != nil {
		tcg.Reason = fmt.Sprintf("/dev/kvm: %v", err)
		return tcg, nil
	}
	return probed(ctx, cfg), nil
}

// probed is the KVM probe's outcome for cfg: from this process's memory,
// from disk (a probe of the same host facts within ProbeValidity), or a
// probe boot now. It is written to cfg.Log once per process.
func probed(ctx context.Context, cfg Config) Decision {
	cpu := orDefault(cfg.CPU, defaultCPU(cfg.Arch, AccelKVM))
	bin := orDefault(cfg.Binary, Binary(cfg.Arch))
	key := probeKey{bin: bin, arch: cfg.Arch, cpu: cpu}
	probeMu.Lock()
	e := probeCache[key]
	if e == nil {
		e = &probeEntry{}
		probeCache[key] = e
	}
	probeMu.Unlock()
	e.once.Do(func() {
		now := time.Now()
		facts, ferr := hostFacts(bin, cfg.Arch, cpu)
		d, ok := Decision{}, false
		if ferr == nil {
			d, ok = loadProbe(facts, now)
		}
		if !ok {
			d = probeKVM(ctx, cfg, cpu)
			if ferr == nil && ctx.Err() == nil {
				saveProbe(facts, d, now)
			}
		}
		if d.Accel == AccelTCG {
			// TCG runs the CPU the user named, or the TCG default.
			d.CPU = orDefault(cfg.CPU, defaultCPU(cfg.Arch, AccelTCG))
		}
		e.d = d
		w := cfg.Log
		if w == nil {
			w = os.Stderr
		}
		fmt.Fprintf(w, "accel: %s %s guest: %s, -cpu %s (%s)\n", bin, cfg.Arch, strings.ToUpper(d.Accel), d.CPU, d.Reason)
	})
	return e.d
}

// probeKVM boots cfg under KVM with cpu until the guest's hello record,
// retrying with the fix of each known quirk whose symptom QEMU printed.
func probeKVM(ctx context.Context, cfg Config, cpu string) Decision {
	var fixes []string
	tried := map[string]bool{}
	for {
		c := cfg
		c.Accel, c.CPU = AccelKVM, cpu
		c.Timeout, c.WorkDir, c.stopAtHello, c.skipDecide = ProbeTimeout, "", true, true
		c.OnStart, c.OnRecord, c.RecordLog, c.ConsoleLog, c.OnDecision = nil, nil, nil, nil, nil
		start := time.Now()
		res, err := Run(ctx, c)
		if err == nil && res.Hello != nil {
			why := fmt.Sprintf("probe boot said hello under KVM after %s", res.HelloAfter.Round(10*time.Millisecond))
			if len(fixes) > 0 {
				why += "; " + strings.Join(fixes, "; ")
			}
			return Decision{Accel: AccelKVM, CPU: cpu, Reason: why}
		}
		if ctx.Err() != nil {
			return Decision{Accel: AccelTCG, Reason: fmt.Sprintf("KVM probe canceled: %v", ctx.Err())}
		}
		stderr := ""
		if res != nil {
			stderr = res.Stderr
		}
		retried := false
		for _, q := range kvmQuirks {
			if !tried[q.name] && q.symptom.MatchString(stderr) {
				tried[q.name] = true
				cpu += "," + q.cpuProp
				fixes = append(fixes, fmt.Sprintf("%s, so %s", q.why, q.cpuProp))
				retried = true
				break
			}
		}
		if retried {
			continue
		}
		return Decision{Accel: AccelTCG, Reason: fmt.Sprintf("KVM probe with -cpu %s failed after %s: %s", cpu,
			time.Since(start).Round(10*time.Millisecond), oneLine(err, stderr))}
	}
}

// oneLine condenses a probe failure to one line in QEMU's own words where
// it said something.
func oneLine(err error, stderr string) string {
	if ex := fatalExcerpt(stderr); len(ex) > 0 && fatalStderr.MatchString(ex[0]) {
		// "KVM internal error. Suberror: 1 / emulation failure": the
		// message and its explanation, not the register dump.
		said := []string{ex[0]}
		for _, l := range ex[1:] {
			if !strings.HasPrefix(l, "extra data") && !strings.Contains(l, "=") && !strings.HasPrefix(l, "...") {
				said = append(said, l)
				break
			}
		}
		return "QEMU said: " + strings.Join(said, " / ")
	}
	if l := lastLines(stderr, 2); len(l) > 0 {
		return "QEMU said: " + strings.Join(l, " / ")
	}
	if err == nil {
		return "no hello record"
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

// lastLines returns the last n non-empty lines of s, trimmed.
func lastLines(s string, n int) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(CleanLine(l)); l != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// stderrWatch keeps QEMU's standard error (bounded) and signals fatal
// once QEMU prints a message after which the guest cannot go on.
type stderrWatch struct {
	mu    sync.Mutex
	buf   strings.Builder
	fatal chan struct{}
	once  sync.Once
	pw    *io.PipeWriter
	done  chan struct{}
}

func newStderrWatch() *stderrWatch {
	pr, pw := io.Pipe()
	s := &stderrWatch{fatal: make(chan struct{}), pw: pw, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		r := bufio.NewReader(pr)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				s.mu.Lock()
				if s.buf.Len() < 64<<10 {
					s.buf.WriteString(line)
				}
				s.mu.Unlock()
				if fatalStderr.MatchString(strings.TrimSpace(line)) {
					s.once.Do(func() { close(s.fatal) })
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *stderrWatch) Write(p []byte) (int, error) { return s.pw.Write(p) }

// close ends the watch after QEMU has exited and returns what it printed.
func (s *stderrWatch) close() string {
	s.pw.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
