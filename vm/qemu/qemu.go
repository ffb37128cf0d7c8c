package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpftramp/tramp/vm/channel"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/kernels"
)

// DefaultTimeout bounds one boot when Config.Timeout is zero.
const DefaultTimeout = 120 * time.Second

// Config describes one boot.
type Config struct {
	Arch   kernels.Arch
	Kernel string // kernel image path
	Initrd string // gzip'd cpio path

	MemoryMB int    // default 512
	CPUs     int    // default 1
	CPU      string // -cpu override; default max (TCG) or host (KVM)
	// Accel is AccelAuto, AccelTCG or AccelKVM; "" means $TRAMP_ACCEL or
	// auto. See Decide.
	Accel   string
	KASLR   bool // false adds "nokaslr"
	Verbose bool // false adds "quiet" (warnings and worse still print)
	// Append holds extra kernel command-line words, e.g. "mitigations=off".
	Append []string
	// ExtraArgs are appended to the QEMU command line.
	ExtraArgs []string
	// Binary overrides the QEMU executable.
	Binary string

	Timeout time.Duration // whole boot; default DefaultTimeout
	// WorkDir receives console.log and results.bin. If empty a temporary
	// directory is used and removed afterwards.
	WorkDir string

	// OnDecision is called with the accelerator and CPU before QEMU
	// starts.
	OnDecision func(Decision)
	// OnStart is called with QEMU's process id once it runs.
	OnStart func(pid int)
	// OnRecord is called for every record as it arrives, in order, from a
	// single goroutine.
	OnRecord func(channel.Record)
	// RecordLog, if set, receives each record as one JSON line as it
	// arrives (flushed if it has a Sync method).
	RecordLog io.Writer
	// ConsoleLog, if set, receives the raw console output as it arrives.
	ConsoleLog io.Writer
	// Log receives the accelerator decision, once per process for each
	// QEMU binary, arch and CPU (default os.Stderr).
	Log io.Writer

	// stopAtHello ends the run (successfully) at the hello record: the
	// KVM probe. skipDecide runs under Accel and CPU as given.
	stopAtHello, skipDecide bool
}

// Binary returns the QEMU executable name for arch.
func Binary(a kernels.Arch) string {
	switch a {
	case kernels.ARM64:
		return "qemu-system-aarch64"
	case kernels.RISCV64:
		return "qemu-system-riscv64"
	case kernels.S390X:
		return "qemu-system-s390x"
	}
	return "qemu-system-x86_64"
}

// Package is the Debian package that holds the QEMU for a.
func Package(a kernels.Arch) string {
	switch a {
	case kernels.ARM64:
		return "qemu-system-arm"
	case kernels.RISCV64, kernels.S390X:
		return "qemu-system-misc"
	}
	return "qemu-system-x86"
}

// escapeOpt escapes commas for QEMU's option syntax.
func escapeOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// Cmdline is the kernel command line for c.
func (c *Config) Cmdline() string {
	console := "console=ttyS0" // x86 and riscv64 virt: a 16550
	switch c.Arch {
	case kernels.ARM64:
		console = "console=ttyAMA0" // virt's PL011
	case kernels.S390X:
		console = "console=ttysclp0" // the SCLP line-mode console
	}
	w := []string{console, "panic=-1"}
	if !c.Verbose {
		w = append(w, "quiet")
	}
	if !c.KASLR {
		w = append(w, "nokaslr")
	}
	return strings.Join(append(w, c.Append...), " ")
}

