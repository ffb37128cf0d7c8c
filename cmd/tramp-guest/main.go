package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bpftramp/tramp/cmd/tramp-guest/bpfobs"
	"github.com/bpftramp/tramp/vm/channel"
	"github.com/bpftramp/tramp/vm/guestapi"
)

// jobFunc runs one job kind. It emits its own records through g.enc; the
// caller sends "done" when it returns nil and "error" otherwise.
type jobFunc func(g *guest, job guestapi.Job) error

// jobs maps job kinds to their implementation.
var jobs = map[string]jobFunc{
	guestapi.JobHello: func(*guest, guestapi.Job) error { return nil },
	guestapi.JobSleep: runSleep,
	guestapi.JobPanic: runPanic,
	guestapi.JobHang:  runHang,
	// The host sends a guestapi.Batch as the job's params.
	guestapi.JobBPF: func(g *guest, job guestapi.Job) error {
		var b guestapi.Batch
		if err := json.Unmarshal(job.Params, &b); err != nil {
			return fmt.Errorf("bpf job params: %w", err)
		}
		return bpfobs.RunBatch(b, g.enc.Emit)
	},
	// The host sends a guestapi.ShapeJob as the job's params.
	guestapi.JobShapes: func(g *guest, job guestapi.Job) error {
		var j guestapi.ShapeJob
		if err := json.Unmarshal(job.Params, &j); err != nil {
			return fmt.Errorf("shapes job params: %w", err)
		}
		return bpfobs.RunShapes(j, g.enc.Emit)
	},
	// The host sends a guestapi.BenchJob as the job's params.
	guestapi.JobBench: func(g *guest, job guestapi.Job) error {
		var j guestapi.BenchJob
		if err := json.Unmarshal(job.Params, &j); err != nil {
			return fmt.Errorf("bench job params: %w", err)
		}
		return bpfobs.RunBench(j, g.enc.Emit)
	},
}

type guest struct {
	pid1        bool
	enc         *channel.Encoder
	port        *os.File
	setupErrors []string
	noJIT       bool // no net/core/bpf_jit_enable: the kernel has no BPF JIT
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tramp-guest: "+format+"\n", args...)
}

func main() {
	g := &guest{pid1: os.Getpid() == 1}
	if out := os.Getenv("TRAMP_GUEST_RESULTS"); out != "" && !g.pid1 {
		f, err := os.Create(out)
		if err != nil {
			logf("%v", err)
			os.Exit(1)
		}
		g.port, g.enc = f, channel.NewEncoder(f)
		err = g.run()
		f.Close()
		if err != nil {
			os.Exit(1)
		}
		return
	}
	if !g.pid1 {
		logf("not PID 1; set TRAMP_GUEST_RESULTS=<file> to run outside a VM")
		os.Exit(2)
	}
	defer powerOff() // also after a panic in run, once it is reported
	if err := g.run(); err != nil {
		logf("%v", err)
	}
}

// run does everything between boot and power-off. A returned error has
// already been reported on the channel where that was possible.
func (g *guest) run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("guest panic: %v\n%s", r, debug.Stack())
			g.fail("panic", err)
		}
	}()
	if g.pid1 {
		g.setup()
		port, err := findPort(guestapi.ResultsPortName, 10*time.Second)
		if err != nil {
			// Nothing can reach the host but the console; the host reports
			// a missing hello together with these lines.
			return fmt.Errorf("no results channel: %w", err)
		}
		g.port = port
		g.enc = channel.NewEncoder(port)
	}
	defer g.port.Close()

	job, jerr := readJob(guestapi.JobPath)
	hello := g.hello()
	hello.JobKind = job.Kind
	if err := g.enc.Emit(guestapi.KindHello, hello); err != nil {
		return err
	}
	if jerr != nil {
		return g.fail("job", jerr)
	}
	fn, ok := jobs[job.Kind]
	if !ok {
		return g.fail("job", fmt.Errorf("unknown job kind %q", job.Kind))
	}
	if err := fn(g, job); err != nil {
		return g.fail(job.Kind, err)
	}
	return g.enc.Emit(guestapi.KindDone, guestapi.Done{Job: job.Kind, UptimeMS: uptimeMS()})
}

