package record

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/recording"
)

func TestJobForBPFProgTarget(t *testing.T) {
	c, err := cases.Parse("t.tramp", []byte("target tc_entry(ptr) -> s32 bpf-prog tail-call\nprog e fentry\nattach e\nrun\n"))
	require.NoError(t, err)
	j := JobFor(c)
	want := &guestapi.TargetProg{TailCall: true, Args: []string{"ptr"}, Ret: "s32"}
	if !reflect.DeepEqual(j.TargetProg, want) {
		t.Errorf("TargetProg = %+v, want %+v", j.TargetProg, want)
	}
	c, err = cases.Parse("t.tramp", []byte("target tc_entry(ptr) -> s32 bpf-prog tail-call-subprog\nprog e fentry\nattach e\n"))
	require.NoError(t, err)
	want.TailCallSubprog = true
	if !reflect.DeepEqual(JobFor(c).TargetProg, want) {
		t.Errorf("TargetProg = %+v, want %+v", JobFor(c).TargetProg, want)
	}
	c, err = cases.Parse("t.tramp", []byte("target tc_entry(ptr) -> s32 bpf-prog tail-call-taken\nprog e fentry\nattach e\n"))
	require.NoError(t, err)
	want.TailCallSubprog, want.TailCallTaken = false, true
	if !reflect.DeepEqual(JobFor(c).TargetProg, want) {
		t.Errorf("TargetProg = %+v, want %+v", JobFor(c).TargetProg, want)
	}
	c, err = cases.Parse("t.tramp", []byte("target tc_sub(ptr) -> s32 bpf-prog tail-call global-subprog\nprog e fentry\nattach e\n"))
	require.NoError(t, err)
	want.TailCallTaken, want.GlobalSubprog = false, true
	if !reflect.DeepEqual(JobFor(c).TargetProg, want) {
		t.Errorf("TargetProg = %+v, want %+v", JobFor(c).TargetProg, want)
	}
	c, err = cases.Parse("t.tramp", []byte("target plain(ptr, u64) -> u32 bpf-prog\nprog e fentry\nattach e\n"))
	require.NoError(t, err)
	if got := JobFor(c).TargetProg; got == nil || got.TailCall || !reflect.DeepEqual(got.Args, []string{"ptr", "u64"}) || got.Ret != "u32" {
		t.Errorf("TargetProg = %+v, want (ptr, u64) -> u32 without tail call", got)
	}
	c, err = cases.Parse("t.tramp", []byte("target bpf_fentry_test1\nprog e fentry\nattach e\n"))
	require.NoError(t, err)
	if tp := JobFor(c).TargetProg; tp != nil {
		t.Errorf("a vmlinux target got TargetProg %+v", tp)
	}
}

// TestCompareTrampolineKey: a recording whose trampoline key or image name
// is not the model's (prog id << 32 | btf id for a BPF-program target) is
// a disagreement.
func TestCompareTrampolineKey(t *testing.T) {
	path := filepath.Join(testdata, "debian-7.2.13", "x86_64", "tailcall_fentry_fexit.json")
	c, err := cases.ParseFile(filepath.Join("..", "..", "cases", "tailcall_fentry_fexit.tramp"))
	require.NoError(t, err)
	prof, _ := trampoline.LookupProfile("debian-7.2.13")
	a, _ := trampoline.LookupArch("x86_64")
	cmp := func(rec *recording.Recording) Comparison {
		return Compare(rec, c, prof, a, generators.SizeFunc("x86_64"))
	}
	rec, err := recording.Load(path)
	require.NoError(t, err)
	if got := cmp(rec); got.Verdict != Agree {
		t.Fatalf("recorded: %s %v", got.Verdict, got.Problems)
	}
	rec.Start.TrampolineKey ^= 1 << 32
	if got := cmp(rec); got.Verdict != Disagree || !strings.Contains(strings.Join(got.Problems, "\n"), "trampoline key") {
		t.Errorf("wrong key: %s %v", got.Verdict, got.Problems)
	}
	rec, _ = recording.Load(path)
	rec.Captures[0].Name = "bpf_trampoline_6442516024"
	if got := cmp(rec); got.Verdict != Disagree || !strings.Contains(strings.Join(got.Problems, "\n"), "the model names it bpf_trampoline_17179869185") {
		t.Errorf("wrong image name: %s %v", got.Verdict, got.Problems)
	}
}

