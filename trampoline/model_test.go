package trampoline

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func mustProfile(t testing.TB, name string) *Profile {
	t.Helper()
	p, err := LookupProfile(name)
	require.NoError(t, err)
	return p
}

func mustArch(t testing.TB, name string) *Arch {
	t.Helper()
	a, err := LookupArch(name)
	require.NoError(t, err)
	return a
}

func known(t testing.TB, name string) Target {
	t.Helper()
	tg, ok := KnownTarget(name)
	if !ok {
		t.Fatalf("no known target %s", name)
	}
	return tg
}

func newTr(t testing.TB, profile, arch, target string) *Trampoline {
	return New(mustProfile(t, profile), mustArch(t, arch), known(t, target))
}

// errnoOf returns the errno and stage of an attach error ("ok" for nil).
func errnoOf(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		return "ok"
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("not a kernel error: %v", err)
	}
	return e.Errno.String() + "@" + string(e.Stage)
}

// Every refusal the model knows, each from a minimal setup.
func TestAttachErrnos(t *testing.T) {
	custom := func(name string, ret Type, args ...Type) Target {
		return Target{Name: name, Proto: Prototype{Args: args, Ret: ret}, ObjID: VmlinuxObjID}
	}
	u64 := Type{Size: 8}
	manyArgs := make([]Type, 13)
	for i := range manyArgs {
		manyArgs[i] = u64
	}
	twelveWithStruct := append(append([]Type{}, manyArgs[:11]...), Type{Size: 16, Struct: true})
	bpfTarget := custom("subprog", Type{Size: 4, Signed: true}, Type{Size: 8, Ptr: true})
	bpfTarget.Attrs.BPFProg = true

	tests := []struct {
		name    string
		profile string
		arch    string
		target  Target
		before  []*Prog // attached first, must succeed
		prog    *Prog
		want    string
	}{
		{name: "fsession before 7.0", profile: "debian-6.18.15", arch: "x86_64", target: known(t, "bpf_fentry_test1"),
			prog: &Prog{Name: "s", Kind: KindFsession}, want: "EINVAL@load"},
		{name: "fentry on 6.18", profile: "debian-6.18.15", arch: "x86_64", target: known(t, "bpf_fentry_test1"),
			prog: &Prog{Name: "e", Kind: KindFentry}, want: "ok"},
		{name: "fsession without JIT support", profile: "debian-7.2.13", arch: "loongarch64", target: known(t, "bpf_fentry_test1"),
			prog: &Prog{Name: "s", Kind: KindFsession}, want: "EOPNOTSUPP@load"},
		{name: "freplace on kernel function", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "bpf_fentry_test1"),
			prog: &Prog{Name: "r", Kind: KindFreplace}, want: "EINVAL@load"},
		{name: "13 arguments", profile: "debian-7.2.13", arch: "arm64", target: custom("f", u64, manyArgs...),
			prog: &Prog{Name: "e", Kind: KindFentry}, want: "EINVAL@load"},
		{name: "struct return", profile: "debian-7.2.13", arch: "x86_64", target: custom("f", Type{Size: 8, Struct: true}, u64),
			prog: &Prog{Name: "e", Kind: KindFentry}, want: "EINVAL@load"},
		{name: "struct arg over 16 bytes", profile: "debian-7.2.13", arch: "x86_64", target: custom("f", u64, Type{Size: 17, Struct: true}),
			prog: &Prog{Name: "e", Kind: KindFentry}, want: "EINVAL@load"},
		{name: "wide return with fexit", profile: "debian-7.2.13", arch: "x86_64", target: custom("f", Type{Size: 16}, u64),
			prog: &Prog{Name: "x", Kind: KindFexit}, want: "EOPNOTSUPP@load"},
		{name: "wide return with fentry", profile: "debian-7.2.13", arch: "x86_64", target: custom("f", Type{Size: 16}, u64),
			prog: &Prog{Name: "e", Kind: KindFentry}, want: "ok"},
		{name: "sleepable on non-sleepable function", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "bpf_fentry_test2"),
			prog: &Prog{Name: "e", Kind: KindFentry, Sleepable: true}, want: "EINVAL@load"},
		{name: "sleepable on KF_SLEEPABLE fmodret function", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "bpf_fentry_test1"),
			prog: &Prog{Name: "e", Kind: KindFentry, Sleepable: true}, want: "ok"},
		{name: "sleepable on fmodret function without KF_SLEEPABLE", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "bpf_modify_return_test"),
			prog: &Prog{Name: "e", Kind: KindFentry, Sleepable: true}, want: "EINVAL@load"},
		{name: "fmod_ret not modifiable", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "bpf_fentry_test2"),
			prog: &Prog{Name: "m", Kind: KindFmodRet}, want: "EINVAL@load"},
		{name: "fmod_ret on security hook", profile: "debian-7.2.13", arch: "x86_64", target: custom("security_file_open", Type{Size: 4, Signed: true}, Type{Size: 8, Ptr: true}),
			prog: &Prog{Name: "m", Kind: KindFmodRet}, want: "ok"},
		{name: "fmod_ret on BPF program", profile: "debian-7.2.13", arch: "x86_64", target: bpfTarget,
			prog: &Prog{Name: "m", Kind: KindFmodRet}, want: "EINVAL@load"},
		{name: "denied function", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "migrate_disable"),
			prog: &Prog{Name: "e", Kind: KindFentry}, want: "EINVAL@load"},
		{name: "fexit on noreturn", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "do_exit"),
			prog: &Prog{Name: "x", Kind: KindFexit}, want: "EINVAL@load"},
		{name: "fsession on noreturn", profile: "debian-7.2.13", arch: "arm64", target: known(t, "do_exit"),
			prog: &Prog{Name: "s", Kind: KindFsession}, want: "EINVAL@load"},
		{name: "fentry on noreturn", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "do_exit"),
			prog: &Prog{Name: "e", Kind: KindFentry}, want: "ok"},
		{name: "cookie outside fsession", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "bpf_fentry_test1"),
			prog: &Prog{Name: "e", Kind: KindFexit, Cookie: true}, want: "EACCES@load"},
		{name: "fentry returning 1", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "bpf_fentry_test1"),
			prog: &Prog{Name: "e", Kind: KindFentry, Returns: 1}, want: "EINVAL@load"},
		{name: "fmod_ret returning -22", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "bpf_modify_return_test"),
			prog: &Prog{Name: "m", Kind: KindFmodRet, Returns: -22}, want: "ok"},
		{name: "x86 13 slots", profile: "debian-7.2.13", arch: "x86_64", target: custom("f", u64, twelveWithStruct...),
			prog: &Prog{Name: "e", Kind: KindFentry}, want: "ENOTSUPP@attach"},
		{name: "arm64 13 slots", profile: "debian-7.2.13", arch: "arm64", target: custom("f", u64, twelveWithStruct...),
			prog: &Prog{Name: "e", Kind: KindFentry}, want: "ok"},
		{name: "same program twice", profile: "debian-7.2.13", arch: "x86_64", target: known(t, "bpf_fentry_test1"),
			before: []*Prog{{Name: "e", Kind: KindFentry}}, prog: nil, want: "EBUSY@attach"},
		{name: "freplace while tracing", profile: "debian-7.2.13", arch: "x86_64", target: bpfTarget,
			before: []*Prog{{Name: "e", Kind: KindFentry}}, prog: &Prog{Name: "r", Kind: KindFreplace}, want: "EBUSY@attach"},
		{name: "tracing while freplace", profile: "debian-7.2.13", arch: "x86_64", target: bpfTarget,
			before: []*Prog{{Name: "r", Kind: KindFreplace}}, prog: &Prog{Name: "e", Kind: KindFexit}, want: "EBUSY@attach"},
		{name: "second freplace", profile: "debian-7.2.13", arch: "x86_64", target: bpfTarget,
			before: []*Prog{{Name: "r", Kind: KindFreplace}}, prog: &Prog{Name: "r2", Kind: KindFreplace}, want: "EBUSY@attach"},
		{name: "sleepable on BPF program", profile: "debian-7.2.13", arch: "x86_64", target: bpfTarget,
			prog: &Prog{Name: "e", Kind: KindFentry, Sleepable: true}, want: "EINVAL@load"},
		{name: "same program twice on BPF program", profile: "debian-7.2.13", arch: "arm64", target: bpfTarget,
			before: []*Prog{{Name: "e", Kind: KindFentry}}, prog: nil, want: "EINVAL@attach"},
		{name: "same freplace twice", profile: "debian-7.2.13", arch: "x86_64", target: bpfTarget,
			before: []*Prog{{Name: "r", Kind: KindFreplace}}, prog: nil, want: "EINVAL@attach"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(mustProfile(t, tc.profile), mustArch(t, tc.arch), tc.target)
			for _, p := range tc.before {
				if _, err := tr.Attach(p); err != nil {
					t.Fatalf("setup attach %s: %v", p.Name, err)
				}
			}
			prog := tc.prog
			if prog == nil {
				prog = tc.before[0]
			}
			_, err := tr.Attach(prog)
			if got := errnoOf(t, err); got != tc.want {
				t.Errorf("attach %s: got %s (%v), want %s", prog.Name, got, err, tc.want)
			}
		})
	}
}

