package cases

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/trampoline"
)

// The syntax the format was specified with, line for line (with one of the
// two alternative target lines at a time).
const specExample = `# comment to end of line
kernel debian-7.2.13 debian-7.3.4     # optional: profiles the case applies to (default: all that can run it)
arch x86_64 arm64                     # optional (default: both)
TARGET
prog s fsession cookie ip             # prog NAME KIND [cookie] [ip] [sleepable] [link-cookie=N] [returns=N]
prog e fentry link-cookie=0x1234
prog m fmod_ret returns=0
attach s
attach e expect ok
detach e
attach m
attach s expect EBUSY                 # the same program twice; expect ERRNO-name: model and real kernel must agree
run                                   # trigger; for known test_run targets the kernel's own arguments
run 1 2 3                             # explicit arguments (emulator)
`

func TestSpecExample(t *testing.T) {
	for _, target := range []string{
		"target bpf_fentry_test3               # a function whose prototype tramp knows, or an explicit prototype:",
		"target my_func(u8, s32, u64) -> u64    # u8..u64 s8..s64 ptr structN (N bytes, N<=16); '-> void' allowed",
	} {
		src := strings.Replace(specExample, "TARGET", target, 1)
		c, err := Parse("spec.tramp", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if diff := cmp.Diff([]string{"debian-7.2.13", "debian-7.3.4"}, c.Kernels); diff != "" {
			t.Error(diff)
		}
		if diff := cmp.Diff([]string{"x86_64", "arm64"}, c.Arches); diff != "" {
			t.Error(diff)
		}
		want := []*trampoline.Prog{
			{Name: "s", Kind: trampoline.KindFsession, Cookie: true, IP: true},
			{Name: "e", Kind: trampoline.KindFentry, LinkCookie: 0x1234},
			{Name: "m", Kind: trampoline.KindFmodRet},
		}
		if diff := cmp.Diff(want, c.Progs); diff != "" {
			t.Errorf("progs (-want +got):\n%s", diff)
		}
		var ops []string
		for _, s := range c.Steps {
			op := string(s.Op)
			if s.Prog != nil {
				op += " " + s.Prog.Name
			}
			if s.Expect != "" {
				op += " expect " + s.Expect
			}
			ops = append(ops, op)
		}
		wantOps := []string{"attach s", "attach e expect ok", "detach e", "attach m", "attach s expect EBUSY", "run", "run"}
		if diff := cmp.Diff(wantOps, ops); diff != "" {
			t.Errorf("steps (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int64{1, 2, 3}, c.Steps[6].Args); diff != "" {
			t.Errorf("run args: %s", diff)
		}
		res, err := Replay(c, mustProfile(t, "debian-7.2.13"), mustArch(t, "x86_64"), nil)
		require.NoError(t, err)
		if bad := res.Disagreements(); len(bad) != 0 {
			t.Errorf("disagreements: %+v", bad)
		}
	}
}

func TestExplicitPrototype(t *testing.T) {
	c, err := Parse("x.tramp", []byte("target my_func(u8, s32, u64, struct12, ptr) -> u64 error-inject btf-id=77\nprog x fexit\n"))
	require.NoError(t, err)
	want := trampoline.Prototype{Args: []trampoline.Type{{Size: 1}, {Size: 4, Signed: true}, {Size: 8}, {Size: 12, Struct: true}, {Size: 8, Ptr: true}}, Ret: trampoline.Type{Size: 8}}
	if diff := cmp.Diff(want, c.Target.Proto); diff != "" {
		t.Error(diff)
	}
	if !c.Target.Attrs.ErrorInject || c.Target.BTFID != 77 || c.Target.Key() != 6442450944+77 {
		t.Errorf("attrs %+v id %d key %d", c.Target.Attrs, c.Target.BTFID, c.Target.Key())
	}
	if got := c.Target.Proto.String(); got != "(u8, s32, u64, struct12, ptr) -> u64" {
		t.Errorf("prototype prints as %q", got)
	}
	c, err = Parse("v.tramp", []byte("target f() -> void\n"))
	if err != nil || len(c.Target.Proto.Args) != 0 || !c.Target.Proto.Ret.IsVoid() {
		t.Errorf("empty prototype: %v %+v", err, c)
	}
}

// Every error names file:line:column and says what was expected.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		src  string
		want string // file:line:col: and a fragment of the message
	}{
		{"target bpf_fentry_test1\nprog s fsesion\n", "e.tramp:2:8: unknown program kind \"fsesion\""},
		{"target bpf_fentry_test1\nprog s fsession cookies\n", "e.tramp:2:17: unknown program option \"cookies\""},
		{"target bpf_fentry_test1\nprog s fentry link-cookie=zz\n", "e.tramp:2:27: bad link cookie \"zz\""},
		{"target bpf_fentry_test1\nprog s fentry returns=1x\n", "e.tramp:2:23: bad return value"},
		{"target bpf_fentry_test1\nattach s\n", "e.tramp:2:8: no program \"s\" declared"},
		{"target bpf_fentry_test1\nprog s fentry\nattach s expect EWHAT\n", "e.tramp:3:17: unknown outcome \"EWHAT\""},
		{"target bpf_fentry_test1\nprog s fentry\nattach s expect\n", "e.tramp:3:10: expect takes one outcome"},
		{"target bpf_fentry_test1\nprog s fentry\nattach s because\n", "e.tramp:3:10: unexpected \"because\""},
		{"target bpf_fentry_test1\nprog s fentry\ndetach s expect EBUSY\n", "e.tramp:3:17: a detach never fails"},
		{"kernel debian-9.9\n", "e.tramp:1:8: unknown kernel profile \"debian-9.9\""},
		{"kernel debian-7.2.13 all\n", "e.tramp:1:22: kernel all stands alone"},
		{"kernel all debian-7.2.13\n", "e.tramp:1:8: kernel all stands alone"},
		{"arch mips\n", "e.tramp:1:6: unknown arch \"mips\""},
		{"target nosuch_function\n", "e.tramp:1:8: tramp does not know the prototype of nosuch_function"},
		{"target f(u8, q16) -> u64\n", "e.tramp:1:14: unknown type \"q16\""},
		{"target f(u8, void) -> u64\n", "e.tramp:1:14: void is only a return type"},
		{"target f(u8) u64\n", "e.tramp:1:13: expected '-> TYPE'"},
		{"target f(u8 -> u64\n", "e.tramp:1:9: unclosed '('"},
		{"target f(u8) -> u64 sparkly\n", "e.tramp:1:21: unknown target attribute \"sparkly\""},
		{"target f(ptr) -> s32 tail-call-subprog\n", "e.tramp:1:22: tail-call needs bpf-prog"},
		{"target f(ptr) -> s32 tail-call-taken\n", "e.tramp:1:22: tail-call needs bpf-prog"},
		{"target f(ptr) -> s32 global-subprog\n", "e.tramp:1:22: global-subprog needs bpf-prog"},
		{"target f(ptr) -> s32 bpf-prog global-subprog tail-call-subprog\n", "e.tramp:1:46: global-subprog and tail-call-subprog"},
		{"target bpf_fentry_test1\ntarget bpf_fentry_test1\n", "e.tramp:2:8: target bpf_fentry_test1 declared twice (first on line 1)"},
		{"target bpf_fentry_test1\ntarget bpf_fentry_test2\nprog e fentry\n", "e.tramp:3:1: program e: the case has 2 targets; name this program's function with on=FUNC"},
		{"target bpf_fentry_test1\nprog e fentry on=bpf_fentry_test2\n", "e.tramp:2:18: on=bpf_fentry_test2: no target bpf_fentry_test2 declared before this line"},
		{"target bpf_fentry_test1\nprog m fentry.multi on=bpf_fentry_test1\n", "e.tramp:2:21: a fentry.multi program names its functions on its attach line (attach m on=F1,F2,...)"},
		{"target bpf_fentry_test1\nprog m fentry.multi link-cookie=1\n", "e.tramp:2:1: a fentry.multi program has a cookie per function: give them on its attach line (link-cookies=C1,C2,...), not link-cookie="},
		{"target bpf_fentry_test1\ntarget bpf_fentry_test2\nprog m fentry.multi\nattach m link-cookies=1\n", "e.tramp:4:1: link-cookies gives 1 cookies for 2 functions"},
		{"target bpf_fentry_test1\nprog m fentry.multi\nattach m on=bpf_fentry_test9\n", "e.tramp:3:13: on=: no target \"bpf_fentry_test9\" declared before this line"},
		{"target bpf_fentry_test1\nprog m fentry.multi\nattach m link-cookies=1,x\n", "e.tramp:3:25: bad link cookie \"x\": want an unsigned 64-bit number"},
		{"target bpf_fentry_test1\nprog e fentry\nattach e on=bpf_fentry_test1\n", "e.tramp:3:10: on: only the attach of a multi program (fentry.multi, fexit.multi, fsession.multi) takes on= and link-cookies="},
		{"target bpf_fentry_test1\ntarget bpf_fentry_test2\nrun 1\n", "e.tramp:3:1: run with arguments in a case with several targets: name the function first (run FUNC ARGS...)"},
		{"target bpf_fentry_test1\nrun bpf_fentry_test2\n", "e.tramp:2:5: run bpf_fentry_test2: no target bpf_fentry_test2 declared before this line"},
		{"target bpf_fentry_test1\ntarget bpf_fentry_test2\nrun bpf_fentry_test2 1\n", "e.tramp:3:1: run gives 1 arguments, bpf_fentry_test2 takes 2"},
		{"prog s fentry\n", "e.tramp:1:1: no target line"},
		{"target bpf_fentry_test1\nfrobnicate\n", "e.tramp:2:1: unknown keyword \"frobnicate\""},
		{"target bpf_fentry_test1\nrun 1 2\n", "e.tramp:2:1: run gives 2 arguments, bpf_fentry_test1 takes 1"},
		{"target bpf_fentry_test1\nrun 1x\n", "e.tramp:2:5: bad argument \"1x\""},
		{"target bpf_fentry_test1\nprog s fentry\nprog s fexit\n", "e.tramp:3:6: program s declared twice"},
		{"target bpf_fentry_test1 \x01\n", "e.tramp:1:25: unexpected character"},
	}
	for _, tc := range tests {
		_, err := Parse("e.tramp", []byte(tc.src))
		if err == nil {
			t.Errorf("%q: parsed, want error %q", tc.src, tc.want)
			continue
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%q: error %T is not a position error", tc.src, err)
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q:\n got  %v\n want %s...", tc.src, err, tc.want)
		}
	}
}