// TestCompareImageLine: an image that is not the step's (here the kernel's
// image from before the detach, the superseded image an unlucky capture
// took) is a disagreement named at the step's own case line, and a
// capture without bytes says why the guest took none.
func TestCompareImageLine(t *testing.T) {
	c, err := cases.ParseFile(filepath.Join("..", "..", "cases", "tailcall_fentry_fexit.tramp"))
	require.NoError(t, err)
	path := filepath.Join(testdata, "debian-6.18.15", "arm64", "tailcall_fentry_fexit.json")
	prof, _ := trampoline.LookupProfile("debian-6.18.15")
	a, _ := trampoline.LookupArch("arm64")
	rec, err := recording.Load(path)
	require.NoError(t, err)
	if got := CompareBoot(rec, c, prof, a); got.Verdict != Agree {
		t.Fatalf("recorded: %s %v", got.Verdict, got.Problems)
	}
	var before, after = -1, -1
	for i, capt := range rec.Captures {
		switch c.Steps[capt.Step].Op {
		case cases.OpAttach:
			before = i
		case cases.OpDetach:
			if after < 0 {
				after = i
			}
		}
		if after >= 0 {
			break
		}
	}
	if before < 0 || after < 0 {
		t.Fatalf("the recording has no attach capture followed by a detach capture")
	}
	step := rec.Captures[after].Step
	line := c.Steps[step].Line
	if line == 0 {
		t.Fatal("the detach step has no line")
	}
	stale := rec.Captures[before]
	rec.Captures[after].Bytes, rec.Captures[after].Addr = stale.Bytes, stale.Addr
	want := fmt.Sprintf("%s:%d: image after step %d: generated", c.File, line, step)
	if got := CompareBoot(rec, c, prof, a); got.Verdict != Disagree || len(got.Problems) != 1 || !strings.HasPrefix(got.Problems[0], want) {
		t.Errorf("superseded image: %s %v, want one problem starting %q", got.Verdict, got.Problems, want)
	}

	rec, _ = recording.Load(path)
	rec.Captures[after].Bytes, rec.Captures[after].Addr = "", 0
	rec.Captures[after].Errors = []string{"2 images named bpf_trampoline_x were still listed"}
	want = fmt.Sprintf("%s:%d: image after step %d: the guest captured no image of %s: 2 images", c.File, line, step, rec.Captures[after].Name)
	if got := CompareBoot(rec, c, prof, a); got.Verdict != Disagree || len(got.Problems) != 1 || !strings.HasPrefix(got.Problems[0], want) {
		t.Errorf("no image: %s %v, want one problem starting %q", got.Verdict, got.Problems, want)
	}
}

// TestCompareMissingStepsLine: a recording that stops early names the
// first step the kernel did not run.
func TestCompareMissingStepsLine(t *testing.T) {
	c, err := cases.ParseFile(filepath.Join("..", "..", "cases", "tailcall_fentry_fexit.tramp"))
	require.NoError(t, err)
	rec, err := recording.Load(filepath.Join(testdata, "debian-6.18.15", "arm64", "tailcall_fentry_fexit.json"))
	require.NoError(t, err)
	prof, _ := trampoline.LookupProfile("debian-6.18.15")
	a, _ := trampoline.LookupArch("arm64")
	rec.Steps = rec.Steps[:2]
	want := fmt.Sprintf("%s:%d: the kernel ran 2 of the case's %d steps", c.File, c.Steps[2].Line, len(c.Steps))
	if got := CompareBoot(rec, c, prof, a); got.Verdict != Disagree || len(got.Problems) == 0 || got.Problems[0] != want {
		t.Errorf("%s %v, want first problem %q", got.Verdict, got.Problems, want)
	}
}

// TestCompareCatchesKernelDifferences: a recording altered where the
// kernel could have differed is a mismatch naming the step's line: an
// attach errno, a detach errno, an invocation's phase, a cookie value.
func TestCompareCatchesKernelDifferences(t *testing.T) {
	c, err := cases.ParseFile(filepath.Join("..", "..", "cases", "fsession_cookie.tramp"))
	require.NoError(t, err)
	prof, _ := trampoline.LookupProfile("debian-7.2.13")
	a, _ := trampoline.LookupArch("x86_64")
	load := func() *recording.Recording {
		rec, err := recording.Load(filepath.Join(testdata, "debian-7.2.13", "x86_64", "fsession_cookie.json"))
		require.NoError(t, err)
		return rec
	}
	if got := CompareBoot(load(), c, prof, a); got.Verdict != Agree {
		t.Fatalf("recorded: %s %v", got.Verdict, got.Problems)
	}
	for _, tc := range []struct {
		name  string
		alter func(*recording.Recording)
		want  string
	}{
		{"attach errno", func(r *recording.Recording) { r.Steps[0].Errno, r.Steps[0].Stage = "EINVAL", "load" }, "fsession_cookie.tramp:5: attach s: kernel EINVAL at load, model ok"},
		{"detach errno", func(r *recording.Recording) { r.Steps[2].Errno = "EBUSY" }, "fsession_cookie.tramp:7: detach s: kernel EBUSY"},
		{"phase", func(r *recording.Recording) { r.Observations[0].Records[1].Phase = "entry" }, "fsession_cookie.tramp:6: run: invocation 1 (s exit): the kernel ran s entry"},
		{"cookie", func(r *recording.Recording) { v := uint64(7); r.Observations[0].Records[1].CookieRead = &v }, "fsession_cookie.tramp:6: run: invocation 1 (s exit): cookie 0x7 at exit"},
	} {
		rec := load()
		tc.alter(rec)
		got := CompareBoot(rec, c, prof, a)
		found := false
		for _, p := range got.Problems {
			found = found || strings.Contains(p, tc.want)
		}
		if got.Verdict != Disagree || !found {
			t.Errorf("%s: %s %q, want a problem containing %q", tc.name, got.Verdict, got.Problems, tc.want)
		}
	}
}

// The fsession fact the model read from BTF is held to the guest's probe
// load: a model that says no fsession fails on a kernel that loaded one,
// even for a case that uses none.
func TestCompareConfirmsFsessionLive(t *testing.T) {
	rec := loadRec(t, "debian-7.2.13", "x86_64", "fentry_only")
	c := corpusByName(t)["fentry_only"]
	prof, err := trampoline.LookupProfile("debian-7.2.13")
	require.NoError(t, err)
	a, err := trampoline.LookupArch("x86_64")
	require.NoError(t, err)
	require.Equal(t, Agree, CompareBoot(rec, c, prof, a).Verdict)
	wrong := *prof
	wrong.Fsession = false
	cmp := CompareBoot(rec, c, &wrong, a)
	require.Equal(t, Disagree, cmp.Verdict)
	require.Contains(t, cmp.Problems[0], "the model says fsession no (debian-7.2.13 on x86_64), the kernel's probe load at start says ok")
}