func fill(t *testing.T, tr *Trampoline, kind Kind, n int, prefix string) []*Link {
	t.Helper()
	var links []*Link
	for i := 0; i < n; i++ {
		l, err := tr.Attach(&Prog{Name: fmt.Sprintf("%s%d", prefix, i), Kind: kind})
		if err != nil {
			t.Fatalf("attach %s #%d: %v", kind, i, err)
		}
		links = append(links, l)
	}
	return links
}

// With the 38 slots of BPF_MAX_TRAMP_LINKS (the 7.2.8 source), 19 fsession
// attaches fill the trampoline.
func TestNineteenFsessionsFillTheTrampoline(t *testing.T) {
	for _, arch := range []string{"x86_64", "arm64"} {
		tr := newTr(t, "linux-7.2.8", arch, "bpf_fentry_test1")
		fill(t, tr, KindFsession, 19, "s")
		if tr.SlotsUsed() != 38 {
			t.Fatalf("%s: slots %d, want 38", arch, tr.SlotsUsed())
		}
		_, err := tr.Attach(&Prog{Name: "e", Kind: KindFentry})
		if got := errnoOf(t, err); got != "E2BIG@attach" {
			t.Errorf("%s: 20th attach (fentry): %s, want E2BIG", arch, got)
		}
	}
}

