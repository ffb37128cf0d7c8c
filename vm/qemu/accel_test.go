package qemu

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/vm/kernels"
)

// fakeHost makes this process look like a host of arch whose /dev/kvm
// opens with kvmErr, and forgets earlier probes.
func fakeHost(t *testing.T, arch kernels.Arch, kvmErr error) {
	t.Helper()
	oldOpen, oldArch := kvmOpen, hostArch
	kvmOpen = func() error { return kvmErr }
	hostArch = func() kernels.Arch { return arch }
	resetProbes()
	t.Setenv("TRAMP_CACHE_DIR", t.TempDir())
	t.Setenv(EnvReprobe, "")
	t.Cleanup(func() { kvmOpen, hostArch = oldOpen, oldArch; resetProbes() })
}

func resetProbes() {
	probeMu.Lock()
	defer probeMu.Unlock()
	probeCache = map[probeKey]*probeEntry{}
}

func fakeConfig(t *testing.T, mode string, arch kernels.Arch) (Config, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"k", "i"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	t.Setenv("TRAMP_FAKE_QEMU", mode)
	t.Setenv(EnvAccel, "")
	var log bytes.Buffer
	return Config{Arch: arch, Kernel: filepath.Join(dir, "k"), Initrd: filepath.Join(dir, "i"),
		Binary: os.Args[0], Timeout: 10 * time.Second, Log: &log}, &log
}

func argAfter(argv []string, flag string) string {
	if i := slices.Index(argv, flag); i >= 0 && i+1 < len(argv) {
		return argv[i+1]
	}
	return ""
}

// TestProbeArchCapabilitiesQuirk: QEMU aborting on MSR 0x10a under
// -cpu host is retried with -arch-capabilities, and the run's argv
// carries it.
func TestProbeArchCapabilitiesQuirk(t *testing.T) {
	fakeHost(t, kernels.X86_64, nil)
	cfg, log := fakeConfig(t, "msr-quirk", kernels.X86_64)
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	if got := argAfter(res.Argv, "-accel"); got != "kvm" {
		t.Errorf("-accel %s, want kvm", got)
	}
	if got := argAfter(res.Argv, "-cpu"); got != "host,-arch-capabilities" {
		t.Errorf("-cpu %s, want host,-arch-capabilities", got)
	}
	if res.Accel != AccelKVM || !strings.Contains(res.AccelReason, "MSR 0x10a") {
		t.Errorf("accel %s, reason %q", res.Accel, res.AccelReason)
	}
	// Said once, even for a second run.
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "\n"); n != 1 || !strings.Contains(log.String(), "KVM, -cpu host,-arch-capabilities") {
		t.Errorf("decision log (%d lines):\n%s", n, log)
	}
}

// TestProbeKeptOnDisk: a later process with the same host facts takes
// the probe's result from disk instead of booting again; another CPU
// model is probed afresh.
func TestProbeKeptOnDisk(t *testing.T) {
	fakeHost(t, kernels.X86_64, nil)
	cfg, _ := fakeConfig(t, "msr-quirk", kernels.X86_64)
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	resetProbes()                       // a new process
	t.Setenv("TRAMP_FAKE_QEMU", "fail") // a probe boot now would fail
	d, err := Decide(context.Background(), cfg)
	require.NoError(t, err)
	if d.Accel != AccelKVM || d.CPU != "host,-arch-capabilities" || !strings.Contains(d.Reason, "probed ") {
		t.Errorf("from disk: %+v", d)
	}
	cfg.CPU = "EPYC-Rome"
	if d, _ = Decide(context.Background(), cfg); d.Accel != AccelTCG || !strings.Contains(d.Reason, "could not load kernel") {
		t.Errorf("another CPU was not probed again: %+v", d)
	}
	resetProbes()
	t.Setenv(EnvReprobe, "1")
	cfg.CPU = ""
	if d, _ = Decide(context.Background(), cfg); d.Accel != AccelTCG {
		t.Errorf("%s=1 did not probe again: %+v", EnvReprobe, d)
	}
}

// TestForcedKVM: --accel kvm probes too (quirks get their fix) and fails
// with the probe's words instead of falling back.
func TestForcedKVM(t *testing.T) {
	fakeHost(t, kernels.X86_64, nil)
	cfg, _ := fakeConfig(t, "msr-quirk", kernels.X86_64)
	cfg.Accel = AccelKVM
	res, err := Run(context.Background(), cfg)
	if err != nil || argAfter(res.Argv, "-cpu") != "host,-arch-capabilities" {
		t.Fatalf("err %v, argv %q", err, res.Argv)
	}
	resetProbes()
	t.Setenv("TRAMP_CACHE_DIR", t.TempDir())
	t.Setenv("TRAMP_FAKE_QEMU", "pvm")
	_, err = Run(context.Background(), cfg)
	if !IsKind(err, ErrQEMUFailed) || !strings.Contains(err.Error(), "KVM requested but it does not run this guest") ||
		!strings.Contains(err.Error(), "KVM internal error") {
		t.Fatalf("err = %v", err)
	}
}

