package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/vm/channel"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/kernels"
)

func TestCommandX86(t *testing.T) {
	c := Config{Arch: kernels.X86_64, Kernel: "/k/bz", Initrd: "/i.gz", Append: []string{"mitigations=off"}}
	argv, err := c.Command("/tmp/a,b/results.bin", Decision{Accel: AccelTCG})
	require.NoError(t, err)
	want := []string{"qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-cpu", "max", "-m", "512M", "-smp", "1",
		"-nographic", "-no-reboot", "-nic", "none", "-kernel", "/k/bz", "-initrd", "/i.gz",
		"-append", "console=ttyS0 panic=-1 quiet nokaslr mitigations=off",
		"-device", "virtio-serial-pci", "-chardev", "file,id=res,path=/tmp/a,,b/results.bin",
		"-device", "virtserialport,chardev=res,name=tramp.results"}
	if !slices.Equal(argv, want) {
		t.Fatalf("argv\n got %q\nwant %q", argv, want)
	}
}

func TestCommandARM64AndOptions(t *testing.T) {
	c := Config{Arch: kernels.ARM64, Kernel: "k", Initrd: "i", KASLR: true, Verbose: true, MemoryMB: 256, ExtraArgs: []string{"-icount", "shift=0"}}
	argv, _ := c.Command("r", Decision{Accel: AccelTCG})
	s := strings.Join(argv, " ")
	for _, w := range []string{"qemu-system-aarch64 ", "-machine virt ", "-cpu max,pauth-impdef=on ", "-m 256M ", "-append console=ttyAMA0 panic=-1 -device", " -icount shift=0"} {
		if !strings.Contains(s, w) {
			t.Errorf("argv lacks %q: %s", w, s)
		}
	}
	argv, _ = c.Command("r", Decision{Accel: AccelKVM})
	if s := strings.Join(argv, " "); !strings.Contains(s, "-accel kvm -machine virt,gic-version=host -cpu host ") {
		t.Errorf("kvm argv: %s", s)
	}
	argv, _ = c.Command("r", Decision{Accel: AccelTCG, CPU: "EPYC-Rome"})
	if !slices.Contains(argv, "EPYC-Rome") {
		t.Errorf("cpu override ignored: %q", argv)
	}
	if _, err := (&Config{Arch: "mips", Kernel: "k", Initrd: "i"}).Command("r", Decision{Accel: AccelTCG}); err == nil {
		t.Error("mips accepted")
	}
	if _, err := c.Command("r", Decision{Accel: AccelAuto}); err == nil {
		t.Error("an undecided accelerator accepted")
	}
}

func readLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "console", name))
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		out = append(out, CleanLine(l))
	}
	return out
}

func TestFindSplats(t *testing.T) {
	cases := []struct {
		file  string
		kinds []string
		first string // text in the first excerpt line
		n     int    // excerpt length of the first splat
	}{
		{"panic-arm64.log", []string{"panic"}, "Kernel panic - not syncing: sysrq triggered crash", 25},
		{"warning-x86.log", []string{"warning"}, "cut here", 15},
		{"bug-stall.log", []string{"bug", "stall"}, "BUG: kernel NULL pointer dereference", 5},
		{"clean-x86.log", nil, "", 0},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			splats := FindSplats(readLines(t, c.file))
			var kinds []string
			for _, s := range splats {
				kinds = append(kinds, s.Kind)
			}
			if !slices.Equal(kinds, c.kinds) {
				t.Fatalf("kinds %v, want %v", kinds, c.kinds)
			}
			if len(splats) > 0 {
				if !strings.Contains(splats[0].Excerpt[0], c.first) || len(splats[0].Excerpt) != c.n {
					t.Fatalf("excerpt (%d lines) starts %q", len(splats[0].Excerpt), splats[0].Excerpt[0])
				}
			}
		})
	}
}

func TestCleanLine(t *testing.T) {
	if got := CleanLine("\x1bc\x1b[?7l\x1b[2J[    3.4] reboot: Power down\r\n"); got != "[    3.4] reboot: Power down" {
		t.Fatalf("%q", got)
	}
	if got := KernelMessage("[    2.799725] Kernel panic - not syncing: x"); got != "Kernel panic - not syncing: x" {
		t.Fatalf("%q", got)
	}
}

