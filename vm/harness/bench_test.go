package harness_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/harness"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
)

// BenchmarkBootHello boots the hello job and reports QEMU start→hello and
// start→exit per boot. Sub-benchmarks: each arch alone, and both at once
// (the 2-core budget: one vCPU each).
func BenchmarkBootHello(b *testing.B) {
	if testingNoVM() {
		b.Skip("set TRAMP_VM=1 to boot kernels under QEMU")
	}
	ctx := context.Background()
	prepared := map[kernels.Arch]qemu.Config{}
	for _, a := range kernels.Arches {
		cfg, _, err := harness.Prepare(ctx, harness.Boot{Kernel: profile(), Arch: a, Job: guestapi.Job{Kind: guestapi.JobHello}, Fetcher: fetcher,
			QEMU: qemu.Config{Timeout: 2 * time.Minute}}, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		prepared[a] = cfg
	}
	report := func(b *testing.B, name string, hello, exit time.Duration) {
		b.ReportMetric(float64(hello.Milliseconds())/float64(b.N), name+"-hello-ms/op")
		b.ReportMetric(float64(exit.Milliseconds())/float64(b.N), name+"-exit-ms/op")
	}
	// Per accelerator: TCG for every arch, KVM for the host's arch where
	// the probe shows that it runs the guest.
	for _, accel := range []string{qemu.AccelTCG, qemu.AccelKVM} {
		for _, a := range kernels.Arches {
			cfg := prepared[a]
			cfg.Accel = accel
			b.Run(accel+"/"+string(a), func(b *testing.B) {
				if accel == qemu.AccelKVM {
					probe := cfg
					probe.Accel = qemu.AccelAuto
					if d, err := qemu.Decide(ctx, probe); err != nil || d.Accel != qemu.AccelKVM {
						b.Skipf("no KVM for this guest here: %v%s", err, d.Reason)
					}
				}
				var hello, exit time.Duration
				for i := 0; i < b.N; i++ {
					res, err := qemu.Run(ctx, cfg)
					if err != nil {
						b.Fatal(err)
					}
					hello += res.HelloAfter
					exit += res.Elapsed
				}
				report(b, string(a), hello, exit)
			})
		}
	}
	b.Run("tcg/both", func(b *testing.B) {
		sums := map[kernels.Arch][2]time.Duration{}
		var mu sync.Mutex
		for i := 0; i < b.N; i++ {
			var wg sync.WaitGroup
			for _, a := range kernels.Arches {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cfg := prepared[a]
					cfg.Accel = qemu.AccelTCG
					res, err := qemu.Run(ctx, cfg)
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					s := sums[a]
					sums[a] = [2]time.Duration{s[0] + res.HelloAfter, s[1] + res.Elapsed}
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
		for a, s := range sums {
			report(b, string(a), s[0], s[1])
		}
	})
}
