package record

import (
	"context"
	"github.com/bpftramp/tramp/vm/recording"
	"time"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/vm/channel"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/harness"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
)

// Machine is what a VM run boots: the kernel, the arch and the QEMU
// settings, shared by case boots (Boot) and shapes boots (ShapeBoot).
type Machine struct {
	// Kernel is a profile name or a kernel image path.
	Kernel string
	// Profile names the model profile the recordings are filed under
	// (the profile itself when Kernel is one, Kernel when empty).
	Profile string
	Arch    kernels.Arch
	// Timeout bounds the whole boot; 0 takes the boot kind's default.
	Timeout time.Duration
	KASLR   bool
	// CPU is QEMU's -cpu model ("" for the default); Append are extra
	// kernel command-line words. Both are kept in the recordings.
	CPU    string
	Append []string
	// Accel is qemu.Config.Accel: "" for $TRAMP_ACCEL or auto.
	Accel string
	// WorkDir keeps console.log and results.bin when set.
	WorkDir string
	Fetcher *kernels.Fetcher
}

// profile is the profile recordings are filed under.
func (m Machine) profile() string {
	if m.Profile == "" {
		return m.Kernel
	}
	return m.Profile
}

// harnessBoot is the harness's view of a run of job on m.
func (m Machine) harnessBoot(job guestapi.Job, timeout time.Duration, col *collector, onRecord func(channel.Record), onStart func(int)) harness.Boot {
	if m.Timeout != 0 {
		timeout = m.Timeout
	}
	return harness.Boot{
		Kernel:  m.Kernel,
		Arch:    m.Arch,
		Job:     job,
		Fetcher: m.Fetcher,
		QEMU: qemu.Config{
			Timeout:  timeout,
			KASLR:    m.KASLR,
			CPU:      m.CPU,
			Accel:    m.Accel,
			Append:   m.Append,
			WorkDir:  m.WorkDir,
			OnRecord: onRecord,
			OnStart:  onStart,
			// Recordings carry the accelerator from their first write on:
			// a KVM boot's are filed under their own name (VariantOf).
			OnDecision: func(d qemu.Decision) { col.accel = d.Accel },
		},
	}
}

// Boot is one VM run of several cases on one kernel and arch.
type Boot struct {
	Machine
	Cases []*cases.Case
	// Extra are guest jobs run after the cases (the harness's own tests).
	Extra []guestapi.NamedJob
	// OnStart is called with QEMU's process id.
	OnStart func(pid int)
	// OnRecording is called as soon as a case's recording is complete
	// (or cut short), before the boot ends, so that a crash later in the
	// boot loses nothing already finished.
	OnRecording func(*recording.Recording)
}

// Result is what a boot produced.
type Result struct {
	Recordings []*recording.Recording
	Hello      *guestapi.Hello
	HelloAfter time.Duration
	Elapsed    time.Duration
	Console    []string
	// Accel and CPU are the boot's accelerator ("kvm" or "tcg") and QEMU
	// -cpu value, as qemu decided them; Start is when QEMU started.
	Accel, CPU string
	Start      time.Time
	// Splats are the kernel's oopses, warnings and panics on the console.
	Splats []qemu.Splat
}

// fill copies what a boot's QEMU result says into r.
func (r *Result) fill(res *qemu.Result) {
	r.Hello, r.HelloAfter, r.Elapsed, r.Console = res.Hello, res.HelloAfter, res.Elapsed, res.Console
	r.Accel, r.CPU, r.Start, r.Splats = res.Accel, res.CPU, res.Start, res.Splats
}

// collector turns the record stream into per-case recordings.
type collector struct {
	b     *Boot
	accel string // the boot's accelerator, known before QEMU starts
	facts recording.KernelFacts
	cur   *recording.Recording
	out   []*recording.Recording
	err   error
}

func (c *collector) finish() {
	if c.cur == nil {
		return
	}
	c.out = append(c.out, c.cur)
	if c.b.OnRecording != nil {
		c.b.OnRecording(c.cur)
	}
	c.cur = nil
}

func (c *collector) onRecord(r channel.Record) {
	decode := func(v any) bool { return r.DecodeKeep(v, &c.err) }
	switch r.Kind {
	case guestapi.KindHello:
		var h guestapi.Hello
		if decode(&h) {
			c.facts = recording.KernelFacts{Release: h.Release, Cmdline: h.Cmdline, CPUModel: h.CPUModel, CPUFamily: h.CPUFamily,
				Vulnerabilities: h.Vulnerabilities, ReturnThunk: h.ReturnThunk, CallDepthTracking: h.CallDepthTracking, Accel: c.accel}
		}
		return
	case guestapi.KindCase:
		var cs guestapi.CaseStart
		if !decode(&cs) {
			return
		}
		c.finish()
		c.cur = &recording.Recording{Schema: recording.Schema, Case: cs.Name, Profile: c.b.Profile, Arch: string(c.b.Arch), KASLR: c.b.KASLR,
			CPU: c.b.CPU, Append: c.b.Append, Kernel: c.facts}
		return
	case guestapi.KindDone, guestapi.KindError, guestapi.KindLog, guestapi.KindTick:
		c.finish()
		return
	}
	if c.cur == nil {
		return
	}
	switch r.Kind {
	case guestapi.KindStart:
		var s guestapi.Start
		if decode(&s) {
			c.cur.Start = &s
		}
	case guestapi.KindStep:
		var s guestapi.Step
		if decode(&s) {
			c.cur.Steps = append(c.cur.Steps, s)
		}
	case guestapi.KindObservations:
		var o guestapi.Observations
		if decode(&o) {
			c.cur.Observations = append(c.cur.Observations, o)
		}
	case guestapi.KindCapture:
		var cp guestapi.Capture
		if decode(&cp) {
			trimCapture(&cp, c.cur.Arch)
			c.cur.Captures = append(c.cur.Captures, cp)
		}
	case guestapi.KindJobDone:
		c.cur.Complete = true
		c.finish()
	case guestapi.KindCaseError:
		var e guestapi.CaseError
		if decode(&e) {
			c.cur.Errors = append(c.cur.Errors, e.Message)
		}
		c.finish()
	}
}

// defaultTimeout is the bound of a boot that names none: the boot, then
// per case 20 s and 2 s per step under TCG. A step can take a second and
// more (riscv64 under TCG: 1.3 s per step of a 150-step fuzz sequence,
// each capturing its images), so a long case is not cut off as hung.
func defaultTimeout(cs []*cases.Case) time.Duration {
	d := 90 * time.Second
	for _, c := range cs {
		d += 20*time.Second + time.Duration(len(c.Steps))*2*time.Second
	}
	return d
}

// Run boots the kernel once and runs every case of b in it. The returned
// result holds every recording that was completed, also when err is set.
func Run(ctx context.Context, b Boot) (*Result, error) {
	job, err := batchJob(b.Cases, b.Extra)
	if err != nil {
		return nil, err
	}
	b.Profile = b.profile()
	col := &collector{b: &b}
	res, err := harness.Run(ctx, b.harnessBoot(job, defaultTimeout(b.Cases), col, col.onRecord, b.OnStart))
	col.finish()
	out := &Result{Recordings: col.out}
	if res != nil {
		out.fill(res)
		for _, r := range out.Recordings {
			r.Kernel.Accel = res.Accel
		}
	}
	if err == nil {
		err = col.err
	}
	return out, err
}
