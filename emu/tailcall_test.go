package emu

import (
	"strings"
	"testing"

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
		if err != nil {
			t.Fatal(err)
		}
		runs, err := RunSteps(c, prof, a)
		if err != nil {
			t.Fatal(err)
		}
		cr := runs[len(runs)-1]
		if cr.Plan.Flags&trampoline.FlagTailCallCtx == 0 {
			t.Fatalf("plan flags %v: no TAIL_CALL_CTX", cr.Plan.Flags)
		}
		if cr.Run.OrigRet != 0 {
			t.Errorf("the guest's target program returns 0, the run says %#x", cr.Run.OrigRet)
		}
		g, err := Generate(cr.Plan, nil, c.Progs)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Check(g.Setup, cr.Plan, cr.Run)
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Err(); err != nil {
			t.Errorf("with TAIL_CALL_CTX: %v", err)
		}
		without := *cr.Plan
		without.Flags &^= trampoline.FlagTailCallCtx
		g, err = Generate(&without, nil, c.Progs)
		if err != nil {
			t.Fatal(err)
		}
		res, err = Check(g.Setup, cr.Plan, cr.Run)
		if err != nil {
			t.Fatal(err)
		}
		err = res.Err()
		if err == nil || !strings.Contains(err.Error(), CheckTailCallCtx) {
			t.Errorf("without push rax and the reloads: %v, want a %s violation", err, CheckTailCallCtx)
		}
	}
}
