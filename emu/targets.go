package emu

import (
	"github.com/bpftramp/tramp/trampoline"
)

// TestTarget is a function BPF_PROG_TEST_RUN calls for tracing programs
// (net/bpf/test_run.c, facts sheet §F.3): the arguments it passes and
// what the function returns.
type TestTarget struct {
	Args []uint64
	// Unknown marks arguments whose value is an address on the kernel's
	// stack (&arg, &b): the emulator passes a placeholder and comparisons
	// with a kernel leave them out.
	Unknown []bool
	Ret     uint64
}

// placeholderPtr stands for a kernel stack address passed as an argument.
const placeholderPtr = 0xffffc90000b0f000

// TestTargets are the kernel's deterministic test_run targets.
var TestTargets = map[string]TestTarget{
	"bpf_fentry_test1":  {Args: []uint64{1}, Ret: 2},
	"bpf_fentry_test2":  {Args: []uint64{2, 3}, Ret: 5},
	"bpf_fentry_test3":  {Args: []uint64{4, 5, 6}, Ret: 15},
	"bpf_fentry_test4":  {Args: []uint64{7, 8, 9, 10}, Ret: 34},
	"bpf_fentry_test5":  {Args: []uint64{11, 12, 13, 14, 15}, Ret: 65},
	"bpf_fentry_test6":  {Args: []uint64{16, 17, 18, 19, 20, 21}, Ret: 111},
	"bpf_fentry_test7":  {Args: []uint64{0}, Ret: 0},
	"bpf_fentry_test8":  {Args: []uint64{placeholderPtr}, Unknown: []bool{true}, Ret: 0},
	"bpf_fentry_test9":  {Args: []uint64{placeholderPtr}, Unknown: []bool{true}, Ret: 0},
	"bpf_fentry_test10": {Args: []uint64{0}, Ret: 0},
	// bpf_modify_return_test(1, &b) with b = 2 returns a + ++*b.
	"bpf_modify_return_test": {Args: []uint64{1, placeholderPtr}, Unknown: []bool{false, true}, Ret: 4},
	// bpf_modify_return_test2(1, &b, 3, 4, (void *)5, 6, 7).
	"bpf_modify_return_test2": {Args: []uint64{1, placeholderPtr, 3, 4, 5, 6, 7}, Unknown: []bool{false, true}, Ret: 29},
}

// TestRunOrder is the order in which BPF_PROG_TEST_RUN of an fentry,
// fexit or fsession program calls the test targets
// (bpf_prog_test_run_tracing): one trigger of a case with several of
// them runs their trampolines in this order.
var TestRunOrder = []string{"bpf_fentry_test1", "bpf_fentry_test2", "bpf_fentry_test3", "bpf_fentry_test4",
	"bpf_fentry_test5", "bpf_fentry_test6", "bpf_fentry_test7", "bpf_fentry_test8", "bpf_fentry_test9", "bpf_fentry_test10"}

// Matches says whether the arguments a program read (count and values)
// are the ones the test run passes to this target: the known ones equal,
// the kernel stack addresses whatever they are.
func (t TestTarget) Matches(argCnt uint64, args []uint64) bool {
	if argCnt != uint64(len(t.Args)) || len(args) < len(t.Args) {
		return false
	}
	for i, v := range t.Args {
		if !t.UnknownArg(i) && args[i] != v {
			return false
		}
	}
	return true
}

// UnknownArg says whether argument i of a test target is a kernel stack
// address.
func (t TestTarget) UnknownArg(i int) bool { return i < len(t.Unknown) && t.Unknown[i] }

// guestTargetProg is the BPF-program target the guest loads for a case
// (vm/guestapi.TargetProg, built by the guest): a socket filter that returns 0
// (TailCalleeRet when its tail call is taken), which BPF_PROG_TEST_RUN
// runs on an skb whose address is the kernel's.
var guestTargetProg = TestTarget{Args: []uint64{placeholderPtr}, Unknown: []bool{true}, Ret: 0}

// TestTargetOf is what a test run passes to the target and gets back: a
// kernel test_run function of TestTargets, or the guest's target program
// for a BPF-program target with its prototype, (ptr) -> s32 or u32.
func TestTargetOf(tg trampoline.Target) (TestTarget, bool) {
	if tg.Attrs.BPFProg {
		p := tg.Proto
		ok := len(p.Args) == 1 && p.Args[0].Ptr && p.Ret.Size == 4 && !p.Ret.Struct
		t := guestTargetProg
		if tg.Attrs.TailCallTaken {
			t.Ret = trampoline.TailCalleeRet
		}
		return t, ok
	}
	t, ok := TestTargets[tg.Name]
	return t, ok
}