func TestReplayDetachWithoutLink(t *testing.T) {
	c, err := Parse("d.tramp", []byte("target bpf_fentry_test1\nprog s fentry returns=1\nattach s expect EINVAL\ndetach s\n"))
	require.NoError(t, err)
	_, err = Replay(c, mustProfile(t, "debian-7.2.13"), mustArch(t, "x86_64"), nil)
	if !errors.Is(err, ErrReplay) || !strings.HasPrefix(err.Error(), "d.tramp:4: detach s") {
		t.Fatalf("got %v, want a replay error at d.tramp:4", err)
	}
}

func TestDefaultProfilesSkipUnsupportedKinds(t *testing.T) {
	c, err := Parse("p.tramp", []byte("target bpf_fentry_test1\nprog s fsession\n"))
	require.NoError(t, err)
	var names []string
	for _, p := range c.Profiles() {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff([]string{"debian-7.2.13", "debian-7.3.4", "linux-7.2.8", "debian-7.2.13+z196", "debian-7.3.4+z196"}, names); diff != "" {
		t.Errorf("profiles for an fsession case (-want +got):\n%s", diff)
	}
}

// kernel all keeps the builds whose facts refuse a program kind: the case
// checks the refusal there.
func TestKernelAllKeepsUnsupportedKinds(t *testing.T) {
	c, err := Parse("p.tramp", []byte("kernel all\ntarget bpf_fentry_test1\nprog s fsession\n"))
	require.NoError(t, err)
	var names []string
	for _, p := range c.Profiles() {
		names = append(names, p.Name)
		a := mustArch(t, "x86_64")
		if len(p.Arches) > 0 {
			a = mustArch(t, p.Arches[0]) // a rebuild of one arch
		}
		if !c.AppliesTo(p, a) {
			t.Errorf("AppliesTo(%s, %s) = false for kernel all", p.Name, a.Name)
		}
	}
	if diff := cmp.Diff([]string{"debian-7.2.13", "debian-7.3.4", "linux-7.2.8", "debian-6.18.15", "debian-7.2.13+z196", "debian-7.3.4+z196"}, names); diff != "" {
		t.Errorf("profiles for kernel all (-want +got):\n%s", diff)
	}
	if got := string(Format(c)); !strings.HasPrefix(got, "kernel all\n") {
		t.Errorf("Format lost kernel all:\n%s", got)
	}
}

func mustProfile(t *testing.T, n string) *trampoline.Profile {
	t.Helper()
	p, err := trampoline.LookupProfile(n)
	require.NoError(t, err)
	return p
}

func mustArch(t *testing.T, n string) *trampoline.Arch {
	t.Helper()
	a, err := trampoline.LookupArch(n)
	require.NoError(t, err)
	return a
}