// Command returns QEMU's argv (argv[0] is the binary name) for c under
// the accelerator and CPU of d, with the results port backed by
// resultsPath. An empty d.CPU is the accelerator's default for the arch.
func (c *Config) Command(resultsPath string, d Decision) ([]string, error) {
	if !slices.Contains(kernels.Arches, c.Arch) {
		return nil, fmt.Errorf("qemu: unsupported arch %q", c.Arch)
	}
	if c.Kernel == "" || c.Initrd == "" {
		return nil, errors.New("qemu: kernel and initrd are required")
	}
	bin := c.Binary
	if bin == "" {
		bin = Binary(c.Arch)
	}
	mem, cpus := c.MemoryMB, c.CPUs
	if mem == 0 {
		mem = 512
	}
	if cpus == 0 {
		cpus = 1
	}
	accel := d.Accel
	if accel != AccelKVM && accel != AccelTCG {
		return nil, fmt.Errorf("qemu: accelerator %q is not decided (want kvm or tcg)", accel)
	}
	cpu := orDefault(d.CPU, defaultCPU(c.Arch, accel))
	machine, serial := "q35", "virtio-serial-pci"
	switch c.Arch {
	case kernels.ARM64:
		machine = "virt"
		if accel == AccelKVM {
			// The host's GIC: a GICv3-only host cannot emulate virt's
			// default GICv2 in the kernel.
			machine = "virt,gic-version=host"
		}
	case kernels.RISCV64:
		// virt boots the kernel from QEMU's OpenSBI (-bios default).
		machine = "virt"
	case kernels.S390X:
		// No PCI on the channel subsystem: virtio over CCW.
		machine, serial = "s390-ccw-virtio", "virtio-serial-ccw"
	}
	argv := []string{bin,
		"-accel", accel,
		"-machine", machine,
		"-cpu", cpu,
		"-m", fmt.Sprintf("%dM", mem),
		"-smp", fmt.Sprint(cpus),
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", c.Kernel,
		"-initrd", c.Initrd,
		"-append", c.Cmdline(),
		"-device", serial,
		"-chardev", "file,id=res,path=" + escapeOpt(resultsPath),
		"-device", "virtserialport,chardev=res,name=" + guestapi.ResultsPortName,
	}
	return append(argv, c.ExtraArgs...), nil
}

// ErrorKind classifies a failed run.
type ErrorKind string

// The ways a run can fail.
const (
	ErrQEMUMissing ErrorKind = "qemu-missing"
	ErrHung        ErrorKind = "hung"
	ErrNoHello     ErrorKind = "no-hello"
	ErrPanic       ErrorKind = "panic"
	ErrSplat       ErrorKind = "splat"
	ErrCorrupt     ErrorKind = "corrupt"
	ErrTruncated   ErrorKind = "truncated"
	ErrKilled      ErrorKind = "killed"
	ErrQEMUFailed  ErrorKind = "qemu-failed"
	ErrGuest       ErrorKind = "guest-error"
	ErrNoDone      ErrorKind = "no-done"
	ErrCanceled    ErrorKind = "canceled"
)

// RunError is the error Run returns.
type RunError struct {
	Kind   ErrorKind
	Msg    string
	Lines  []string // console lines that explain it
	Stderr []string // the last lines QEMU wrote to its standard error
	Err    error    // underlying error, if any
}

func (e *RunError) Error() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	if len(e.Lines) > 0 {
		b.WriteString("\nconsole:")
		for _, l := range e.Lines {
			b.WriteString("\n  | ")
			b.WriteString(l)
		}
	}
	if len(e.Stderr) > 0 {
		b.WriteString("\nqemu stderr:")
		for _, l := range e.Stderr {
			b.WriteString("\n  | ")
			b.WriteString(l)
		}
	}
	return b.String()
}

func (e *RunError) Unwrap() error { return e.Err }

// IsKind reports whether err is a *RunError of kind k.
func IsKind(err error, k ErrorKind) bool {
	var re *RunError
	return errors.As(err, &re) && re.Kind == k
}