// 18 fsession + 1 fentry = 37 slots: an fsession needs two (E2BIG), an
// fentry still fits.
func TestFsessionNeedsTwoSlots(t *testing.T) {
	tr := newTr(t, "linux-7.2.8", "x86_64", "bpf_fentry_test1")
	fill(t, tr, KindFsession, 18, "s")
	fill(t, tr, KindFentry, 1, "e")
	_, err := tr.Attach(&Prog{Name: "s18", Kind: KindFsession})
	if got := errnoOf(t, err); got != "E2BIG@attach" {
		t.Fatalf("fsession into 37 used slots: %s, want E2BIG", got)
	}
	if tr.SlotsUsed() != 37 {
		t.Fatalf("a refused attach changed the slot count to %d", tr.SlotsUsed())
	}
	if _, err := tr.Attach(&Prog{Name: "e1", Kind: KindFentry}); err != nil {
		t.Fatalf("fentry into 37 used slots: %v, want ok", err)
	}
}

// Debian's s390x builds have no JIT: every tracing program is refused at
// load (measured on 7.2.13 s390x: fentry ENOMEM, fsession ENOTSUPP "JIT
// is required for calling kernel function"), though BTF still states 27
// slots. The kfunc refusal comes before the attach type is checked, so a
// build without fsession says ENOTSUPP too, not EINVAL (measured on
// 6.12.107 s390x).
func TestS390xNoJIT(t *testing.T) {
	for _, prof := range []string{"debian-7.2.13", "debian-6.18.15"} {
		testS390xNoJIT(t, prof)
	}
}

