package emu

import (
	"fmt"
	"slices"

	"github.com/bpftramp/tramp/trampoline"
)

// KernelComparison counts what a comparison with a kernel's observations
// looked at.
type KernelComparison struct {
	// Invocations compared; Fields the individual values compared;
	// FrameWords the stack words around ctx compared.
	Invocations, Fields, FrameWords int
	// UnknownArgs counts argument slots left out because the kernel
	// passed an address on its own stack (TestTarget.Unknown).
	UnknownArgs int
	Problems    []string
}

// CompareKernel compares the calls of a run with what the observer
// programs recorded in a real kernel for the same run (kernel: their
// records as Calls, the frame dump in Frame with FrameInit set where the
// kernel's read succeeded): order, program,
// phase, argument count, arguments, return value, IP, attach cookie,
// session cookie slot and values, func_meta (the frame word at ctx-8)
// and every slot word between the lowest cookie and the return value.
// unknown marks argument indexes whose values the kernel alone knows.
func CompareKernel(calls, kernel []Call, p *trampoline.Plan, s *Setup, unknown func(arg int) bool) KernelComparison {
	var kc KernelComparison
	bad := func(format string, args ...any) { kc.Problems = append(kc.Problems, fmt.Sprintf(format, args...)) }
	if len(calls) != len(kernel) {
		var g, w []string
		for _, c := range calls {
			g = append(g, c.Prog+"/"+c.Phase)
		}
		for _, o := range kernel {
			w = append(w, o.Prog+"/"+o.Phase)
		}
		bad("the emulator ran %v, the kernel %v", g, w)
		return kc
	}
	locs, _ := placeArgs(s.Arch, s.Model)
	slotUnknown := func(k int) bool { return k < len(locs) && unknown(locs[k].arg) }
	below := 1 + p.CookieCount
	// An arch that keeps the ip slot without IP_ARG (s390x) never writes
	// it then: it holds what the stack held, in the kernel and here.
	ipAlways := false
	if a, err := trampoline.LookupArch(p.Arch); err == nil {
		ipAlways = a.IPSlotAlways
	}
	unwrittenIP := ipAlways && p.Flags&trampoline.FlagIPArg == 0
	if p.Flags&trampoline.FlagIPArg != 0 || ipAlways {
		below++
	}
	for k, c := range calls {
		o := kernel[k]
		who := fmt.Sprintf("invocation %d (%s %s)", k, c.Prog, c.Phase)
		kc.Invocations++
		eq := func(field string, a, b any) {
			kc.Fields++
			if a != b {
				bad("%s: %s %v, kernel %v", who, field, a, b)
			}
		}
		eq("order", c.Order, o.Order)
		eq("program", c.Prog, o.Prog)
		eq("phase", c.Phase, o.Phase)
		eq("arg count", c.ArgCnt, o.ArgCnt)
		eq("number of arguments read", len(c.Args), len(o.Args))
		for i := 0; i < len(c.Args) && i < len(o.Args); i++ {
			if slotUnknown(i) {
				kc.UnknownArgs++
				continue
			}
			eq(fmt.Sprintf("arg %d", i), c.Args[i], o.Args[i])
		}
		eq("has return value", c.Ret != nil, o.Ret != nil)
		if c.Ret != nil && o.Ret != nil {
			eq("return value", *c.Ret, *o.Ret)
		}
		eq("has ip", c.IP != nil, o.IP != nil)
		if c.IP != nil && o.IP != nil {
			eq("ip", *c.IP, *o.IP)
		}
		eq("attach cookie", c.AttachCookie, o.AttachCookie)
		eq("has session cookie", c.CookieRead != nil, o.CookieRead != nil)
		if c.CookieRead != nil && o.CookieRead != nil {
			eq("cookie read", *c.CookieRead, *o.CookieRead)
		}
		if c.CookieWritten != nil && o.CookieWritten != nil {
			eq("cookie written", *c.CookieWritten, *o.CookieWritten)
		}
		if c.CookieSlot != nil && o.CookieSlot != nil {
			eq("cookie slot", *c.CookieSlot, *o.CookieSlot)
		}
		if !slices.Contains(o.FrameInit[:], true) {
			continue // the kernel's frame dump failed
		}
		// ctx is frame word 16; compare from the lowest cookie (or the
		// IP, or func_meta) up to the last argument, and the return
		// value when the program reads it.
		ctxWord := FrameBelow / 8
		hi := ctxWord + int(c.ArgCnt)
		if c.Ret != nil {
			hi++
		}
		for w := max(0, ctxWord-below); w < hi && w < FrameWords; w++ {
			if w >= ctxWord && w-ctxWord < int(c.ArgCnt) && slotUnknown(w-ctxWord) || unwrittenIP && w == ctxWord-2 {
				continue
			}
			kc.FrameWords++
			if !o.FrameInit[w] {
				bad("%s: frame word ctx%+d unread in the kernel", who, 8*(w-ctxWord))
			} else if !c.FrameInit[w] {
				bad("%s: frame word ctx%+d uninitialised in the emulator, kernel %#x", who, 8*(w-ctxWord), o.Frame[w])
			} else if c.Frame[w] != o.Frame[w] {
				bad("%s: frame word ctx%+d is %#x, kernel %#x", who, 8*(w-ctxWord), c.Frame[w], o.Frame[w])
			}
		}
	}
	return kc
}