// Result is what a run produced. Run returns it even when it fails.
type Result struct {
	Argv        []string
	Records     []channel.Record
	Hello       *guestapi.Hello
	Console     []string // console lines, without line endings
	Splats      []Splat
	ConsolePath string // empty when WorkDir was temporary
	ResultsPath string // raw channel bytes; empty when WorkDir was temporary
	Accel       string // "kvm" or "tcg"
	CPU         string // the -cpu value
	AccelReason string // why this accelerator (Decision.Reason)
	Stderr      string // what QEMU wrote to its standard error (bounded)
	Start       time.Time
	HelloAfter  time.Duration // QEMU start to hello record; 0 if none
	Elapsed     time.Duration // QEMU start to exit
	ExitCode    int           // -1 if killed by a signal

	waitStatus syscall.WaitStatus
	haveStatus bool
}

// Records of the given kind.
func (r *Result) RecordsOf(kind string) []channel.Record {
	var out []channel.Record
	for _, rec := range r.Records {
		if rec.Kind == kind {
			out = append(out, rec)
		}
	}
	return out
}

// Tail returns the last n console lines.
func (r *Result) Tail(n int) []string {
	if len(r.Console) <= n {
		return append([]string(nil), r.Console...)
	}
	return append([]string(nil), r.Console[len(r.Console)-n:]...)
}

// missingQEMU is the error for an absent QEMU binary.
func missingQEMU(bin string, a kernels.Arch, err error) error {
	return &RunError{Kind: ErrQEMUMissing, Err: err,
		Msg: fmt.Sprintf("%s not found (%v): run scripts/setup, which installs the Debian packages qemu-system-x86, qemu-system-arm and qemu-system-misc (this one comes from %s)", bin, err, Package(a))}
}

