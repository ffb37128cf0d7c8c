package emu

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// TestTailCallCtx: an x86_64 trampoline on a tail-call-reachable BPF
// program must enter the program's body with the rax it was entered with
// (the tail-call counter pointer); the same image built without
// TAIL_CALL_CTX clobbers it, and the emulator says so. Both with the
// original call (fentry+fexit) and with the return into the body
// (fentry only).
func TestTailCallCtx(t *testing.T) {
	prof, _ := trampoline.LookupProfile("debian-7.2.13")
	a, _ := trampoline.LookupArch("x86_64")
	for _, src := range []string{
		"target tc(ptr) -> s32 bpf-prog tail-call\nprog e fentry\nprog x fexit\nattach e\nattach x\nrun\n",
		"target tc(ptr) -> s32 bpf-prog tail-call\nprog e fentry\nattach e\nrun\n",
	} {
		c, err := cases.Parse("tc.tramp", []byte(src))
		require.NoError(t, err)
		runs, err := RunSteps(c, prof, a)
		require.NoError(t, err)
		cr := runs[len(runs)-1]
		if cr.Plan.Flags&trampoline.FlagTailCallCtx == 0 {
			t.Fatalf("plan flags %v: no TAIL_CALL_CTX", cr.Plan.Flags)
		}
		if cr.Run.OrigRet != 0 {
			t.Errorf("the guest's target program returns 0, the run says %#x", cr.Run.OrigRet)
		}
		g, err := Generate(cr.Plan, nil, c.Progs)
		require.NoError(t, err)
		res, err := Check(g.Setup, cr.Plan, cr.Run)
		require.NoError(t, err)
		if err := res.Err(); err != nil {
			t.Errorf("with TAIL_CALL_CTX: %v", err)
		}
		without := *cr.Plan
		without.Flags &^= trampoline.FlagTailCallCtx
		g, err = Generate(&without, nil, c.Progs)
		require.NoError(t, err)
		res, err = Check(g.Setup, cr.Plan, cr.Run)
		require.NoError(t, err)
		err = res.Err()
		if err == nil || !strings.Contains(err.Error(), CheckTailCallCtx) {
			t.Errorf("without push rax and the reloads: %v, want a %s violation", err, CheckTailCallCtx)
		}
	}
}

// The guest's target program as a test-run target: its ctx is the
// kernel's skb (unknown), it returns 0, or the tail-called program's
// value when its tail call is taken; other prototypes are not runnable.
func TestTestTargetOfBPFProg(t *testing.T) {
	parse := func(src string) trampoline.Target {
		c, err := cases.Parse("t.tramp", []byte(src+"\nprog e fentry\nattach e\n"))
		require.NoError(t, err)
		return c.Target
	}
	for _, tc := range []struct {
		src string
		ok  bool
		ret uint64
	}{
		{"target f(ptr) -> s32 bpf-prog", true, 0},
		{"target f(ptr) -> u32 bpf-prog tail-call", true, 0},
		{"target f(ptr) -> s32 bpf-prog tail-call-taken", true, trampoline.TailCalleeRet},
		{"target f(ptr, u64) -> s32 bpf-prog", false, 0},
		{"target f(ptr) -> u64 bpf-prog", false, 0},
	} {
		tt, ok := TestTargetOf(parse(tc.src))
		if ok != tc.ok || ok && (tt.Ret != tc.ret || !tt.UnknownArg(0)) {
			t.Errorf("%s: %+v %v, want ok %v, ret %#x, arg 0 unknown", tc.src, tt, ok, tc.ok, tc.ret)
		}
	}
	if tt, ok := TestTargetOf(parse("target bpf_fentry_test1")); !ok || tt.Ret != 2 {
		t.Errorf("bpf_fentry_test1: %+v %v", tt, ok)
	}
}
