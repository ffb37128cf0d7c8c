package record

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/qemu"
	"github.com/bpftramp/tramp/vm/recording"
)

// needVM gates the tests that boot a kernel: without TRAMP_VM=1 they skip
// (and say how to run them); with it, anything missing is a failure.
func needVM(t *testing.T) {
	t.Helper()
	if os.Getenv("TRAMP_VM") != "1" {
		t.Skip("boots a kernel under QEMU; set TRAMP_VM=1 (make test does)")
	}
}

// threeCases are small corpus cases that finish in a few seconds.
func threeCases(t *testing.T) []*cases.Case {
	t.Helper()
	all, err := cases.Corpus()
	require.NoError(t, err)
	var out []*cases.Case
	for _, c := range all {
		switch c.Name {
		case "fentry_only", "fsession_cookie", "fexit_six_args":
			out = append(out, c)
		}
	}
	if len(out) != 3 {
		t.Fatalf("corpus lacks the three test cases")
	}
	return out
}

// runWithFailure boots 7.2.13 x86_64 with three cases and then something
// that goes wrong, and checks that every case finished before it is on
// disk and complete, and that the error names what happened.
func runWithFailure(t *testing.T, want qemu.ErrorKind, b Boot) {
	t.Helper()
	dir := t.TempDir()
	b.Kernel, b.Profile, b.Arch = kernels.DefaultProfile, kernels.DefaultProfile, kernels.X86_64
	b.Cases = threeCases(t)
	b.OnRecording = func(r *recording.Recording) {
		if _, err := recording.Write(dir, r); err != nil {
			t.Errorf("write: %v", err)
		}
	}
	res, err := Run(context.Background(), b)
	if !qemu.IsKind(err, want) {
		t.Fatalf("error %v, want kind %s", err, want)
	}
	for _, c := range b.Cases {
		r, lerr := recording.Load(recording.Path(dir, b.Profile, string(b.Arch), c.Name))
		if lerr != nil {
			t.Errorf("%s: completed before the failure but not on disk: %v", c.Name, lerr)
			continue
		}
		if !r.Complete {
			t.Errorf("%s: on disk but incomplete", c.Name)
		}
	}
	if res == nil || len(res.Recordings) < 3 {
		t.Errorf("result keeps %d recordings, want the 3 completed ones", len(res.Recordings))
	}
	t.Logf("%s: %v", want, err)
}

func TestGuestPanicKeepsCompletedCases(t *testing.T) {
	needVM(t)
	runWithFailure(t, qemu.ErrPanic, Boot{Extra: []guestapi.NamedJob{{Name: "crash", Job: guestapi.BPFJob{Target: "bpf_fentry_test1", Ops: []guestapi.Op{{Op: "crash"}}}}}})
}

func TestHungGuestKeepsCompletedCases(t *testing.T) {
	needVM(t)
	// A guest that never finishes: after the three cases, a fourth job far
	// longer than the boot's timeout.
	var long []guestapi.Op
	for i := 0; i < 4000; i++ {
		long = append(long, guestapi.Op{Op: "attach", Prog: "e"}, guestapi.Op{Op: "detach", Prog: "e"})
	}
	runWithFailure(t, qemu.ErrHung, Boot{
		Machine: Machine{Timeout: 25 * time.Second},
		Extra: []guestapi.NamedJob{{Name: "long", Job: guestapi.BPFJob{Target: "bpf_fentry_test1",
			Progs: []guestapi.Prog{{Name: "e", Kind: "fentry"}}, Ops: long}}},
	})
}

func TestKilledQEMUKeepsCompletedCases(t *testing.T) {
	needVM(t)
	var pid int
	b := Boot{OnStart: func(p int) { pid = p }}
	// After the three cases a job that keeps the guest busy for far longer
	// than the kill takes. (A crash job there raced the kill: the guest
	// could reach it, and panic, before SIGKILL landed.)
	var long []guestapi.Op
	for i := 0; i < 4000; i++ {
		long = append(long, guestapi.Op{Op: "attach", Prog: "e"}, guestapi.Op{Op: "detach", Prog: "e"})
	}
	b.Extra = []guestapi.NamedJob{{Name: "busy-when-killed", Job: guestapi.BPFJob{Target: "bpf_fentry_test1",
		Progs: []guestapi.Prog{{Name: "e", Kind: "fentry"}}, Ops: long}}}
	n := 0
	dir := t.TempDir()
	b.OnRecording = func(r *recording.Recording) {
		recording.Write(dir, r)
		n++
		if n == 3 && pid != 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	b.Kernel, b.Profile, b.Arch = kernels.DefaultProfile, kernels.DefaultProfile, kernels.X86_64
	b.Cases = threeCases(t)
	_, err := Run(context.Background(), b)
	if !qemu.IsKind(err, qemu.ErrKilled) {
		t.Fatalf("error %v, want kind %s", err, qemu.ErrKilled)
	}
	for _, c := range b.Cases {
		if _, err := recording.Load(filepath.Join(dir, b.Profile, string(b.Arch), c.Name+".json")); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
	t.Logf("killed: %v", err)
}