// Run boots the VM described by cfg and waits until QEMU exits or the
// timeout expires.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	res := &Result{ExitCode: -1}
	for _, p := range []string{cfg.Kernel, cfg.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return res, fmt.Errorf("qemu: %w", err)
		}
	}
	d := Decision{Accel: cfg.Accel, CPU: cfg.CPU}
	if !cfg.skipDecide {
		if _, err := exec.LookPath(orDefault(cfg.Binary, Binary(cfg.Arch))); err != nil {
			return res, missingQEMU(orDefault(cfg.Binary, Binary(cfg.Arch)), cfg.Arch, err)
		}
		var err error
		if d, err = Decide(ctx, cfg); err != nil {
			return res, err
		}
	}
	res.Accel, res.AccelReason = d.Accel, d.Reason
	if cfg.OnDecision != nil {
		cfg.OnDecision(d)
	}
	dir := cfg.WorkDir
	if dir == "" {
		d, err := os.MkdirTemp("", "tramp-vm-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, err
		}
		res.ConsolePath = filepath.Join(dir, "console.log")
		res.ResultsPath = filepath.Join(dir, "results.bin")
	}
	resultsPath := filepath.Join(dir, "results.bin")
	argv, err := cfg.Command(resultsPath, d)
	if err != nil {
		return res, err
	}
	res.Argv = argv
	res.CPU = orDefault(d.CPU, defaultCPU(cfg.Arch, d.Accel))
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return res, missingQEMU(argv[0], cfg.Arch, err)
	}
	// QEMU truncates the file when it opens it; creating it first lets the
	// reader open it before QEMU gets that far.
	if err := os.WriteFile(resultsPath, nil, 0o644); err != nil {
		return res, err
	}
	consoleFile, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		return res, err
	}
	defer consoleFile.Close()

	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	cmd := exec.Command(bin, argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr := newStderrWatch()
	cmd.Stderr = stderr
	// A pipe of our own rather than StdoutPipe: Wait runs concurrently with
	// the reader and must not close the read end under it.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		return res, err
	}
	defer stdout.Close()
	cmd.Stdout = stdoutW
	res.Start = time.Now()
	err = cmd.Start()
	stdoutW.Close()
	if err != nil {
		stderr.close()
		return res, &RunError{Kind: ErrQEMUFailed, Msg: fmt.Sprintf("starting %s: %v", bin, err), Err: err}
	}
	if cfg.OnStart != nil {
		cfg.OnStart(cmd.Process.Pid)
	}

	// Console reader.
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		var w io.Writer = consoleFile
		if cfg.ConsoleLog != nil {
			w = io.MultiWriter(consoleFile, cfg.ConsoleLog)
		}
		r := bufio.NewReaderSize(io.TeeReader(stdout, w), 64<<10)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				if len(res.Console) < 200000 {
					res.Console = append(res.Console, CleanLine(line))
				}
			}
			if err != nil {
				return
			}
		}
	}()

	// Results reader: polls the growing file until told QEMU has exited,
	// then drains it.
	exited := make(chan struct{})
	corrupt := make(chan struct{})
	helloSeen := make(chan struct{})
	var dec channel.Decoder
	var decErr error
	resultsDone := make(chan struct{})
	go func() {
		defer close(resultsDone)
		f, err := os.Open(resultsPath)
		if err != nil {
			decErr = err
			return
		}
		defer f.Close()
		buf := make([]byte, 256<<10)
		drain := func() bool {
			for {
				n, err := f.Read(buf)
				if n > 0 {
					recs, ferr := dec.Feed(buf[:n])
					for _, r := range recs {
						hadHello := res.Hello != nil
						deliver(&cfg, res, r)
						if !hadHello && res.Hello != nil {
							close(helloSeen)
						}
					}
					if ferr != nil {
						decErr = ferr
						close(corrupt)
						return false
					}
				}
				if err != nil || n == 0 {
					return true
				}
			}
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-exited:
				if drain() {
					decErr = dec.Close()
				}
				return
			case <-tick.C:
				if !drain() {
					return
				}
			}
		}
	}()

	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var (
		werr        error
		timedOut    bool
		canceled    bool
		weKilled    bool
		fatal       bool // QEMU printed a message after which the guest cannot run
		stoppedHere bool // stopAtHello: the hello record arrived
	)
	var stopHello <-chan struct{}
	if cfg.stopAtHello {
		stopHello = helloSeen
	}
	select {
	case werr = <-waitErr:
	case <-timer.C:
		timedOut, weKilled = true, true
	case <-ctx.Done():
		canceled, weKilled = true, true
	case <-corrupt:
		weKilled = true
	case <-stderr.fatal:
		// QEMU pauses the VM and waits: give it a moment to finish its
		// register dump on stderr, then stop it.
		fatal, weKilled = true, true
		select {
		case werr = <-waitErr:
			weKilled = false
		case <-time.After(200 * time.Millisecond):
		}
	case <-stopHello:
		stoppedHere, weKilled = true, true
	}
	if weKilled {
		_ = cmd.Process.Kill()
		werr = <-waitErr
	}
	res.Stderr = stderr.close()
	res.Elapsed = time.Since(res.Start)
	close(exited)
	<-resultsDone
	<-consoleDone

	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		res.waitStatus, res.haveStatus = st, true
		if !st.Signaled() {
			res.ExitCode = st.ExitStatus()
		}
	}
	res.Splats = FindSplats(res.Console)
	if stoppedHere {
		return res, nil
	}
	return res, classify(&cfg, res, classifyIn{
		timeout: timeout, timedOut: timedOut, canceled: canceled, ctxErr: ctx.Err(),
		weKilled: weKilled, fatal: fatal, werr: werr, decErr: decErr,
	})
}

func deliver(cfg *Config, res *Result, r channel.Record) {
	res.Records = append(res.Records, r)
	if r.Kind == guestapi.KindHello && res.Hello == nil {
		res.HelloAfter = time.Since(res.Start)
		var h guestapi.Hello
		if err := r.Decode(&h); err == nil {
			res.Hello = &h
		}
	}
	if cfg.RecordLog != nil {
		if b, err := json.Marshal(r); err == nil {
			_, _ = cfg.RecordLog.Write(append(b, '\n'))
			if s, ok := cfg.RecordLog.(interface{ Sync() error }); ok {
				_ = s.Sync()
			}
		}
	}
	if cfg.OnRecord != nil {
		cfg.OnRecord(r)
	}
}