func testS390xNoJIT(t *testing.T, prof string) {
	tr := newTr(t, prof, "s390x", "bpf_fentry_test1")
	if n := tr.Profile.SlotLimit(tr.Arch); prof == "debian-7.2.13" && n != 27 {
		t.Errorf("s390x slot limit %d, want 27", n)
	}
	for _, c := range []struct {
		p    *Prog
		want string
	}{
		{&Prog{Name: "e", Kind: KindFentry}, "ENOMEM@load"},
		{&Prog{Name: "x", Kind: KindFexit}, "ENOMEM@load"},
		{&Prog{Name: "s", Kind: KindFsession}, "ENOTSUPP@load"},
	} {
		_, err := tr.Attach(c.p)
		if got := errnoOf(t, err); got != c.want {
			t.Errorf("%s on %s s390x: %s, want %s", c.p.Kind, prof, got, c.want)
		}
	}
	if tr.SlotsUsed() != 0 {
		t.Errorf("refused loads used %d slots", tr.SlotsUsed())
	}
}

// A build whose config states the JIT on s390x (Debian's 7.2.13 source
// and config built for z196) is not refused: the profile's JIT overrides
// the arch's Debian default, and its slot limit still holds.
func TestProfileJITOverridesArch(t *testing.T) {
	prof := *mustProfile(t, "debian-7.2.13")
	prof.JIT = map[string]bool{"s390x": true}
	tr := New(&prof, mustArch(t, "s390x"), known(t, "bpf_fentry_test1"))
	for _, k := range []Kind{KindFentry, KindFexit, KindFsession} {
		if _, err := tr.Attach(&Prog{Name: k.String(), Kind: k}); err != nil {
			t.Errorf("%s on s390x with the JIT: %v", k, err)
		}
	}
	if got := tr.SlotsUsed(); got != 4 {
		t.Errorf("slots used %d, want 4 (fsession takes two)", got)
	}
	prof.JIT = map[string]bool{"x86_64": false}
	tr = New(&prof, mustArch(t, "x86_64"), known(t, "bpf_fentry_test1"))
	if _, err := tr.Attach(&Prog{Name: "e", Kind: KindFentry}); errnoOf(t, err) != "ENOMEM@load" {
		t.Errorf("fentry on an x86_64 build without the JIT: %v, want ENOMEM at load", err)
	}
}

// Flags per arch and profile (bpf_trampoline_update; jmp mode clears
// SKIP_FRAME on x86 7.x).
func TestFlags(t *testing.T) {
	tests := []struct {
		profile, arch string
		kinds         []Kind
		ip            bool
		want          Flags
	}{
		{"debian-7.2.13", "x86_64", []Kind{KindFentry}, false, FlagRestoreRegs},
		{"debian-7.2.13", "x86_64", []Kind{KindFsession}, false, FlagCallOrig},
		{"debian-7.2.13", "x86_64", []Kind{KindFexit}, true, FlagCallOrig | FlagIPArg},
		{"debian-7.2.13", "x86_64", []Kind{KindFentry, KindFmodRet}, false, FlagCallOrig},
		{"debian-7.2.13", "arm64", []Kind{KindFsession}, false, FlagCallOrig | FlagSkipFrame},
		{"debian-7.2.13", "arm64", []Kind{KindFentry}, true, FlagRestoreRegs | FlagIPArg},
		{"debian-6.18.15", "x86_64", []Kind{KindFexit}, false, FlagCallOrig | FlagSkipFrame},
		{"debian-6.18.15", "x86_64", []Kind{KindFentry}, false, FlagRestoreRegs},
		{"linux-7.2.8", "x86_64", []Kind{KindFexit}, false, FlagCallOrig},
	}
	for _, tc := range tests {
		tr := newTr(t, tc.profile, tc.arch, "bpf_fentry_test1")
		for i, k := range tc.kinds {
			p := &Prog{Name: fmt.Sprint(i), Kind: k, IP: tc.ip && i == 0}
			if _, err := tr.Attach(p); err != nil {
				t.Fatalf("%v: %v", tc, err)
			}
		}
		if got := tr.Flags(); got != tc.want {
			t.Errorf("%s/%s %v ip=%v: flags %s (%s), want %s (%s)", tc.profile, tc.arch, tc.kinds, tc.ip, got.Hex(), got, tc.want.Hex(), tc.want)
		}
	}
}

