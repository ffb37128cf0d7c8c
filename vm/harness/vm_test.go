package harness_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/vm/channel"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/harness"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
)

// These tests boot real kernels under QEMU. They run only with TRAMP_VM=1;
// then anything missing (QEMU, a kernel that cannot be fetched) fails them.

var fetcher = &kernels.Fetcher{}

func testingNoVM() bool { return os.Getenv("TRAMP_VM") != "1" }

func needVM(t *testing.T) {
	t.Helper()
	if os.Getenv("TRAMP_VM") != "1" {
		t.Skip("set TRAMP_VM=1 to boot kernels under QEMU (needs scripts/setup and network access to the Debian archive on first use)")
	}
}

func boot(t *testing.T, arch kernels.Arch, job guestapi.Job, cfg qemu.Config) (*qemu.Result, error) {
	t.Helper()
	cfg.WorkDir = t.TempDir()
	res, err := harness.Run(context.Background(), harness.Boot{Kernel: profile(), Arch: arch, Job: job, QEMU: cfg, Fetcher: fetcher})
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	if b, rerr := os.ReadFile(filepath.Join(cfg.WorkDir, "console.log")); rerr == nil && testing.Verbose() {
		t.Logf("console (%d bytes):\n%s", len(b), b)
	}
	return res, err
}

// profile is the kernel under test; TRAMP_VM_KERNEL overrides it.
func profile() string {
	if p := os.Getenv("TRAMP_VM_KERNEL"); p != "" {
		return p
	}
	return kernels.DefaultProfile
}

func TestVMHello(t *testing.T) {
	needVM(t)
	for _, arch := range kernels.Arches {
		t.Run(string(arch), func(t *testing.T) {
			t.Parallel()
			res, err := boot(t, arch, guestapi.Job{Kind: guestapi.JobHello}, qemu.Config{Timeout: 90 * time.Second})
			require.NoError(t, err)
			h := res.Hello
			t.Logf("%s %s: QEMU start→hello %s, start→exit %s (kernel uptime at hello %d ms, accel %s)",
				profile(), arch, res.HelloAfter.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond), h.UptimeMS, res.Accel)
			t.Logf("hello: release=%s machine=%s cpu=%q lockdown=%s btf=%v kcore=%v cmdline=%q setup_errors=%v",
				h.Release, h.Machine, h.CPUModel, h.Lockdown, h.BTFVmlinux, h.Kcore, h.Cmdline, h.SetupErrors)
			wantMachine := map[kernels.Arch]string{kernels.X86_64: "x86_64", kernels.ARM64: "aarch64", kernels.RISCV64: "riscv64", kernels.S390X: "s390x"}[arch]
			if h.Machine != wantMachine || h.Release == "" || !strings.Contains(h.Cmdline, "nokaslr") {
				t.Errorf("unexpected hello: %+v", h)
			}
			if !h.BTFVmlinux || !h.Kcore {
				t.Errorf("kernel lacks BTF or kcore: %+v", h)
			}
			if h.NoJIT != (arch == kernels.S390X) {
				t.Errorf("no_jit %v: Debian builds %s with%s a BPF JIT", h.NoJIT, arch, map[bool]string{true: "out", false: ""}[arch == kernels.S390X])
			}
			if len(h.SetupErrors) > 0 {
				t.Errorf("guest setup errors: %v", h.SetupErrors)
			}
			if len(h.Vulnerabilities) == 0 {
				t.Errorf("no CPU vulnerability entries")
			}
			if res.ExitCode != 0 {
				t.Errorf("QEMU exit code %d", res.ExitCode)
			}
			kinds := kindsOf(res.Records)
			if kinds != "hello done" {
				t.Errorf("records %q, want \"hello done\"", kinds)
			}
		})
	}
}

func kindsOf(recs []channel.Record) string {
	var k []string
	for _, r := range recs {
		k = append(k, r.Kind)
	}
	return strings.Join(k, " ")
}