// fail sends an error record and returns err.
func (g *guest) fail(stage string, err error) error {
	if g.enc != nil {
		if e := g.enc.Emit(guestapi.KindError, guestapi.Error{Stage: stage, Message: err.Error()}); e != nil {
			logf("sending error record: %v", e)
		}
	}
	logf("%s: %v", stage, err)
	return err
}

// setup mounts the pseudo file systems and sets sysctls. Failures are
// collected for the hello record, not fatal.
func (g *guest) setup() {
	mounts := []struct {
		src, dst, fstype string
		optional         bool
	}{
		{"proc", "/proc", "proc", false},
		{"sysfs", "/sys", "sysfs", false},
		{"devtmpfs", "/dev", "devtmpfs", false},
		{"securityfs", "/sys/kernel/security", "securityfs", true},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.dst, 0o755); err != nil && !m.optional {
			g.setupErrors = append(g.setupErrors, fmt.Sprintf("mkdir %s: %v", m.dst, err))
			continue
		}
		if err := syscall.Mount(m.src, m.dst, m.fstype, 0, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
			if !m.optional || !errors.Is(err, syscall.ENODEV) {
				g.setupErrors = append(g.setupErrors, fmt.Sprintf("mount %s on %s: %v", m.fstype, m.dst, err))
			}
		}
	}
	sysctls := []struct{ key, val string }{
		{"net/core/bpf_jit_enable", "1"},
		{"net/core/bpf_jit_harden", "0"},
		{"net/core/bpf_jit_kallsyms", "1"},
		{"kernel/kptr_restrict", "0"},
	}
	g.noJIT = !exists("/proc/sys/net/core/bpf_jit_enable")
	for _, s := range sysctls {
		p := "/proc/sys/" + s.key
		if g.noJIT && strings.HasPrefix(s.key, "net/core/bpf_jit_") {
			continue // no JIT, no JIT sysctls: a fact (Hello.NoJIT), not a failure
		}
		if err := os.WriteFile(p, []byte(s.val+"\n"), 0); err != nil {
			g.setupErrors = append(g.setupErrors, fmt.Sprintf("sysctl %s=%s: %v", s.key, s.val, err))
		}
	}
}

// findPort waits for the virtio-serial port with the given name and opens
// its device node for writing.
func findPort(name string, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		dirs, _ := filepath.Glob("/sys/class/virtio-ports/*")
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "name"))
			if err != nil || strings.TrimSpace(string(b)) != name {
				continue
			}
			dev := "/dev/" + filepath.Base(d)
			f, err := os.OpenFile(dev, os.O_WRONLY, 0)
			if err == nil {
				return f, nil
			}
			if time.Now().After(deadline) {
				return nil, err
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no virtio port named %q under /sys/class/virtio-ports (found %d ports)", name, len(dirs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readJob(path string) (guestapi.Job, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return guestapi.Job{Kind: guestapi.JobHello}, nil
	}
	if err != nil {
		return guestapi.Job{Kind: "?"}, err
	}
	var job guestapi.Job
	if err := json.Unmarshal(b, &job); err != nil {
		return guestapi.Job{Kind: "?"}, fmt.Errorf("parse %s: %w", path, err)
	}
	if job.Kind == "" {
		job.Kind = guestapi.JobHello
	}
	return job, nil
}

func (g *guest) hello() guestapi.Hello {
	h := guestapi.Hello{SetupErrors: g.setupErrors}
	var u syscall.Utsname
	if err := syscall.Uname(&u); err == nil {
		h.Release, h.Version, h.Machine = cstr(u.Release[:]), cstr(u.Version[:]), cstr(u.Machine[:])
	}
	h.Cmdline = readTrim("/proc/cmdline")
	h.CPUModel = cpuModel()
	h.CPUFamily = cpuFamily()
	h.ReturnThunk, h.CallDepthTracking = kernelLogFacts()
	h.Vulnerabilities = map[string]string{}
	if ents, err := os.ReadDir("/sys/devices/system/cpu/vulnerabilities"); err == nil {
		for _, e := range ents {
			h.Vulnerabilities[e.Name()] = readTrim("/sys/devices/system/cpu/vulnerabilities/" + e.Name())
		}
	}
	h.Lockdown = lockdown(readTrim("/sys/kernel/security/lockdown"))
	h.BTFVmlinux = exists("/sys/kernel/btf/vmlinux")
	h.Kcore = exists("/proc/kcore")
	h.NoJIT = g.noJIT
	h.UptimeMS = uptimeMS()
	return h
}

