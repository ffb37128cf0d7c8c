package record

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/cmd/tramp-guest/bpfobs"
	"github.com/bpftramp/tramp/trampoline"
)

func TestJobForBPFProgTarget(t *testing.T) {
	c, err := cases.Parse("t.tramp", []byte("target tc_entry(ptr) -> s32 bpf-prog tail-call\nprog e fentry\nattach e\nrun\n"))
	if err != nil {
		t.Fatal(err)
	}
	j := JobFor(c)
	want := &bpfobs.TargetProg{TailCall: true, Args: []string{"ptr"}, Ret: "s32"}
	if !reflect.DeepEqual(j.TargetProg, want) {
		t.Errorf("TargetProg = %+v, want %+v", j.TargetProg, want)
	}
	c, err = cases.Parse("t.tramp", []byte("target tc_entry(ptr) -> s32 bpf-prog tail-call-subprog\nprog e fentry\nattach e\n"))
	if err != nil {
		t.Fatal(err)
	}
	want.TailCallSubprog = true
	if !reflect.DeepEqual(JobFor(c).TargetProg, want) {
		t.Errorf("TargetProg = %+v, want %+v", JobFor(c).TargetProg, want)
	}
	c, err = cases.Parse("t.tramp", []byte("target tc_entry(ptr) -> s32 bpf-prog tail-call-taken\nprog e fentry\nattach e\n"))
	if err != nil {
		t.Fatal(err)
	}
	want.TailCallSubprog, want.TailCallTaken = false, true
	if !reflect.DeepEqual(JobFor(c).TargetProg, want) {
		t.Errorf("TargetProg = %+v, want %+v", JobFor(c).TargetProg, want)
	}
	c, err = cases.Parse("t.tramp", []byte("target tc_sub(ptr) -> s32 bpf-prog tail-call global-subprog\nprog e fentry\nattach e\n"))
	if err != nil {
		t.Fatal(err)
	}
	want.TailCallTaken, want.GlobalSubprog = false, true
	if !reflect.DeepEqual(JobFor(c).TargetProg, want) {
		t.Errorf("TargetProg = %+v, want %+v", JobFor(c).TargetProg, want)
	}
	c, err = cases.Parse("t.tramp", []byte("target plain(ptr, u64) -> u32 bpf-prog\nprog e fentry\nattach e\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := JobFor(c).TargetProg; got == nil || got.TailCall || !reflect.DeepEqual(got.Args, []string{"ptr", "u64"}) || got.Ret != "u32" {
		t.Errorf("TargetProg = %+v, want (ptr, u64) -> u32 without tail call", got)
	}
	c, err = cases.Parse("t.tramp", []byte("target bpf_fentry_test1\nprog e fentry\nattach e\n"))
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := trampoline.LookupProfile("debian-7.2.13")
	a, _ := trampoline.LookupArch("x86_64")
	cmp := func(rec *Recording) Comparison { return Compare(rec, c, prof, a, generators.SizeFunc("x86_64")) }
	rec, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cmp(rec); got.Verdict != Agree {
		t.Fatalf("recorded: %s %v", got.Verdict, got.Problems)
	}
	rec.Start.TrampolineKey ^= 1 << 32
	if got := cmp(rec); got.Verdict != Disagree || !strings.Contains(strings.Join(got.Problems, "\n"), "trampoline key") {
		t.Errorf("wrong key: %s %v", got.Verdict, got.Problems)
	}
	rec, _ = Load(path)
	rec.Captures[0].Name = "bpf_trampoline_6442516024"
	if got := cmp(rec); got.Verdict != Disagree || !strings.Contains(strings.Join(got.Problems, "\n"), "the model names it bpf_trampoline_17179869185") {
		t.Errorf("wrong image name: %s %v", got.Verdict, got.Problems)
	}
}