type classifyIn struct {
	timeout            time.Duration
	timedOut, canceled bool
	ctxErr             error
	weKilled, fatal    bool
	werr, decErr       error
}

const tailLines = 25

// stderrTail is how many of QEMU's last stderr lines an error quotes.
const stderrTail = 12

// qemuTerminating is QEMU's own line when it exits on a signal it caught
// (SIGTERM, SIGINT, SIGHUP): it exits normally after printing it.
var qemuTerminating = regexp.MustCompile(`terminating on signal (\d+)(?: from pid (\d+)(?: \(([^)]*)\))?)?`)

// crashSignals are the signals QEMU raises itself when it fails: an
// assertion (SIGABRT) or a fault.
var crashSignals = map[syscall.Signal]bool{syscall.SIGABRT: true, syscall.SIGSEGV: true, syscall.SIGBUS: true,
	syscall.SIGILL: true, syscall.SIGFPE: true, syscall.SIGTRAP: true, syscall.SIGSYS: true}

// signalName is "SIGABRT (aborted)".
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return fmt.Sprintf("%s (%v)", n, sig)
	}
	return sig.String()
}

// fatalExcerpt is QEMU's fatal message and what follows it (the register
// dump of a KVM internal error), bounded.
func fatalExcerpt(stderr string) []string {
	lines := lastLines(stderr, 1<<20)
	for i, l := range lines {
		if fatalStderr.MatchString(l) {
			lines = lines[i:]
			break
		}
	}
	if len(lines) > stderrTail {
		lines = append(lines[:stderrTail:stderrTail], fmt.Sprintf("... (%d more lines)", len(lines)-stderrTail))
	}
	return lines
}

