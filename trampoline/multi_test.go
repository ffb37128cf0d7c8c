package trampoline

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func multiKernel(t *testing.T, arch string, names ...string) *Kernel {
	t.Helper()
	p, err := LookupProfile("debian-7.2.13")
	require.NoError(t, err)
	a, err := LookupArch(arch)
	require.NoError(t, err)
	var targets []Target
	for _, n := range names {
		tg, ok := KnownTarget(n)
		require.True(t, ok, n)
		targets = append(targets, tg)
	}
	return NewKernel(p, a, targets, nil)
}

func multiErrno(t *testing.T, err error) Errno {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "%v is no kernel refusal", err)
	return e.Errno
}

// A refusal on one function leaves no node of the multi link anywhere,
// and names the function.
func TestAttachMultiAllOrNothing(t *testing.T) {
	k := multiKernel(t, "x86_64", "bpf_fentry_test1", "migrate_disable", "bpf_fentry_test2")
	m := &Prog{Name: "m", Kind: KindFentryMulti}
	_, err := k.AttachMulti(m, []string{"bpf_fentry_test1", "migrate_disable", "bpf_fentry_test2"}, nil)
	require.Equal(t, EINVAL, multiErrno(t, err))
	require.Contains(t, err.Error(), "migrate_disable: ")
	for _, f := range k.Functions() {
		require.Zero(t, k.Trampoline(f).SlotsUsed(), f)
	}

	// The slot limit on the second function rolls back the first.
	k = multiKernel(t, "x86_64", "bpf_fentry_test1", "bpf_fentry_test2")
	t2 := k.Trampoline("bpf_fentry_test2")
	for i := 0; t2.SlotsUsed() < k.Profile.SlotLimit(k.Arch); i++ {
		_, err := t2.Attach(&Prog{Name: "e" + string(rune('a'+i)), Kind: KindFentry})
		require.NoError(t, err)
	}
	_, err = k.AttachMulti(m, []string{"bpf_fentry_test1", "bpf_fentry_test2"}, []uint64{1, 2})
	require.Equal(t, E2BIG, multiErrno(t, err))
	require.Contains(t, err.Error(), "bpf_fentry_test2: ")
	require.Zero(t, k.Trampoline("bpf_fentry_test1").SlotsUsed())
	require.False(t, k.Trampoline("bpf_fentry_test1").HasImage())
}

// Each function gets its own cookie and an fsession multi takes two
// slots on each; detaching takes every node off.
func TestAttachMultiCookiesAndSlots(t *testing.T) {
	k := multiKernel(t, "x86_64", "bpf_fentry_test1", "bpf_fentry_test2")
	s := &Prog{Name: "s", Kind: KindFsessionMulti, Cookie: true}
	ml, err := k.AttachMulti(s, []string{"bpf_fentry_test2", "bpf_fentry_test1"}, []uint64{0x22, 0x11})
	require.NoError(t, err)
	for f, want := range map[string]Hex64{"bpf_fentry_test1": 0x11, "bpf_fentry_test2": 0x22} {
		tr := k.Trampoline(f)
		require.Equal(t, 2, tr.SlotsUsed(), f)
		p := tr.Plan()
		require.Len(t, p.Fentry, 1)
		require.Len(t, p.Fexit, 1)
		require.Equal(t, want, p.Fentry[0].LinkCookie, f)
		require.Equal(t, want, p.Fexit[0].LinkCookie, f)
		require.True(t, p.Fentry[0].Cookie, f)
		require.Equal(t, 1, p.CookieCount, f)
	}
	require.NoError(t, k.DetachMulti(ml))
	for _, f := range k.Functions() {
		require.Zero(t, k.Trampoline(f).SlotsUsed(), f)
	}
}

// The link's own refusals, in the kernel's order.
func TestAttachMultiRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		arch  string
		prog  Prog
		funcs []string
		want  Errno
		stage Stage
	}{
		{"arm64 has no multi attach", "arm64", Prog{Kind: KindFentryMulti}, []string{"bpf_fentry_test1"}, EOPNOTSUPP, StageAttach},
		{"arch before count", "arm64", Prog{Kind: KindFentryMulti}, nil, EOPNOTSUPP, StageAttach},
		{"no function", "x86_64", Prog{Kind: KindFentryMulti}, nil, EINVAL, StageAttach},
		{"duplicate", "x86_64", Prog{Kind: KindFexitMulti}, []string{"bpf_fentry_test1", "bpf_fentry_test1"}, EINVAL, StageAttach},
		{"session cookie outside fsession", "x86_64", Prog{Kind: KindFexitMulti, Cookie: true}, []string{"bpf_fentry_test1"}, EACCES, StageLoad},
		{"returns non-zero", "x86_64", Prog{Kind: KindFentryMulti, Returns: 1}, []string{"bpf_fentry_test1"}, EINVAL, StageLoad},
		{"sleepable on a non-sleepable function", "x86_64", Prog{Kind: KindFentryMulti, Sleepable: true}, []string{"bpf_fentry_test1", "bpf_fentry_test2"}, EINVAL, StageAttach},
		{"fexit on noreturn", "x86_64", Prog{Kind: KindFexitMulti}, []string{"bpf_fentry_test1", "do_exit"}, EINVAL, StageAttach},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := multiKernel(t, tc.arch, "bpf_fentry_test1", "bpf_fentry_test2", "do_exit")
			p := tc.prog
			p.Name = "m"
			_, err := k.AttachMulti(&p, tc.funcs, nil)
			require.Equal(t, tc.want, multiErrno(t, err))
			var e *Error
			require.True(t, errors.As(err, &e))
			require.Equal(t, tc.stage, e.Stage)
		})
	}
	// Before 7.2 the attach types are unknown: the load fails.
	old, err := LookupProfile("debian-6.18.15")
	require.NoError(t, err)
	a, _ := LookupArch("x86_64")
	tg, _ := KnownTarget("bpf_fentry_test1")
	k := NewKernel(old, a, []Target{tg}, nil)
	_, err = k.AttachMulti(&Prog{Name: "m", Kind: KindFentryMulti}, []string{"bpf_fentry_test1"}, nil)
	require.Equal(t, EINVAL, multiErrno(t, err))
	// A multi program does not attach through a single link.
	_, err = k.Trampoline("bpf_fentry_test1").Attach(&Prog{Name: "m", Kind: KindFentryMulti})
	require.Error(t, err)
}

// check_dup_ids sorts by BTF id where the ids are known, cookies with
// them.
func TestAttachMultiSortsByID(t *testing.T) {
	p, _ := LookupProfile("debian-7.2.13")
	a, _ := LookupArch("x86_64")
	t1, _ := KnownTarget("bpf_fentry_test1")
	t2, _ := KnownTarget("bpf_fentry_test2")
	t1.BTFID, t2.BTFID = 200, 100
	k := NewKernel(p, a, []Target{t1, t2}, nil)
	ml, err := k.AttachMulti(&Prog{Name: "m", Kind: KindFentryMulti}, []string{"bpf_fentry_test1", "bpf_fentry_test2"}, []uint64{1, 2})
	require.NoError(t, err)
	require.Equal(t, []string{"bpf_fentry_test2", "bpf_fentry_test1"}, ml.Funcs)
	require.Equal(t, []uint64{2, 1}, ml.Cookies)
	require.Equal(t, Hex64(1), k.Trampoline("bpf_fentry_test1").Plan().Fentry[0].LinkCookie)
}