// KernelRetval checks the trampoline's return value against the
// BPF_PROG_TEST_RUN result the kernel reported for the run: the tracing
// test run fails (so only an "ok" run gets here) unless every
// bpf_fentry_test function returned its expected value, and the
// fmod_ret test run returns (side_effect << 16) | the sum of
// bpf_modify_return_test and bpf_modify_return_test2, where side_effect
// counts the bodies that ran. It returns "" when they agree and a reason
// when they do not; ok is false when the target is not one the test run
// calls.
func KernelRetval(tg trampoline.Target, trigger string, kernelRetval uint32, res *Result) (problem string, ok bool) {
	t, known := TestTargetOf(tg)
	if !known {
		return "", false
	}
	target := tg.Name
	switch trigger {
	case "bpf_modify_return_test":
		other := TestTargets["bpf_modify_return_test"].Ret
		if target == "bpf_modify_return_test" {
			other = TestTargets["bpf_modify_return_test2"].Ret
		}
		if target != "bpf_modify_return_test" && target != "bpf_modify_return_test2" {
			return "", false
		}
		// The untraced function always runs (one side effect).
		side := uint32(1)
		if res.OrigRuns > 0 {
			side++
		}
		want := side<<16 | uint32(int32(res.Retval)+int32(other))
		if want != kernelRetval {
			return fmt.Sprintf("test run retval %#x, the emulated return %#x (body ran %d times) gives %#x", kernelRetval, res.Retval, res.OrigRuns, want), true
		}
		return "", true
	default:
		if tg.Attrs.BPFProg {
			// The test run returns the target program's own return value.
			if uint32(res.Retval) != kernelRetval {
				return fmt.Sprintf("test run retval %#x, the emulated return is %#x", kernelRetval, res.Retval), true
			}
			return "", true
		}
		if res.Retval&0xffffffff != t.Ret {
			return fmt.Sprintf("the kernel's test run passed, so %s returned %d; the emulated return is %#x", target, t.Ret, res.Retval), true
		}
		return "", true
	}
}

// DiffCalls compares two runs' calls field by field (tramp's image
// against the kernel's image, both emulated), leaving out ctx and the
// frame; it returns one line per difference.
func DiffCalls(a, b []Call) []string {
	var out []string
	if len(a) != len(b) {
		return []string{fmt.Sprintf("%d calls against %d", len(a), len(b))}
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Prog != y.Prog || x.Phase != y.Phase || x.FuncMeta != y.FuncMeta || !slices.Equal(x.Args, y.Args) ||
			hexPtr(x.Ret) != hexPtr(y.Ret) || hexPtr(x.IP) != hexPtr(y.IP) || x.AttachCookie != y.AttachCookie ||
			hexPtr(x.CookieRead) != hexPtr(y.CookieRead) || hexPtr(x.CookieWritten) != hexPtr(y.CookieWritten) ||
			fmt.Sprint(derefI(x.CookieSlot)) != fmt.Sprint(derefI(y.CookieSlot)) || x.Enter != y.Enter || x.Exit != y.Exit {
			out = append(out, fmt.Sprintf("call %d: %+v against %+v", i, x, y))
		}
	}
	return out
}
