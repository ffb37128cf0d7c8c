package qemu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bpftramp/tramp/vm/channel"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/kernels"
)

func TestCommandX86(t *testing.T) {
	c := Config{Arch: kernels.X86_64, Kernel: "/k/bz", Initrd: "/i.gz", Append: []string{"mitigations=off"}}
	argv, err := c.Command("/tmp/a,b/results.bin", false)
	if err != nil {
		t.Fatal(err)
	}
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
	argv, _ := c.Command("r", false)
	s := strings.Join(argv, " ")
	for _, w := range []string{"qemu-system-aarch64 ", "-machine virt ", "-cpu max,pauth-impdef=on ", "-m 256M ", "-append console=ttyAMA0 panic=-1 -device", " -icount shift=0"} {
		if !strings.Contains(s, w) {
			t.Errorf("argv lacks %q: %s", w, s)
		}
	}
	argv, _ = c.Command("r", true)
	if s := strings.Join(argv, " "); !strings.Contains(s, "-accel kvm -machine virt -cpu host ") {
		t.Errorf("kvm argv: %s", s)
	}
	c.CPU = "EPYC-Rome"
	argv, _ = c.Command("r", false)
	if !slices.Contains(argv, "EPYC-Rome") {
		t.Errorf("cpu override ignored: %q", argv)
	}
	if _, err := (&Config{Arch: "mips", Kernel: "k", Initrd: "i"}).Command("r", false); err == nil {
		t.Error("mips accepted")
	}
}

func readLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "console", name))
	if err != nil {
		t.Fatal(err)
	}
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
	case "slow":
		hello()
		time.Sleep(30 * time.Second)
	}
	return 0
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
		{"fail", ErrQEMUFailed, 0, []string{"exit status 1", "could not load kernel"}},
		{"slow", ErrHung, 1, []string{"hung", "within 2s"}},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			start := time.Now()
			res, err := fakeRun(t, c.mode, 2*time.Second)
			if c.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
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
			if c.mode == "corrupt" && time.Since(start) > 20*time.Second {
				t.Errorf("runner waited for QEMU after corruption")
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