// TestProbeFallsBackToTCG: a KVM that opens but cannot run the kernel
// (kvm-pvm's "KVM internal error") leaves the run on TCG, quickly, with
// QEMU's words as the reason.
func TestProbeFallsBackToTCG(t *testing.T) {
	fakeHost(t, kernels.X86_64, nil)
	cfg, log := fakeConfig(t, "pvm", kernels.X86_64)
	start := time.Now()
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	if res.Accel != AccelTCG || argAfter(res.Argv, "-accel") != "tcg" || argAfter(res.Argv, "-cpu") != "max" {
		t.Errorf("accel %s, argv %q", res.Accel, res.Argv)
	}
	for _, w := range []string{"KVM probe with -cpu host failed", "QEMU said: ", "KVM internal error. Suberror: 1"} {
		if !strings.Contains(res.AccelReason, w) || !strings.Contains(log.String(), w) {
			t.Errorf("reason %q / log %q lacks %q", res.AccelReason, log, w)
		}
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("fallback took %s: the probe waited for a paused QEMU", d)
	}
}

func TestDecideWithoutProbe(t *testing.T) {
	cases := []struct {
		name    string
		host    kernels.Arch
		kvmErr  error
		arch    kernels.Arch
		accel   string // Config.Accel
		env     string // $TRAMP_ACCEL
		cpu     string
		want    Decision
		wantErr string
	}{
		{name: "other arch", host: kernels.X86_64, arch: kernels.ARM64,
			want: Decision{Accel: "tcg", CPU: "max,pauth-impdef=on", Reason: "an arm64 guest on a x86_64 host"}},
		{name: "no kvm", host: kernels.X86_64, kvmErr: &fs.PathError{Op: "open", Path: "/dev/kvm", Err: fs.ErrNotExist}, arch: kernels.X86_64,
			want: Decision{Accel: "tcg", CPU: "max", Reason: "/dev/kvm: open /dev/kvm: file does not exist"}},
		{name: "env tcg", host: kernels.X86_64, arch: kernels.X86_64, env: "tcg", cpu: "EPYC-Rome",
			want: Decision{Accel: "tcg", CPU: "EPYC-Rome", Reason: "TCG requested"}},
		{name: "flag beats env", host: kernels.X86_64, arch: kernels.X86_64, env: "kvm", accel: "tcg",
			want: Decision{Accel: "tcg", CPU: "max", Reason: "TCG requested"}},
		{name: "kvm forced, other arch", host: kernels.X86_64, arch: kernels.ARM64, accel: "kvm", wantErr: "only guests of the host's arch"},
		{name: "kvm forced, no kvm", host: kernels.X86_64, kvmErr: errors.New("permission denied"), arch: kernels.X86_64, accel: "kvm", wantErr: "/dev/kvm cannot be used: permission denied"},
		{name: "bad env", host: kernels.X86_64, arch: kernels.X86_64, env: "hvf", wantErr: "$TRAMP_ACCEL: unknown accelerator \"hvf\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fakeHost(t, c.host, c.kvmErr)
			t.Setenv(EnvAccel, c.env)
			d, err := Decide(context.Background(), Config{Arch: c.arch, Accel: c.accel, CPU: c.cpu, Binary: "/nonexistent/qemu"})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			require.NoError(t, err)
			if d != c.want {
				t.Errorf("got %+v\nwant %+v", d, c.want)
			}
		})
	}
}

// FuzzQEMUStderr: whatever QEMU prints, the probe's reason is one line,
// the fatal excerpt is bounded and starts at the fatal message when there
// is one, and classify does not panic.
func FuzzQEMUStderr(f *testing.F) {
	f.Add("qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu-system-x86_64: kvm.c:3183: kvm_buf_set_msrs: Assertion failed.\n")
	f.Add("KVM internal error. Suberror: 1\nextra data[0]: 0x1\nemulation failure\nRAX=0 RBX=0\n")
	f.Add("qemu-system-x86_64: terminating on signal 15 from pid 42 (timeout)\n")
	f.Add("\x1b[2J\r\n\r\n")
	f.Fuzz(func(t *testing.T, stderr string) {
		r := oneLine(errors.New("boot failed\nmore"), stderr)
		if strings.Contains(r, "\n") {
			t.Fatalf("reason spans lines: %q", r)
		}
		ex := fatalExcerpt(stderr)
		if len(ex) > stderrTail+1 {
			t.Fatalf("excerpt of %d lines", len(ex))
		}
		fatal := false
		for _, l := range lastLines(stderr, 1<<20) {
			fatal = fatal || fatalStderr.MatchString(l)
		}
		if fatal && (len(ex) == 0 || !fatalStderr.MatchString(ex[0])) {
			t.Fatalf("excerpt does not start at the fatal message: %q", ex)
		}
		res := &Result{Stderr: stderr, Accel: "tcg", CPU: "max"}
		_ = classify(&Config{Arch: kernels.X86_64}, res, classifyIn{})
	})
}