// The test binary doubles as a fake QEMU: with TRAMP_FAKE_QEMU set it plays
// one scenario, writing console text to stdout and records to the file
// named in the -chardev argument.
func TestMain(m *testing.M) {
	if mode := os.Getenv("TRAMP_FAKE_QEMU"); mode != "" {
		os.Exit(fakeQEMU(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeQEMU(mode string, args []string) int {
	var path string
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "file,id=res,path="); ok {
			path = strings.ReplaceAll(p, ",,", ",")
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	enc := channel.NewEncoder(f)
	hello := func() { enc.Emit(guestapi.KindHello, guestapi.Hello{Release: "fake", Machine: "x86_64"}) }
	done := func() { enc.Emit(guestapi.KindDone, guestapi.Done{Job: "hello"}) }
	fmt.Println("[    0.100000] Linux version fake")
	switch mode {
	case "ok":
		hello()
		done()
	case "warning":
		hello()
		b, _ := os.ReadFile("testdata/console/warning-x86.log")
		os.Stdout.Write(b)
		done()
	case "corrupt":
		hello()
		f.Write([]byte("garbage\r\n"))
		time.Sleep(30 * time.Second) // the runner must not wait for this
	case "truncated":
		hello()
		b, _ := channel.Frame(1, "done", []byte(`{"job":"hello"}`))
		f.Write(b[:len(b)-4])
	case "nohello":
		fmt.Println("[    0.200000] VFS: Unable to mount root fs")
	case "guesterror":
		hello()
		enc.Emit(guestapi.KindError, guestapi.Error{Stage: "job", Message: "no such thing"})
	case "nodone":
		hello()
	case "fail":
		fmt.Fprintln(os.Stderr, "qemu: could not load kernel")
		return 1
	case "abort":
		// QEMU 7.2 with -accel kvm -cpu host on an AMD host with nested KVM.
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69")
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.")
		abort()
	case "kvm-internal":
		// A KVM that cannot run the guest's code (seen with kvm-pvm): QEMU
		// dumps the registers and pauses the VM forever.
		fmt.Fprintln(os.Stderr, "KVM internal error. Suberror: 1")
		fmt.Fprintln(os.Stderr, "extra data[0]: 0x0000000000000001")
		fmt.Fprintln(os.Stderr, "emulation failure")
		fmt.Fprintln(os.Stderr, "RAX=000000000c692990 RBX=0000000004bdbb64 RCX=000000000c692990 RDX=0000000000000005")
		fmt.Fprintln(os.Stderr, "Code=87 1d 02 00 00 4f 8d 14 2b 41 b9 01 00 00 00 41 89 17 89 c8 <c4> 42 69 f7 c9 4c 89 d2")
		time.Sleep(30 * time.Second)
	case "sigterm":
		hello()
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: terminating on signal 15 from pid 4242 (timeout)")
	case "pvm":
		// kvm-pvm: KVM opens but cannot run the kernel; TCG works.
		if slices.Contains(args, "kvm") {
			return fakeQEMU("kvm-internal", args)
		}
		hello()
		done()
	case "msr-quirk":
		// Aborts like "abort" unless -cpu carries -arch-capabilities.
		for i, a := range args {
			if a == "-cpu" && strings.Contains(args[i+1], "-arch-capabilities") {
				hello()
				done()
				return 0
			}
		}
		fmt.Fprintln(os.Stderr, "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69")
		abort()
	case "slow":
		hello()
		time.Sleep(30 * time.Second)
	}
	return 0
}

// abort ends the fake with SIGABRT as QEMU's failed assertion does (the Go
// runtime would catch it, so a shell raises it).
func abort() {
	err := syscall.Exec("/bin/sh", []string{"sh", "-c", "kill -ABRT $$"}, os.Environ())
	fmt.Fprintln(os.Stderr, err)
	os.Exit(3)
}

func fakeRun(t *testing.T, mode string, timeout time.Duration) (*Result, error) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"k", "i"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	t.Setenv("TRAMP_FAKE_QEMU", mode)
	var streamed []string
	var log bytes.Buffer
	cfg := Config{Arch: kernels.X86_64, Kernel: filepath.Join(dir, "k"), Initrd: filepath.Join(dir, "i"),
		Binary: os.Args[0], Accel: AccelTCG, Timeout: timeout, WorkDir: filepath.Join(dir, "work"),
		OnRecord: func(r channel.Record) { streamed = append(streamed, r.Kind) }, RecordLog: &log}
	res, err := Run(context.Background(), cfg)
	if len(streamed) != len(res.Records) || strings.Count(log.String(), "\n") != len(res.Records) {
		t.Errorf("streamed %v / logged %q, but result has %d records", streamed, log.String(), len(res.Records))
	}
	return res, err
}

func TestRunFake(t *testing.T) {
	cases := []struct {
		mode    string
		kind    ErrorKind // "" for success
		records int
		text    []string
	}{
		{"ok", "", 2, nil},
		{"warning", ErrSplat, 2, []string{"reported a warning", "WARNING: CPU: 0 PID: 1", "end trace"}},
		{"corrupt", ErrCorrupt, 1, []string{"byte offset @1", "bad magic", "1 record(s)"}},
		{"truncated", ErrTruncated, 1, []string{"ended mid-record", "offset @1"}},
		{"nohello", ErrNoHello, 0, []string{"without a hello record", "Unable to mount root fs"}},
		{"guesterror", ErrGuest, 2, []string{"error in job: no such thing"}},
		{"nodone", ErrNoDone, 1, []string{"without a done record"}},
		{"fail", ErrQEMUFailed, 0, []string{"exit status 1", "qemu stderr:\n  | qemu: could not load kernel"}},
		{"abort", ErrQEMUFailed, 0, []string{"QEMU died of SIGABRT (aborted) before the guest said hello under TCG -cpu max",
			"qemu stderr:\n  | qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n  | qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion"}},
		{"kvm-internal", ErrQEMUFailed, 0, []string{`QEMU stopped the guest before the guest said hello under TCG -cpu max`, `"KVM internal error. Suberror: 1"`,
			"qemu stderr:\n  | KVM internal error. Suberror: 1\n  | extra data[0]", "emulation failure", "Code=87 1d"}},
		{"sigterm", ErrKilled, 1, []string{"killed from outside by signal SIGTERM (terminated) from pid 4242 (timeout)", `(QEMU: "terminating on signal 15 from pid 4242 (timeout)")`}},
		{"slow", ErrHung, 1, []string{"hung", "within 2s"}},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			start := time.Now()
			res, err := fakeRun(t, c.mode, 2*time.Second)
			if c.kind == "" {
				require.NoError(t, err)
			} else if !IsKind(err, c.kind) {
				t.Fatalf("err = %v, want kind %s", err, c.kind)
			}
			if len(res.Records) != c.records {
				t.Errorf("%d records, want %d", len(res.Records), c.records)
			}
			for _, s := range c.text {
				if strings.Contains(s, "@1") && len(res.Records) > 0 {
					// The offset of the second record.
					r := res.Records[0]
					s = strings.ReplaceAll(s, "@1", fmt.Sprint(channel.HeaderSize+len(r.Kind)+len(r.Payload)))
				}
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
			if (c.mode == "corrupt" || c.mode == "kvm-internal") && time.Since(start) > 10*time.Second {
				t.Errorf("runner waited for QEMU after %s", c.mode)
			}
			if err != nil && strings.Contains(err.Error(), "killed from outside") != (c.kind == ErrKilled) {
				t.Errorf("\"killed from outside\" is for signals from outside only:\n%v", err)
			}
		})
	}
}

func TestMissingQEMU(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "k"), nil, 0o644)
	_, err := Run(context.Background(), Config{Arch: kernels.ARM64, Kernel: filepath.Join(dir, "k"), Initrd: filepath.Join(dir, "k"), Binary: "qemu-system-nonexistent", Accel: AccelTCG})
	if !IsKind(err, ErrQEMUMissing) || !strings.Contains(err.Error(), "scripts/setup") || !strings.Contains(err.Error(), "qemu-system-arm") {
		t.Fatalf("err = %v", err)
	}
}
