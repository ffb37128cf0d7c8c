// Package qemu boots a kernel and initramfs under QEMU and watches the run:
// kernel messages arrive on the serial console (captured from QEMU's
// standard output), results on a dedicated virtio-serial port backed by a
// file, decoded as they arrive with package channel.
//
// Run turns every way a boot can go wrong into a *RunError with a Kind and
// the console lines that explain it: QEMU missing, the guest hung (timeout),
// the kernel never said hello, a panic, a kernel WARNING/BUG/Oops splat (as
// in the kernel's BPF CI, a warning fails the run), a corrupted or truncated
// record, QEMU killed from outside, or the guest's own error record. The
// Result is returned in every case and keeps each record received before the
// failure.
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
	"strings"
	"syscall"
	"time"

	"github.com/bpftramp/tramp/vm/channel"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/kernels"
)

// Accelerator choices for Config.Accel.
const (
	AccelAuto = ""    // KVM when /dev/kvm is usable and the arch matches the host, else TCG
	AccelTCG  = "tcg" // always emulate
	AccelKVM  = "kvm" // require KVM
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
	Accel    string // AccelAuto, AccelTCG or AccelKVM
	KASLR    bool   // false adds "nokaslr"
	Verbose  bool   // false adds "quiet" (warnings and worse still print)
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
}

