package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/bpftramp/tramp/vm/channel"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/harness"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
)

// Options describes a live run.
type Options struct {
	// Kernel is a profile name or a kernel image path.
	Kernel string
	Arches []kernels.Arch
	Job    guestapi.BenchJob
	// Timeout bounds each boot (0: 10 minutes).
	Timeout time.Duration
	Fetcher *kernels.Fetcher
	// Progress, when set, receives one line per finished configuration.
	Progress func(arch kernels.Arch, line string)
	// WorkDir keeps each boot's console.log and results.bin under
	// WorkDir/<arch> when set.
	WorkDir string
	// Accel is qemu.Config.Accel: "" for $TRAMP_ACCEL or auto.
	Accel string
}

// ArchRun is what one boot measured.
type ArchRun struct {
	Kernel  string
	Arch    kernels.Arch
	Accel   string
	Hello   *guestapi.Hello
	Start   *guestapi.BenchStart
	Results []guestapi.BenchResult
	// Attach are the attach-cost points (BenchJob.AttachCounts).
	Attach []guestapi.BenchAttach
	// HelloAfter is QEMU start to the hello record, Elapsed the whole
	// boot.
	HelloAfter, Elapsed time.Duration
	// GuestError is the guest's error record, if any; Err a failure of
	// the boot itself.
	GuestError string
	Err        error
	Console    []string
}

// collector turns the record stream of a bench boot into an ArchRun.
type collector struct {
	run      *ArchRun
	progress func(string)
	err      error
}

func (c *collector) onRecord(r channel.Record) {
	decode := func(v any) bool { return r.DecodeKeep(v, &c.err) }
	switch r.Kind {
	case guestapi.KindHello:
		var h guestapi.Hello
		if decode(&h) {
			c.run.Hello = &h
		}
	case guestapi.KindBenchStart:
		var s guestapi.BenchStart
		if decode(&s) {
			c.run.Start = &s
			if c.progress != nil {
				c.progress(fmt.Sprintf("%s, %d calls x %d reps, baseline %.0f ns/call at calibration", s.Target, s.Iters, s.Reps, s.CalibrationNs))
			}
		}
	case guestapi.KindBenchResult:
		var res guestapi.BenchResult
		if decode(&res) {
			c.run.Results = append(c.run.Results, res)
			if c.progress != nil {
				if res.Errno != "ok" {
					c.progress(fmt.Sprintf("%s: %s at %s", res.Config, res.Errno, res.Stage))
				} else {
					c.progress(fmt.Sprintf("%s: median %.1f ns/call, programs ran %.2f times per call", res.Config, Summarize(res.NsPerCall).Median, res.RunsPerCall))
				}
			}
		}
	case guestapi.KindBenchAttach:
		var a guestapi.BenchAttach
		if decode(&a) {
			c.run.Attach = append(c.run.Attach, a)
			if c.progress != nil {
				if a.Errno != "ok" {
					c.progress(fmt.Sprintf("attach %d functions (%s): %s at %s", a.N, a.Way, a.Errno, a.Stage))
				} else {
					c.progress(fmt.Sprintf("attach %d functions (%s): median %.2f ms, detach %.2f ms", a.N, a.Way,
						Summarize(a.AttachNs).Median/1e6, Summarize(a.DetachNs).Median/1e6))
				}
			}
		}
	case guestapi.KindBenchRound:
		var rd guestapi.BenchRound
		if decode(&rd) && c.progress != nil {
			c.progress(fmt.Sprintf("round %d done in %.1fs", rd.Round+1, float64(rd.Millis)/1000))
		}
	case guestapi.KindError:
		var e guestapi.Error
		if decode(&e) {
			c.run.GuestError = e.Stage + ": " + e.Message
		}
	}
}

// benchJob is the guest job of a live run.
func benchJob(j guestapi.BenchJob) (guestapi.Job, error) {
	params, err := json.Marshal(j)
	if err != nil {
		return guestapi.Job{}, err
	}
	return guestapi.Job{Kind: guestapi.JobBench, Params: params}, nil
}

// RunArch boots one kernel on one arch and runs the bench job.
func RunArch(ctx context.Context, o Options, a kernels.Arch) *ArchRun {
	run := &ArchRun{Kernel: o.Kernel, Arch: a}
	job, err := benchJob(o.Job)
	if err != nil {
		run.Err = err
		return run
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	col := &collector{run: run}
	if o.Progress != nil {
		col.progress = func(s string) { o.Progress(a, s) }
	}
	wd := ""
	if o.WorkDir != "" {
		wd = o.WorkDir + "/" + string(a)
	}
	res, err := harness.Run(ctx, harness.Boot{
		Kernel: o.Kernel, Arch: a, Job: job, Fetcher: o.Fetcher,
		QEMU: qemu.Config{Timeout: timeout, WorkDir: wd, Accel: o.Accel, OnRecord: col.onRecord},
	})
	if res != nil {
		run.Accel, run.HelloAfter, run.Elapsed, run.Console = res.Accel, res.HelloAfter, res.Elapsed, res.Console
	}
	switch {
	case err != nil:
		run.Err = err
	case col.err != nil:
		run.Err = col.err
	case run.GuestError != "":
		run.Err = fmt.Errorf("guest: %s", run.GuestError)
	case run.Start == nil:
		run.Err = fmt.Errorf("the guest sent no %s record", guestapi.KindBenchStart)
	}
	return run
}

// Live boots o.Kernel on every arch of o side by side (one vCPU each, as
// tramp vm check does) and returns one run per arch, in o.Arches order.
func Live(ctx context.Context, o Options) []*ArchRun {
	out := make([]*ArchRun, len(o.Arches))
	var wg sync.WaitGroup
	for i, a := range o.Arches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = RunArch(ctx, o, a)
		}()
	}
	wg.Wait()
	return out
}