func TestVMPanic(t *testing.T) {
	needVM(t)
	t.Parallel()
	res, err := boot(t, kernels.ARM64, guestapi.Job{Kind: guestapi.JobPanic}, qemu.Config{Timeout: 90 * time.Second})
	if !qemu.IsKind(err, qemu.ErrPanic) {
		t.Fatalf("err = %v, want a panic error", err)
	}
	t.Logf("error as reported:\n%v", err)
	if !strings.Contains(err.Error(), "Kernel panic - not syncing") || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("panic error does not quote the panic line")
	}
	if kindsOf(res.Records) != "hello tick" {
		t.Errorf("records %q, want \"hello tick\"", kindsOf(res.Records))
	}
}

func TestVMHang(t *testing.T) {
	needVM(t)
	t.Parallel()
	res, err := boot(t, kernels.X86_64, guestapi.Job{Kind: guestapi.JobHang}, qemu.Config{Timeout: 20 * time.Second})
	if !qemu.IsKind(err, qemu.ErrHung) || !strings.Contains(err.Error(), "hung") {
		t.Fatalf("err = %v, want a hung error", err)
	}
	t.Logf("error as reported:\n%v", err)
	if kindsOf(res.Records) != "hello tick" {
		t.Errorf("records %q, want \"hello tick\" kept", kindsOf(res.Records))
	}
}

func TestVMKilled(t *testing.T) {
	needVM(t)
	t.Parallel()
	var mu sync.Mutex
	pid := 0
	cfg := qemu.Config{
		Timeout: 90 * time.Second,
		OnStart: func(p int) { mu.Lock(); pid = p; mu.Unlock() },
		OnRecord: func(r channel.Record) {
			if r.Kind == guestapi.KindTick {
				mu.Lock()
				defer mu.Unlock()
				// Stands in for an operator or the OOM killer.
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		},
	}
	res, err := boot(t, kernels.ARM64, guestapi.Job{Kind: guestapi.JobHang}, cfg)
	if !qemu.IsKind(err, qemu.ErrKilled) || !strings.Contains(err.Error(), "killed from outside") {
		t.Fatalf("err = %v, want a killed error", err)
	}
	t.Logf("error as reported:\n%v", err)
	if kindsOf(res.Records) != "hello tick" {
		t.Errorf("records %q, want \"hello tick\" kept", kindsOf(res.Records))
	}
}

// TestVMQEMUOwnWords: a QEMU that refuses its command line (an impossible
// -cpu) and one that aborts (a wrapper raising SIGABRT after QEMU's own
// assertion text, as QEMU 7.2 does on MSR 0x10a) fail with QEMU's words
// quoted, and neither is "killed from outside".
func TestVMQEMUOwnWords(t *testing.T) {
	needVM(t)
	t.Run("impossible cpu", func(t *testing.T) {
		_, err := boot(t, kernels.X86_64, guestapi.Job{Kind: guestapi.JobHello},
			qemu.Config{Timeout: 60 * time.Second, Accel: qemu.AccelTCG, CPU: "no-such-cpu"})
		if !qemu.IsKind(err, qemu.ErrQEMUFailed) {
			t.Fatalf("err = %v, want a QEMU failure", err)
		}
		t.Logf("error as reported:\n%v", err)
		for _, w := range []string{"exit status 1", "qemu stderr:", "no-such-cpu"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error lacks %q", w)
			}
		}
	})
	t.Run("abort", func(t *testing.T) {
		wrapper := filepath.Join(t.TempDir(), "qemu-wrapper")
		script := "#!/bin/sh\necho \"qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\" >&2\n" +
			"echo \"qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion failed.\" >&2\nkill -ABRT $$\n"
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := boot(t, kernels.X86_64, guestapi.Job{Kind: guestapi.JobHello},
			qemu.Config{Timeout: 60 * time.Second, Accel: qemu.AccelTCG, Binary: wrapper})
		if !qemu.IsKind(err, qemu.ErrQEMUFailed) || strings.Contains(err.Error(), "killed from outside") {
			t.Fatalf("err = %v, want QEMU's own failure", err)
		}
		for _, w := range []string{"died of SIGABRT", "failed to set MSR 0x10a to 0x69", "kvm_buf_set_msrs"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error lacks %q:\n%v", w, err)
			}
		}
	})
}
