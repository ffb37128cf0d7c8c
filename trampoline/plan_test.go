package trampoline

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The func_meta values of the facts sheet's live worked example (7.2.13,
// one cookie-using fsession on bpf_fentry_test1): 1 after the prologue,
// 0x201 before the entry run, 0x8000000000000001 before the exit list and
// 0x8000000000000201 before the exit run.
func TestPlanSingleCookieFsession(t *testing.T) {
	for _, arch := range []string{"x86_64", "arm64"} {
		tr := newTr(t, "debian-7.2.13", arch, "bpf_fentry_test1")
		if _, err := tr.Attach(&Prog{Name: "s", Kind: KindFsession, Cookie: true}); err != nil {
			t.Fatal(err)
		}
		p := tr.Plan()
		got := []uint64{uint64(p.EntryFuncMeta), uint64(p.Fentry[0].FuncMeta), uint64(p.ExitFuncMeta), uint64(p.Fexit[0].FuncMeta)}
		want := []uint64{1, 0x201, 0x8000000000000001, 0x8000000000000201}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s func_meta sequence (-want +got):\n%s", arch, diff)
		}
		if p.CookieCount != 1 || p.FsessionCount != 1 {
			t.Errorf("%s: cookie_cnt %d fsession_cnt %d, want 1 1", arch, p.CookieCount, p.FsessionCount)
		}
	}
}

// Run order is newest attach first on every list; cookie indexes count
// down from cookie_cnt + 1 + ip in run order, the same for both phases.
func TestPlanOrderAndCookieIndexes(t *testing.T) {
	tr := newTr(t, "debian-7.3.4", "x86_64", "bpf_fentry_test3")
	progs := []*Prog{
		{Name: "a", Kind: KindFsession, Cookie: true},
		{Name: "e", Kind: KindFentry, LinkCookie: 0x1234},
		{Name: "n", Kind: KindFsession},
		{Name: "b", Kind: KindFsession, Cookie: true, IP: true},
		{Name: "x", Kind: KindFexit},
	}
	for _, p := range progs {
		if _, err := tr.Attach(p); err != nil {
			t.Fatal(err)
		}
	}
	p := tr.Plan()
	type row struct {
		Prog  string
		Phase Phase
		Idx   int
		Meta  Hex64
	}
	rows := func(ns []Node) []row {
		var r []row
		for _, n := range ns {
			r = append(r, row{n.Prog, n.Phase, n.CookieIndex, n.FuncMeta})
		}
		return r
	}
	// 3 argument slots, ip on: first index = 2 cookies + 1 + 1 = 4.
	wantEntry := []row{{"b", PhaseEntry, 4, 0x403}, {"n", PhaseEntry, 0, 0}, {"e", PhaseEntry, 0, 0}, {"a", PhaseEntry, 3, 0x303}}
	wantExit := []row{{"x", PhaseExit, 0, 0}, {"b", PhaseExit, 4, 0x8000000000000403}, {"n", PhaseExit, 0, 0}, {"a", PhaseExit, 3, 0x8000000000000303}}
	if diff := cmp.Diff(wantEntry, rows(p.Fentry)); diff != "" {
		t.Errorf("fentry list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantExit, rows(p.Fexit)); diff != "" {
		t.Errorf("fexit list (-want +got):\n%s", diff)
	}
	if p.Flags != FlagCallOrig|FlagIPArg || !p.JmpMode {
		t.Errorf("flags %s jmp %v, want CALL_ORIG|IP_ARG in jmp mode", p.Flags, p.JmpMode)
	}
	if p.Fentry[2].LinkCookie != 0x1234 {
		t.Errorf("link cookie of e: %#x", uint64(p.Fentry[2].LinkCookie))
	}
}

// Argument slots: x86 7.2.8+ and arm64 count every word of a wide
// argument; x86 before 7.2.8 only struct words.
func TestArgSlots(t *testing.T) {
	m := ModelOf(Prototype{Args: []Type{{Size: 16}, {Size: 16, Struct: true}, {Size: 4}}, Ret: Type{Size: 8}})
	cases := []struct {
		profile, arch string
		want          int
	}{
		{"debian-7.2.13", "x86_64", 5},
		{"debian-6.18.15", "x86_64", 4},
		{"debian-6.18.15", "arm64", 5},
		{"debian-7.2.13", "arm64", 5},
	}
	for _, c := range cases {
		if got := m.ArgSlots(mustArch(t, c.arch), mustProfile(t, c.profile)); got != c.want {
			t.Errorf("%s/%s: %d slots, want %d", c.profile, c.arch, got, c.want)
		}
	}
}

func TestHelpers(t *testing.T) {
	tr := newTr(t, "debian-7.2.13", "arm64", "bpf_fentry_test1")
	for _, p := range []*Prog{{Name: "s", Kind: KindFsession, Sleepable: true}, {Name: "e", Kind: KindFentry}} {
		if _, err := tr.Attach(p); err != nil {
			t.Fatal(err)
		}
	}
	p := tr.Plan()
	if p.Fentry[0].Enter != HelperProgEnterRecur || p.Fentry[1].Enter != HelperProgEnterSleepableRec || p.Fexit[0].Exit != HelperProgExitSleepableRec {
		t.Errorf("helpers: %+v / %+v", p.Fentry, p.Fexit)
	}
}

func TestKeyAndKsym(t *testing.T) {
	tg := known(t, "bpf_fentry_test1")
	if tg.KsymName() != "" {
		t.Fatalf("ksym without a BTF id: %q", tg.KsymName())
	}
	tg.BTFID = 68384 // 7.2.13 amd64, seen live as bpf_trampoline_6442519328
	if got := tg.KsymName(); got != "bpf_trampoline_6442519328" {
		t.Errorf("ksym %s", got)
	}
}