// Binary returns the QEMU executable name for arch.
func Binary(a kernels.Arch) string {
	if a == kernels.ARM64 {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

// KVMUsable reports whether /dev/kvm can be opened for reading and writing.
func KVMUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// escapeOpt escapes commas for QEMU's option syntax.
func escapeOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// Cmdline is the kernel command line for c.
func (c *Config) Cmdline() string {
	console := "console=ttyS0"
	if c.Arch == kernels.ARM64 {
		console = "console=ttyAMA0"
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

// Command returns QEMU's argv (argv[0] is the binary name) for c, with the
// results port backed by resultsPath. kvm says whether to use KVM.
func (c *Config) Command(resultsPath string, kvm bool) ([]string, error) {
	if c.Arch != kernels.X86_64 && c.Arch != kernels.ARM64 {
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
	accel, cpu := "tcg", "max"
	if c.Arch == kernels.ARM64 {
		// Plain "max" emulates pointer authentication with QARMA5, 2-2.5x
		// slower under TCG; the implementation-defined algorithm is fast.
		cpu = "max,pauth-impdef=on"
	}
	if kvm {
		accel, cpu = "kvm", "host"
	}
	if c.CPU != "" {
		cpu = c.CPU
	}
	machine := "q35"
	if c.Arch == kernels.ARM64 {
		machine = "virt"
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
		"-device", "virtio-serial-pci",
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
	Kind  ErrorKind
	Msg   string
	Lines []string // console lines that explain it
	Err   error    // underlying error, if any
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
	Accel       string
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
	pkg := "qemu-system-x86"
	if a == kernels.ARM64 {
		pkg = "qemu-system-arm"
	}
	return &RunError{Kind: ErrQEMUMissing, Err: err,
		Msg: fmt.Sprintf("%s not found (%v): run scripts/setup, which installs the Debian packages qemu-system-x86 and qemu-system-arm (this one comes from %s)", bin, err, pkg)}
}

// Run boots the VM described by cfg and waits until QEMU exits or the
// timeout expires.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	res := &Result{ExitCode: -1}
	kvm := false
	switch cfg.Accel {
	case AccelAuto:
		kvm = KVMUsable() && kernels.HostArch() == cfg.Arch
	case AccelKVM:
		if !KVMUsable() {
			return res, &RunError{Kind: ErrQEMUFailed, Msg: "KVM requested but /dev/kvm is not usable"}
		}
		kvm = true
	case AccelTCG:
	default:
		return res, fmt.Errorf("qemu: unknown accelerator %q", cfg.Accel)
	}
	res.Accel = "tcg"
	if kvm {
		res.Accel = "kvm"
	}
	for _, p := range []string{cfg.Kernel, cfg.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return res, fmt.Errorf("qemu: %w", err)
		}
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
	argv, err := cfg.Command(resultsPath, kvm)
	if err != nil {
		return res, err
	}
	res.Argv = argv
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
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 64 << 10}
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
						deliver(&cfg, res, r)
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
		werr     error
		timedOut bool
		canceled bool
		weKilled bool
	)
	select {
	case werr = <-waitErr:
	case <-timer.C:
		timedOut, weKilled = true, true
	case <-ctx.Done():
		canceled, weKilled = true, true
	case <-corrupt:
		weKilled = true
	}
	if weKilled {
		_ = cmd.Process.Kill()
		werr = <-waitErr
	}
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
	return res, classify(&cfg, res, classifyIn{
		timeout: timeout, timedOut: timedOut, canceled: canceled, ctxErr: ctx.Err(),
		weKilled: weKilled, werr: werr, decErr: decErr, stderr: stderr.String(),
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
	weKilled           bool
	werr, decErr       error
	stderr             string
}

const tailLines = 25

func classify(cfg *Config, res *Result, in classifyIn) error {
	nrec := len(res.Records)
	kept := fmt.Sprintf("%d record(s) received before it are kept", nrec)
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
	switch {
	case in.timedOut && res.Hello == nil:
		return &RunError{Kind: ErrNoHello, Lines: res.Tail(tailLines),
			Msg: fmt.Sprintf("%s guest hung before saying hello: no hello record within %s, QEMU killed; the kernel did not boot or /init did not start (%s)", cfg.Arch, in.timeout, kept)}
	case in.timedOut:
		return &RunError{Kind: ErrHung, Lines: res.Tail(tailLines),
			Msg: fmt.Sprintf("%s guest hung: no done record within %s%s, QEMU killed; %s", cfg.Arch, in.timeout, last, kept)}
	case in.canceled:
		return &RunError{Kind: ErrCanceled, Err: in.ctxErr, Lines: res.Tail(tailLines),
			Msg: fmt.Sprintf("%s run canceled (%v), QEMU killed; %s", cfg.Arch, in.ctxErr, kept)}
	}
	if st, ok := res.exitStatus(); ok && st.Signaled() && !in.weKilled {
		return &RunError{Kind: ErrKilled, Lines: res.Tail(tailLines),
			Msg: fmt.Sprintf("%s QEMU was killed from outside by signal %v after %s%s; %s", cfg.Arch, st.Signal(), res.Elapsed.Round(time.Millisecond), last, kept)}
	}
	var ce *channel.CorruptError
	if errors.As(in.decErr, &ce) {
		return &RunError{Kind: ErrCorrupt, Err: in.decErr,
			Msg: fmt.Sprintf("%s results channel corrupted: %v; QEMU stopped; %s", cfg.Arch, ce, kept)}
	}
	if s := firstSplat("panic"); s != nil {
		return &RunError{Kind: ErrPanic, Lines: s.Excerpt,
			Msg: fmt.Sprintf("%s guest kernel panicked%s; %s", cfg.Arch, last, kept)}
	}
	if in.werr != nil {
		lines := res.Tail(tailLines)
		if s := strings.TrimSpace(in.stderr); s != "" {
			lines = append(lines, "qemu stderr: "+s)
		}
		return &RunError{Kind: ErrQEMUFailed, Err: in.werr, Lines: lines,
			Msg: fmt.Sprintf("%s QEMU failed: %v; %s", cfg.Arch, in.werr, kept)}
	}
	var te *channel.TruncatedError
	if errors.As(in.decErr, &te) {
		return &RunError{Kind: ErrTruncated, Err: in.decErr, Lines: res.Tail(tailLines),
			Msg: fmt.Sprintf("%s results channel ended mid-record: %v; %s", cfg.Arch, te, kept)}
	}
	if in.decErr != nil {
		return &RunError{Kind: ErrQEMUFailed, Err: in.decErr, Msg: fmt.Sprintf("%s reading results: %v", cfg.Arch, in.decErr)}
	}
	if res.Hello == nil {
		return &RunError{Kind: ErrNoHello, Lines: res.Tail(tailLines),
			Msg: fmt.Sprintf("%s guest powered off without a hello record: the kernel did not boot or /init failed (%d records)", cfg.Arch, nrec)}
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
		return &RunError{Kind: ErrNoDone, Lines: res.Tail(tailLines),
			Msg: fmt.Sprintf("%s guest powered off without a done record%s; %s", cfg.Arch, last, kept)}
	}
	return nil
}

func (r *Result) exitStatus() (syscall.WaitStatus, bool) {
	return r.waitStatus, r.haveStatus
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	_, err := l.w.Write(q)
	return len(p), err
}