func classify(cfg *Config, res *Result, in classifyIn) error {
	nrec := len(res.Records)
	kept := fmt.Sprintf("%d record(s) received before it are kept", nrec)
	qstderr := lastLines(res.Stderr, stderrTail)
	fail := func(kind ErrorKind, err error, lines []string, format string, args ...any) *RunError {
		return &RunError{Kind: kind, Err: err, Lines: lines, Stderr: qstderr, Msg: fmt.Sprintf(format, args...)}
	}
	firstSplat := func(kinds ...string) *Splat {
		for i := range res.Splats {
			for _, k := range kinds {
				if res.Splats[i].Kind == k {
					return &res.Splats[i]
				}
			}
		}
		return nil
	}
	var last string
	if nrec > 0 {
		last = fmt.Sprintf(" (last record: %s #%d)", res.Records[nrec-1].Kind, res.Records[nrec-1].Seq)
	}
	after := res.Elapsed.Round(time.Millisecond)
	under := fmt.Sprintf("%s -cpu %s", strings.ToUpper(orDefault(res.Accel, "?")), res.CPU)
	hello := "after the guest's hello"
	if res.Hello == nil {
		hello = "before the guest said hello"
	}
	switch {
	case in.fatal:
		ex := fatalExcerpt(res.Stderr)
		e := fail(ErrQEMUFailed, in.werr, res.Tail(5), "%s QEMU stopped the guest %s under %s, after %s: %q (QEMU pauses the VM there; tramp ended it); %s",
			cfg.Arch, hello, under, after, ex[0], kept)
		e.Stderr = ex
		return e
	case in.timedOut && res.Hello == nil:
		return fail(ErrNoHello, nil, res.Tail(tailLines),
			"%s guest hung before saying hello: no hello record within %s under %s, QEMU killed; the kernel did not boot or /init did not start (%s)", cfg.Arch, in.timeout, under, kept)
	case in.timedOut:
		return fail(ErrHung, nil, res.Tail(tailLines),
			"%s guest hung: no done record within %s%s, QEMU killed; %s", cfg.Arch, in.timeout, last, kept)
	case in.canceled:
		return fail(ErrCanceled, in.ctxErr, res.Tail(tailLines),
			"%s run canceled (%v), QEMU killed; %s", cfg.Arch, in.ctxErr, kept)
	}
	if m := qemuTerminating.FindStringSubmatch(res.Stderr); m != nil && !in.weKilled {
		who := ""
		if m[2] != "" {
			who = " from pid " + m[2]
			if m[3] != "" {
				who += " (" + m[3] + ")"
			}
		}
		sig := m[1]
		if n, err := strconv.Atoi(m[1]); err == nil {
			sig = signalName(syscall.Signal(n))
		}
		return fail(ErrKilled, in.werr, res.Tail(tailLines),
			"%s QEMU was killed from outside by signal %s%s after %s%s (QEMU: %q); %s", cfg.Arch, sig, who, after, last, strings.TrimSpace(m[0]), kept)
	}
	if st, ok := res.exitStatus(); ok && st.Signaled() && !in.weKilled {
		if crashSignals[st.Signal()] {
			return fail(ErrQEMUFailed, in.werr, res.Tail(5),
				"%s QEMU died of %s %s under %s, after %s%s; %s", cfg.Arch, signalName(st.Signal()), hello, under, after, last, kept)
		}
		return fail(ErrKilled, in.werr, res.Tail(tailLines),
			"%s QEMU was killed from outside by signal %s after %s%s (not by tramp: an operator, a supervisor or the OOM killer); %s", cfg.Arch, signalName(st.Signal()), after, last, kept)
	}
	var ce *channel.CorruptError
	if errors.As(in.decErr, &ce) {
		return fail(ErrCorrupt, in.decErr, nil,
			"%s results channel corrupted: %v; QEMU stopped; %s", cfg.Arch, ce, kept)
	}
	if s := firstSplat("panic"); s != nil {
		return fail(ErrPanic, nil, s.Excerpt, "%s guest kernel panicked%s; %s", cfg.Arch, last, kept)
	}
	if in.werr != nil {
		return fail(ErrQEMUFailed, in.werr, res.Tail(tailLines),
			"%s QEMU failed %s under %s: %v after %s; %s", cfg.Arch, hello, under, in.werr, after, kept)
	}
	var te *channel.TruncatedError
	if errors.As(in.decErr, &te) {
		return fail(ErrTruncated, in.decErr, res.Tail(tailLines),
			"%s results channel ended mid-record: %v; %s", cfg.Arch, te, kept)
	}
	if in.decErr != nil {
		return fail(ErrQEMUFailed, in.decErr, nil, "%s reading results: %v", cfg.Arch, in.decErr)
	}
	if res.Hello == nil {
		return fail(ErrNoHello, nil, res.Tail(tailLines),
			"%s guest powered off without a hello record after %s under %s: the kernel did not boot or /init failed (%d records)", cfg.Arch, after, under, nrec)
	}
	if errs := res.RecordsOf(guestapi.KindError); len(errs) > 0 {
		var ge guestapi.Error
		_ = errs[0].Decode(&ge)
		return &RunError{Kind: ErrGuest,
			Msg: fmt.Sprintf("%s guest reported an error in %s: %s", cfg.Arch, ge.Stage, ge.Message)}
	}
	if s := firstSplat("oops", "bug", "warning", "call-trace", "stall", "hung-task"); s != nil {
		return &RunError{Kind: ErrSplat, Lines: s.Excerpt,
			Msg: fmt.Sprintf("%s guest kernel reported a %s (fails the run, as in the kernel's BPF CI); %d splat(s) in total", cfg.Arch, s.Kind, len(res.Splats))}
	}
	if len(res.RecordsOf(guestapi.KindDone)) == 0 {
		return fail(ErrNoDone, nil, res.Tail(tailLines),
			"%s guest powered off without a done record%s; %s", cfg.Arch, last, kept)
	}
	return nil
}

func (r *Result) exitStatus() (syscall.WaitStatus, bool) {
	return r.waitStatus, r.haveStatus
}