func TestFlagsAfterDetachAll(t *testing.T) {
	tr := newTr(t, "debian-7.2.13", "x86_64", "bpf_fentry_test1")
	l, err := tr.Attach(&Prog{Name: "x", Kind: KindFexit})
	require.NoError(t, err)
	if err := tr.Detach(l); err != nil {
		t.Fatal(err)
	}
	if tr.HasImage() || tr.Flags() != 0 {
		t.Fatalf("after the last detach: image %v flags %s, want none", tr.HasImage(), tr.Flags().Hex())
	}
	if _, err := tr.Attach(&Prog{Name: "e", Kind: KindFentry}); err != nil {
		t.Fatal(err)
	}
	if tr.Flags() != FlagRestoreRegs {
		t.Fatalf("fentry after an fexit trampoline was emptied: flags %s, want 0x1", tr.Flags().Hex())
	}
}

// A failed update (image too large) leaves the lists and flags exactly as
// they were (rollback in __bpf_trampoline_link_prog, flags restored in
// bpf_trampoline_update).
func TestUpdateFailureRollsBack(t *testing.T) {
	tr := newTr(t, "debian-7.2.13", "arm64", "bpf_fentry_test1")
	tr.SizeFunc = func(p *Plan) (int, error) {
		return 1000 * (len(p.Fentry) + len(p.Fexit) + len(p.ModReturn)), nil
	}
	fill(t, tr, KindFentry, 2, "e") // 2000 bytes
	s, err := tr.Attach(&Prog{Name: "s", Kind: KindFsession, Cookie: true})
	if err != nil { // 4000 bytes
		t.Fatal(err)
	}
	_ = s
	before := snapshot(tr)
	_, err = tr.Attach(&Prog{Name: "x", Kind: KindFexit, IP: true}) // 5000 bytes
	if got := errnoOf(t, err); got != "E2BIG@attach" {
		t.Fatalf("oversized image: %s, want E2BIG", got)
	}
	if diff := cmp.Diff(before, snapshot(tr)); diff != "" {
		t.Fatalf("state changed by a failed attach (-before +after):\n%s", diff)
	}
}

type state struct {
	Lists [3][]string
	Ext   string
	Flags Flags
	Image bool
	Plan  *Plan
}

func snapshot(tr *Trampoline) state {
	var s state
	for _, l := range Lists() {
		for _, p := range tr.ListProgs(l) {
			s.Lists[l] = append(s.Lists[l], p.Name)
		}
	}
	if e := tr.Extension(); e != nil {
		s.Ext = e.Name
	}
	s.Flags, s.Image = tr.Flags(), tr.HasImage()
	if s.Image {
		s.Plan = tr.Plan()
	}
	return s
}