// cstr converts a NUL-terminated utsname field; its element type is int8 on
// some architectures and uint8 on others.
func cstr[T int8 | uint8](b []T) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// lockdown picks the bracketed (active) mode out of
// /sys/kernel/security/lockdown, e.g. "[none] integrity confidentiality".
func lockdown(s string) string {
	if s == "" {
		return "unavailable"
	}
	if i := strings.IndexByte(s, '['); i >= 0 {
		if j := strings.IndexByte(s[i:], ']'); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return s
}

// cpuFamily is the first processor's "cpu family" in /proc/cpuinfo (x86),
// 0 when there is none.
func cpuFamily() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "cpu family" {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// kernelLogFacts reads the kernel log (syslog(2) READ_ALL) for what the
// x86 mitigation setup said: the last "active return thunk: NAME" line
// (set_return_thunk in arch/x86/kernel/cpu/bugs.c) and whether call depth
// tracking was set up (callthunks_setup).
func kernelLogFacts() (thunk string, callDepth bool) {
	const readAll = 3 // SYSLOG_ACTION_READ_ALL
	buf := make([]byte, 1<<20)
	n, err := syscall.Klogctl(readAll, buf)
	if err != nil || n <= 0 {
		return "", false
	}
	return parseKernelLog(string(buf[:n]))
}

// parseKernelLog finds the last "active return thunk: NAME" and "Setting
// up call depth tracking" in kernel log text.
func parseKernelLog(log string) (thunk string, callDepth bool) {
	for _, line := range strings.Split(log, "\n") {
		if _, name, ok := strings.Cut(line, "active return thunk: "); ok {
			thunk = strings.TrimSpace(name)
		}
		if strings.Contains(line, "Setting up call depth tracking") {
			callDepth = true
		}
	}
	return thunk, callDepth
}

// cpuModel describes the first CPU in /proc/cpuinfo: its "model name" on
// x86, the MIDR fields on arm64, the ISA string on riscv64 (which says
// whether the JIT may use Zba and Zbb: riscv_has_extension_likely).
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	fields := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" && len(fields) > 1 {
			break // end of the first processor's block
		}
		k, v, ok := strings.Cut(line, ":")
		if ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if m := fields["model name"]; m != "" {
		return m
	}
	if isa := fields["isa"]; isa != "" {
		return "isa=" + isa
	}
	var parts []string
	for _, k := range []string{"CPU implementer", "CPU architecture", "CPU variant", "CPU part", "CPU revision"} {
		if v, ok := fields[k]; ok {
			parts = append(parts, strings.TrimPrefix(k, "CPU ")+"="+v)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func uptimeMS() int64 {
	s, _, _ := strings.Cut(readTrim("/proc/uptime"), " ")
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return int64(f * 1000)
}

func runSleep(g *guest, job guestapi.Job) error {
	for i := 0; i < job.Ticks; i++ {
		time.Sleep(time.Duration(job.SleepMS) * time.Millisecond)
		if err := g.enc.Emit(guestapi.KindTick, guestapi.Tick{N: i}); err != nil {
			return err
		}
	}
	return nil
}

func runPanic(g *guest, _ guestapi.Job) error {
	if err := g.enc.Emit(guestapi.KindTick, guestapi.Tick{N: 0}); err != nil {
		return err
	}
	if !g.pid1 {
		return errors.New("refusing to crash the kernel outside a VM")
	}
	syscall.Sync()
	if err := os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0); err != nil {
		return fmt.Errorf("sysrq crash: %w", err)
	}
	time.Sleep(10 * time.Second)
	return errors.New("kernel still running after sysrq crash")
}

func runHang(g *guest, _ guestapi.Job) error {
	if err := g.enc.Emit(guestapi.KindTick, guestapi.Tick{N: 0}); err != nil {
		return err
	}
	if !g.pid1 {
		return errors.New("refusing to hang outside a VM")
	}
	for {
		// A sleeping timer keeps the Go runtime from declaring a deadlock,
		// which would make PID 1 exit.
		time.Sleep(time.Hour)
	}
}

// powerOff never returns.
func powerOff() {
	syscall.Sync()
	err := syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	logf("power off failed: %v", err)
	for {
		time.Sleep(time.Hour)
	}
}