// Random attach/detach sequences keep the kernel's invariants: counts are
// list lengths, every fsession is on both lists in the same relative order,
// slots never exceed the limit, refused attaches change nothing, and a
// detach right after an attach restores the prior state.
func TestRandomSequencesKeepInvariants(t *testing.T) {
	kinds := []Kind{KindFentry, KindFexit, KindFmodRet, KindFsession}
	for seed := int64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		arch := []string{"x86_64", "arm64", "riscv64", "loongarch64"}[rng.Intn(4)]
		tr := newTr(t, "debian-7.2.13", arch, "bpf_fentry_test1")
		var progs []*Prog
		usable := kinds
		if !tr.Arch.FsessionJIT {
			usable = kinds[:3]
		}
		for i := 0; i < 45; i++ {
			k := usable[rng.Intn(len(usable))]
			progs = append(progs, &Prog{Name: fmt.Sprintf("p%d", i), Kind: k,
				Cookie: k == KindFsession && rng.Intn(2) == 0, IP: rng.Intn(5) == 0})
		}
		links := map[*Prog]*Link{}
		for step := 0; step < 300; step++ {
			p := progs[rng.Intn(len(progs))]
			if l, ok := links[p]; ok && rng.Intn(3) > 0 {
				if err := tr.Detach(l); err != nil {
					t.Fatalf("seed %d step %d: detach %s: %v", seed, step, p.Name, err)
				}
				delete(links, p)
			} else {
				before := snapshot(tr)
				l, err := tr.Attach(p)
				if err != nil {
					if after := snapshot(tr); !reflect.DeepEqual(before, after) {
						t.Fatalf("seed %d step %d: refused attach of %s changed state:\n%s", seed, step, p.Name, cmp.Diff(before, after))
					}
					if _, dup := links[p]; !dup && tr.SlotsUsed()+slotCost(p.Kind) <= tr.Profile.SlotLimit(tr.Arch) {
						t.Fatalf("seed %d step %d: attach %s refused with room left: %v", seed, step, p.Name, err)
					}
				} else {
					links[p] = l
					if rng.Intn(4) == 0 { // attach+detach is a no-op
						if err := tr.Detach(l); err != nil {
							t.Fatal(err)
						}
						delete(links, p)
						after := snapshot(tr)
						if before.Image && !reflect.DeepEqual(before, after) {
							t.Fatalf("seed %d step %d: attach+detach of %s is not a no-op:\n%s", seed, step, p.Name, cmp.Diff(before, after))
						}
					}
				}
			}
			checkInvariants(t, tr, links, fmt.Sprintf("seed %d step %d", seed, step))
		}
	}
}

func checkInvariants(t *testing.T, tr *Trampoline, links map[*Prog]*Link, where string) {
	t.Helper()
	want := 0
	for p := range links {
		want += slotCost(p.Kind)
	}
	if tr.SlotsUsed() != want {
		t.Fatalf("%s: %d slots used, links account for %d", where, tr.SlotsUsed(), want)
	}
	if tr.SlotsUsed() > tr.Profile.SlotLimit(tr.Arch) {
		t.Fatalf("%s: %d slots used, limit %d", where, tr.SlotsUsed(), tr.Profile.SlotLimit(tr.Arch))
	}
	var entrySessions, exitSessions []string
	for _, p := range tr.ListProgs(ListFentry) {
		if p.Kind == KindFsession {
			entrySessions = append(entrySessions, p.Name)
		}
	}
	for _, p := range tr.ListProgs(ListFexit) {
		if p.Kind == KindFsession {
			exitSessions = append(exitSessions, p.Name)
		}
	}
	if diff := cmp.Diff(entrySessions, exitSessions); diff != "" {
		t.Fatalf("%s: fsession order differs between FENTRY and FEXIT:\n%s", where, diff)
	}
	for _, l := range Lists() {
		seen := map[string]bool{}
		for _, p := range tr.ListProgs(l) {
			if seen[p.Name] {
				t.Fatalf("%s: %s twice on %s", where, p.Name, l)
			}
			seen[p.Name] = true
			if links[p] == nil {
				t.Fatalf("%s: %s on %s without a link", where, p.Name, l)
			}
		}
	}
	if tr.HasImage() != (len(links) > 0) {
		t.Fatalf("%s: image %v with %d links", where, tr.HasImage(), len(links))
	}
	if tr.HasImage() {
		p := tr.Plan()
		// Entry and exit nodes of one fsession program share a cookie index.
		idx := map[string]int{}
		for _, n := range p.Fentry {
			if n.Cookie {
				idx[n.Prog] = n.CookieIndex
			}
		}
		for _, n := range p.Fexit {
			if n.Cookie && idx[n.Prog] != n.CookieIndex {
				t.Fatalf("%s: %s has cookie index %d at entry, %d at exit", where, n.Prog, idx[n.Prog], n.CookieIndex)
			}
		}
	}
}

// The slot limits Debian 7.2.13 and 7.3.4 were measured to enforce: 36 on
// x86_64, 37 on arm64, an fsession taking two.
func TestMeasuredSlotLimits(t *testing.T) {
	for _, tc := range []struct {
		profile, arch string
		fentries      int
	}{{"debian-7.2.13", "x86_64", 36}, {"debian-7.3.4", "x86_64", 36}, {"debian-7.2.13", "arm64", 37}, {"debian-6.18.15", "x86_64", 38}} {
		tr := newTr(t, tc.profile, tc.arch, "bpf_fentry_test1")
		fill(t, tr, KindFentry, tc.fentries, "e")
		_, err := tr.Attach(&Prog{Name: "x", Kind: KindFexit})
		if got := errnoOf(t, err); got != "E2BIG@attach" {
			t.Errorf("%s/%s: link %d: %s, want E2BIG", tc.profile, tc.arch, tc.fentries+1, got)
		}
	}
	tr := newTr(t, "debian-7.2.13", "x86_64", "bpf_fentry_test1")
	fill(t, tr, KindFsession, 18, "s")
	_, err := tr.Attach(&Prog{Name: "e", Kind: KindFentry})
	if got := errnoOf(t, err); got != "E2BIG@attach" {
		t.Errorf("fentry after 18 fsession on 7.2.13 x86_64: %s, want E2BIG", got)
	}
}

// A program's first link to a BPF-program target uses up the target it was
// loaded for: after a detach it cannot be linked again (EINVAL), where a
// vmlinux function's trampoline takes it back (Debian 7.2.13, both arches:
// cases/bpf_prog_target_relink.tramp, errno_ebusy_same_prog.tramp). A
// refused link does not use it up.
func TestRelinkAfterDetach(t *testing.T) {
	bpfTarget := Target{Name: "f", Proto: Prototype{Args: []Type{{Size: 8, Ptr: true}}, Ret: Type{Size: 4, Signed: true}},
		Attrs: Attrs{BPFProg: true, TailCallReachable: true}}
	for _, tc := range []struct {
		target Target
		want   string
	}{{known(t, "bpf_fentry_test1"), "ok"}, {bpfTarget, "EINVAL@attach"}} {
		tr := New(mustProfile(t, "debian-7.2.13"), mustArch(t, "x86_64"), tc.target)
		e, r := &Prog{Name: "e", Kind: KindFentry}, &Prog{Name: "r", Kind: KindFreplace}
		if tc.target.Attrs.BPFProg {
			if _, err := tr.Attach(r); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Attach(e); errnoOf(t, err) != "EBUSY@attach" {
				t.Fatalf("fentry next to freplace: %v", err)
			}
			tr.Detach(tr.extension)
		}
		l, err := tr.Attach(e)
		if err != nil {
			t.Fatalf("%s: first link after a refused one: %v", tc.target.Name, err)
		}
		if err := tr.Detach(l); err != nil {
			t.Fatal(err)
		}
		_, err = tr.Attach(e)
		if got := errnoOf(t, err); got != tc.want {
			t.Errorf("%s: link after detach: %s, want %s", tc.target.Name, got, tc.want)
		}
	}
}
