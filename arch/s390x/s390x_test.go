package s390x

// TODO(live images): no golden file of whole s390x trampoline images is
// kept: there is no recorded s390x boot yet (Debian's own s390x kernels
// have no JIT; the z196 rebuild has not booted). Once real kernel images
// are recorded (cases/testdata/debian-7.2.13/s390x), add a
// TestLiveImages as arch/riscv64 has, comparing every byte with the
// kernel's own addresses, and replace the placeholder layout
// (placeholder.go) with that boot's. Until then these tests check
// structure, the kernel's arithmetic and the encoders (against GNU as),
// never invented images.

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// jitArch is the model's s390x architecture as a build with the BPF JIT
// has it. The model's own record (trampoline.Arches: s390x NoJIT, no
// FsessionJIT) is Debian's z10 build, whose kernels refuse every tracing
// program at load, so replaying a case on it leaves no image; a z196
// build of the same 7.2.13 source has the JIT, and its
// bpf_jit_supports_fsession returns true.
func jitArch(t testing.TB) *trampoline.Arch {
	t.Helper()
	a, err := trampoline.LookupArch("s390x")
	require.NoError(t, err)
	c := *a
	c.NoJIT, c.FsessionJIT = false, true
	return &c
}

func planOf(t *testing.T, profile, src string) *trampoline.Plan {
	t.Helper()
	c, err := cases.Parse("t.tramp", []byte(src))
	require.NoError(t, err)
	p, err := trampoline.LookupProfile(profile)
	require.NoError(t, err)
	res, err := cases.Replay(c, p, jitArch(t), nil)
	require.NoError(t, err)
	if !res.Final.HasImage() {
		t.Fatal("no image")
	}
	return res.Final.Plan()
}

// corpusPlans are the final plans of every corpus case on every profile
// that leaves an image on the JIT s390x arch.
func corpusPlans(t *testing.T) (plans []*trampoline.Plan, names []string) {
	t.Helper()
	corpus, err := cases.Corpus()
	require.NoError(t, err)
	a := jitArch(t)
	for _, c := range corpus {
		for _, prof := range c.Profiles() {
			res, err := cases.Replay(c, prof, a, nil)
			if err != nil || !res.Final.HasImage() {
				continue
			}
			plans = append(plans, res.Final.Plan())
			names = append(names, c.Name+"/"+prof.Name)
		}
	}
	return plans, names
}

// checkFrameInvariants holds a frame to what the kernel's comments on
// struct bpf_tramp_jit and the s390x ABI require.
func checkFrameInvariants(t *testing.T, name string, f Frame) {
	t.Helper()
	for n, off := range map[string]int{"stack_size": f.StackSize, "backchain": f.BackchainOff, "stack_args": f.StackArgsOff,
		"reg_args": f.RegArgsOff, "cookie": f.CookieOff, "ip": f.IPOff, "func_meta": f.FuncMetaOff, "bpf_args": f.BPFArgsOff,
		"retval": f.RetvalOff, "r7_r8": f.R7R8Off, "run_ctx": f.RunCtxOff, "tccnt": f.TccntOff, "r14": f.R14Off,
		"orig_stack_args": f.OrigStackArgsOff} {
		if off%8 != 0 {
			t.Errorf("%s: %s_off %d is not 8-byte aligned", name, n, off)
		}
	}
	if f.IPOff != f.BPFArgsOff-16 || f.FuncMetaOff != f.BPFArgsOff-8 {
		t.Errorf("%s: ip at ctx%+d, func_meta at ctx%+d; want ctx-16 and ctx-8", name, f.IPOff-f.BPFArgsOff, f.FuncMetaOff-f.BPFArgsOff)
	}
	if f.BackchainOff != stackFrameOverhead-8 || f.StackArgsOff != stackFrameOverhead {
		t.Errorf("%s: backchain at %d, stack args at %d: the callee area is the first %d bytes", name, f.BackchainOff, f.StackArgsOff, stackFrameOverhead)
	}
	// Everything allocated is below the caller's backchain, which is
	// StackSize+152 once the caller's 160 bytes count as ours.
	if f.R14Off+16 != f.StackSize+stackFrameOverhead-8 {
		t.Errorf("%s: r14 slot ends at %d, the caller's backchain is at %d", name, f.R14Off+16, f.StackSize+stackFrameOverhead-8)
	}
	words := f.NrStackArgs + f.NrRegArgs + f.CookieCount + 1 + 1 + f.NrBPFArgs + 1 + 2 + 2 + 1 + 2
	if f.StackSize != 8*words+8 {
		t.Errorf("%s: stack_size %d, want 8 + 8*%d", name, f.StackSize, words)
	}
	if f.OrigStackArgsOff != f.StackSize+stackFrameOverhead {
		t.Errorf("%s: orig_stack_args_off %d, want stack_size+160", name, f.OrigStackArgsOff)
	}
	if f.FirstCookieIndex() != f.CookieCount+2 {
		t.Errorf("%s: first cookie index %d, want cookie_cnt+2", name, f.FirstCookieIndex())
	}
	if !isDisp12(int64(f.OrigStackArgsOff+8*f.NrStackArgs)) || !isDisp12(int64(f.StackSize+tailCallCntOff)) {
		t.Errorf("%s: the frame is beyond mvc's 12-bit displacements", name)
	}
}

// TestCorpusImages generates every corpus plan the JIT s390x arch
// leaves, on every profile with the skip NOPs, with and without
// expolines, and requires each to pass Check, to be exactly as long as
// the size pass, to explain without error, and its frame to keep the
// invariants. Plans of kernels without the skip NOPs are refused.
func TestCorpusImages(t *testing.T) {
	plans, names := corpusPlans(t)
	checked, refused := 0, 0
	for i, p := range plans {
		name := names[i]
		if !p.SkipNOP {
			_, err := Generate(p, Debian, PlaceholderAddrs(p))
			require.ErrorContains(t, err, "not modelled", name)
			refused++
			continue
		}
		checkFrameInvariants(t, name, layout(p))
		for _, feat := range []Features{Debian, {Expoline: true}} {
			addrs := PlaceholderAddrs(p)
			im, err := Generate(p, feat, addrs)
			if !assertNoError(t, err, name) {
				continue
			}
			size, err := SizeWith(p, feat)
			require.NoError(t, err, name)
			if len(im.Code) != size || im.AllocSize != size {
				t.Errorf("%s: code %d bytes, alloc %d, size pass %d", name, len(im.Code), im.AllocSize, size)
			}
			if err := Check(im, addrs.Image, p); err != nil {
				t.Errorf("%s (expoline %v): %v", name, feat.Expoline, err)
			}
			if _, err := Explain(im, addrs.Image); err != nil {
				t.Errorf("%s: explain: %v", name, err)
			}
			if im.FrameSize != layout(p).StackSize {
				t.Errorf("%s: FrameSize %d, stack_size %d", name, im.FrameSize, layout(p).StackSize)
			}
			checked++
		}
	}
	if checked < 60 {
		t.Fatalf("only %d images checked", checked)
	}
	t.Logf("%d images pass, %d plans of kernels without skip NOPs refused", checked, refused)
}

func assertNoError(t *testing.T, err error, name string) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return false
	}
	return true
}

// TestFrameLayout: a frame worked out by hand from the kernel's
// alloc_stack sequence. bpf_modify_return_test(int, int *) with an
// fsession program that uses a cookie and wants the ip: 2 register
// arguments, 1 cookie, 2 argument words: 8*15 = 120 bytes allocated
// above the 160-byte callee area, 152 of which the caller gave us, so
// stack_size 128.
func TestFrameLayout(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_modify_return_test\nprog s fsession cookie ip\nprog m fmod_ret\nprog x fexit\nattach s\nattach m\nattach x\n")
	want := Frame{NrBPFArgs: 2, NrRegArgs: 2, NrStackArgs: 0, CookieCount: 1,
		StackSize: 128, BackchainOff: 152, StackArgsOff: 160, RegArgsOff: 160, CookieOff: 176, IPOff: 184,
		FuncMetaOff: 192, BPFArgsOff: 200, RetvalOff: 216, R7R8Off: 224, RunCtxOff: 240, TccntOff: 256,
		R14Off: 264, OrigStackArgsOff: 288}
	require.Equal(t, want, layout(p))
	checkFrameInvariants(t, "hand", want)

	// Every shape of function the verifier allows: 0 to 12 arguments of
	// 1 to 16 bytes, with and without cookies.
	for n := 0; n <= trampoline.MaxFuncArgs; n++ {
		for _, size := range []int{1, 8, 9, 16} {
			for _, cookies := range []int{0, 3} {
				q := *p
				q.Func = trampoline.FuncModel{NrArgs: n, ArgSize: make([]int, n), ArgFlags: make([]int, n)}
				for i := range q.Func.ArgSize {
					q.Func.ArgSize[i] = size
				}
				q.Fentry = make([]trampoline.Node, cookies)
				for i := range q.Fentry {
					q.Fentry[i] = trampoline.Node{Kind: trampoline.KindFsession, Cookie: true}
				}
				f := layout(&q)
				checkFrameInvariants(t, "shape", f)
				require.Equal(t, min(n, 5), f.NrRegArgs)
				require.Equal(t, max(n-5, 0), f.NrStackArgs)
				require.Equal(t, n*((size+7)/8), f.NrBPFArgs)
			}
		}
	}
}

// TestSizePassIsRealPass: the size pass needs no address and is exactly
// as long as the real pass with any addresses (every instruction has a
// fixed length).
func TestSizePassIsRealPass(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_fentry_test3\nprog e fentry link-cookie=0x1234\nprog x fexit\nattach e\nattach x\n")
	n, err := Size(p)
	require.NoError(t, err)
	// The image anywhere from which kernel text (about 2 GiB above the
	// placeholder image) stays within a brasl's ±4 GiB.
	for _, move := range []int64{0, 0x1000, -1 << 30, -3 << 29, 1 << 30} {
		addrs := PlaceholderAddrs(p)
		addrs.Image += uint64(move)
		addrs.Im = 0xffffffffffffffff - uint64(move)
		im, err := Generate(p, Debian, addrs)
		require.NoError(t, err)
		require.Len(t, im.Code, n)
		require.Equal(t, n, im.AllocSize)
		require.NoError(t, Check(im, addrs.Image, p))
	}
}

// TestSkipLabelsFromPreviousPass: the skip NOPs and the fmod_ret branch
// to do_fexit are emitted before their labels, with the values of the
// pass before; a pass that followed none would branch to offset 0, which
// Check refuses. Each skip NOP lands on its program's skip_target label.
func TestSkipLabelsFromPreviousPass(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_modify_return_test\nprog e fentry\nprog m fmod_ret\nprog x fexit\nattach e\nattach m\nattach x\n")
	addrs := PlaceholderAddrs(p)
	im, err := Generate(p, Debian, addrs)
	require.NoError(t, err)
	insns, err := Decode(im.Code, addrs.Image)
	require.NoError(t, err)
	label := map[int][]string{}
	for _, l := range im.Labels {
		label[l.Off] = append(label[l.Off], l.Name)
	}
	nops := 0
	for _, in := range insns {
		if in.k == kBrcl && in.r1 == maskNever {
			nops++
			names := strings.Join(label[int(in.Target-addrs.Image)], " ")
			require.Contains(t, names, "skip_target:", "skip NOP at %#x", in.Off)
		}
		if in.k == kBrcl && in.r1 == maskNotEq {
			require.Contains(t, label[int(in.Target-addrs.Image)], "do_fexit")
		}
	}
	require.Equal(t, 3, nops)

	// One pass with a buffer and no previous pass.
	one, err := pass(p, Debian, &addrs, &passLabels{})
	require.NoError(t, err)
	bad := *im
	bad.Code = one.e.code
	require.Error(t, Check(&bad, addrs.Image, p))
}

// TestSignZeroExtend: an fmod_ret program's result is extended as the
// traced function's return type says (sign_zero_extend), and a return
// value of another size fails with EINVAL as invoke_bpf returns it.
func TestSignZeroExtend(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_modify_return_test\nprog m fmod_ret\nattach m\n")
	for _, c := range []struct {
		size, flags int
		want        []byte // the instruction before stg %r2,retval_off
	}{
		{1, trampoline.FmodelSignedArg, lgbr(r2, r2).bytes()},
		{1, 0, llgcr(r2, r2).bytes()},
		{2, trampoline.FmodelSignedArg, lghr(r2, r2).bytes()},
		{2, 0, llghr(r2, r2).bytes()},
		{4, trampoline.FmodelSignedArg, lgfr(r2, r2).bytes()},
		{4, 0, llgfr(r2, r2).bytes()},
		{8, 0, nil},
	} {
		q := *p
		q.Func.RetSize, q.Func.RetFlags = c.size, c.flags
		im, err := Generate(&q, Debian, PlaceholderAddrs(&q))
		require.NoError(t, err)
		store := stg(r2, r15, int64(layout(&q).RetvalOff)).bytes()
		i := bytes.Index(im.Code, store)
		require.Positive(t, i)
		if c.want == nil {
			// brasl bpf_func right before the store.
			require.Equal(t, byte(0xc0), im.Code[i-6], "size 8")
		} else {
			require.Equal(t, c.want, im.Code[i-4:i], "size %d flags %d", c.size, c.flags)
		}
	}
	for _, size := range []int{0, 3, 16} {
		q := *p
		q.Func.RetSize = size
		_, err := Size(&q)
		var te *trampoline.Error
		require.True(t, errors.As(err, &te), "size %d: %v", size, err)
		require.Equal(t, trampoline.EINVAL, te.Errno)
	}
}

// TestArgumentCopies: arguments in registers and on the stack, up to 8
// bytes and of 9 to 16, reach the programs' ctx the way the kernel's loop
// copies them, and the original call gets its stack arguments back.
func TestArgumentCopies(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_modify_return_test\nprog x fexit\nattach x\n")
	q := *p
	// r2: 8 bytes, r3: 16, r4..r6: 4; stack: 8, 16, 1.
	q.Func = trampoline.FuncModel{NrArgs: 8, ArgSize: []int{8, 16, 4, 4, 4, 8, 16, 1}, ArgFlags: make([]int, 8), RetSize: 4}
	q.ArgSlots = 10
	f := layout(&q)
	require.Equal(t, Frame{NrBPFArgs: 10, NrRegArgs: 5, NrStackArgs: 3}, Frame{NrBPFArgs: f.NrBPFArgs, NrRegArgs: f.NrRegArgs, NrStackArgs: f.NrStackArgs})
	addrs := PlaceholderAddrs(&q)
	im, err := Generate(&q, Debian, addrs)
	require.NoError(t, err)
	require.NoError(t, Check(im, addrs.Image, &q))
	arg := func(j int) int64 { return int64(f.BPFArgsOff + 8*j) }
	stk := func(k int) int64 { return int64(f.OrigStackArgsOff + 8*k) }
	want := [][]byte{
		stmg(r2, r2+4, r15, int64(f.RegArgsOff)).bytes(),
		stg(r2, r15, arg(0)).bytes(),
		mvc(arg(1), 16, r15, 0, r3).bytes(),
		stg(r4, r15, arg(3)).bytes(),
		stg(r2+3, r15, arg(4)).bytes(),
		stg(r2+4, r15, arg(5)).bytes(),
		mvc(arg(6), 8, r15, stk(0), r15).bytes(),
		append(lg(r1, r15, stk(1)).bytes(), mvc(arg(7), 16, r15, 0, r1).bytes()...),
		mvc(arg(9), 8, r15, stk(2), r15).bytes(),
		stmg(r7, r8, r15, int64(f.R7R8Off)).bytes(),
	}
	// The prologue's first four instructions take 4+4+6+6 bytes.
	require.Equal(t, bytes.Join(want, nil), im.Code[20:20+len(bytes.Join(want, nil))])
	// Before the original call: the registers back, one mvc of the
	// three stack words to the bottom of the frame.
	restore := append(lmg(r2, r2+4, r15, int64(f.RegArgsOff)).bytes(),
		mvc(int64(f.StackArgsOff), 24, r15, int64(f.OrigStackArgsOff), r15).bytes()...)
	require.True(t, bytes.Contains(im.Code, restore), "restore before the call")
}

// TestReturns: the return each flag combination asks for, with and
// without expolines, and BPF_TRAMP_F_ORIG_STACK's call through %r8.
func TestReturns(t *testing.T) {
	fentry := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog e fentry\nattach e\n")
	fexit := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog x fexit\nattach x\n")
	origStack := *fexit
	origStack.Flags |= trampoline.FlagOrigStack | trampoline.FlagShareIPModify
	origNoSkip := origStack
	origNoSkip.Flags &^= trampoline.FlagSkipFrame
	for _, c := range []struct {
		name     string
		p        *trampoline.Plan
		feat     Features
		tail     []byte // the last bytes (a brcl's offset left out)
		thunk    string // the last instruction's relocation
		contains [][]byte
	}{
		{"fentry", fentry, Debian, []byte{0xc0, 0xf4}, "func+6", nil},
		{"fentry expoline", fentry, Features{Expoline: true}, []byte{0xc0, 0xf4}, "func+6", nil},
		{"fexit", fexit, Debian, br(r14).bytes(), "", nil},
		{"fexit expoline", fexit, Features{Expoline: true}, []byte{0xc0, 0xf4}, ThunkR14, nil},
		{"orig stack", &origStack, Debian, br(r14).bytes(), "", [][]byte{lgr(r8, r0).bytes(), basr(r14, r8).bytes()}},
		{"orig stack expoline", &origStack, Features{Expoline: true}, []byte{0xc0, 0xf4}, ThunkR14, [][]byte{lgr(r8, r0).bytes()}},
		{"orig stack no skip", &origNoSkip, Debian, br(r1).bytes(), "", [][]byte{lgr(r1, r8).bytes(), basr(r14, r8).bytes()}},
		{"orig stack no skip expoline", &origNoSkip, Features{Expoline: true}, []byte{0xc0, 0xf4}, ThunkR1, nil},
	} {
		addrs := PlaceholderAddrs(c.p)
		im, err := Generate(c.p, c.feat, addrs)
		require.NoError(t, err, c.name)
		require.NoError(t, Check(im, addrs.Image, c.p), c.name)
		if len(c.tail) == 2 && c.tail[0] == 0xc0 {
			require.Equal(t, c.tail, im.Code[len(im.Code)-6:len(im.Code)-4], c.name)
		} else {
			require.True(t, bytes.HasSuffix(im.Code, c.tail), c.name)
		}
		if c.thunk != "" {
			r, ok := im.RelocAt(len(im.Code) - 1)
			require.True(t, ok, c.name)
			require.Equal(t, c.thunk, r.Sym, c.name)
		}
		for _, b := range c.contains {
			require.True(t, bytes.Contains(im.Code, b), "%s: % x", c.name, b)
		}
		if c.p.Flags&trampoline.FlagOrigStack != 0 && c.feat.Expoline {
			found := false
			for _, r := range im.Relocs {
				found = found || r.Sym == ThunkR8
			}
			require.True(t, found, "%s: the call goes through %s", c.name, ThunkR8)
		}
	}
	// A fentry-only image checked as an fexit one fails.
	addrs := PlaceholderAddrs(fentry)
	im, err := Generate(fentry, Debian, addrs)
	require.NoError(t, err)
	require.Error(t, Check(im, addrs.Image, fexit))
}

// TestFuncMetaAndCookies: func_meta is nr_bpf_args, with the cookie
// index counting down from cookie_cnt+2 before each cookie-using
// program and is_return in the fexit list. The ip slot is always
// reserved on s390x, so the index does not depend on
// BPF_TRAMP_F_IP_ARG (the model's Plan.CookieIndex assumes it does).
func TestFuncMetaAndCookies(t *testing.T) {
	for _, ip := range []string{"", " ip"} {
		p := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog a fsession cookie"+ip+"\nprog b fsession cookie\nattach a\nattach b\n")
		f := layout(p)
		require.Equal(t, 4, f.FirstCookieIndex())
		addrs := PlaceholderAddrs(p)
		im, err := Generate(p, Debian, addrs)
		require.NoError(t, err)
		var metas []uint64
		insns, err := Decode(im.Code, addrs.Image)
		require.NoError(t, err)
		for i, in := range insns {
			if in.k == kStg && in.disp == int64(f.FuncMetaOff) && i > 0 {
				if v, ok := ImmValue(im.Code, insns[i-2].Off); ok && insns[i-2].k == kLlihf {
					metas = append(metas, v)
				} else if insns[i-1].k == kLghi {
					metas = append(metas, uint64(insns[i-1].imm))
				}
			}
		}
		ret := uint64(1) << 63
		require.Equal(t, []uint64{1, 0x401, 0x301, 1 | ret, 0x401 | ret, 0x301 | ret}, metas, "ip %q", ip)
	}
}

// TestCheckerCatchesBrokenImages breaks a good image in several ways.
func TestCheckerCatchesBrokenImages(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_modify_return_test\nprog m fmod_ret\nprog x fexit\nattach m\nattach x\n")
	addrs := PlaceholderAddrs(p)
	good, err := Generate(p, Debian, addrs)
	require.NoError(t, err)
	require.NoError(t, Check(good, addrs.Image, p))
	insns, err := Decode(good.Code, addrs.Image)
	require.NoError(t, err)
	clone := func() *arch.Image {
		c := *good
		c.Code = append([]byte(nil), good.Code...)
		c.Relocs = append([]arch.Reloc(nil), good.Relocs...)
		return &c
	}
	find := func(ok func(Insn) bool) Insn {
		for _, in := range insns {
			if ok(in) {
				return in
			}
		}
		t.Fatal("no such instruction")
		return Insn{}
	}
	brclWith := func(mask int) Insn { return find(func(in Insn) bool { return in.k == kBrcl && in.r1 == mask }) }
	put := func(im *arch.Image, off int, w word) { copy(im.Code[off:], w.bytes()) }
	relocOf := func(im *arch.Image, k arch.RelocKind) int {
		for i, r := range im.Relocs {
			if r.Kind == k {
				return i
			}
		}
		t.Fatal("no relocation of kind", k)
		return 0
	}
	n := len(good.Code)
	breaks := map[string]func(*arch.Image){
		"truncated by one byte":  func(im *arch.Image) { im.Code = im.Code[:n-1] },
		"6-byte insn cut short":  func(im *arch.Image) { im.Code = im.Code[:insns[len(insns)-3].Off+4] },
		"zero halfword":          func(im *arch.Image) { copy(im.Code[insns[0].Off:], []byte{0, 0}) },
		"wrong return register":  func(im *arch.Image) { put(im, n-2, br(r1)) },
		"frame pop size":         func(im *arch.Image) { put(im, n-6, aghi(r15, int64(good.FrameSize+8))) },
		"frame push size":        func(im *arch.Image) { put(im, 4, aghi(r15, -int64(good.FrameSize+8))) },
		"reloc value":            func(im *arch.Image) { im.Relocs[0].Value += 2 },
		"reloc kind":             func(im *arch.Image) { im.Relocs[0].Kind = arch.RVJal },
		"reloc mid insn":         func(im *arch.Image) { im.Relocs[0].Off += 2 },
		"imm pair value":         func(im *arch.Image) { im.Relocs[relocOf(im, Imm64Pair)].Value ^= 0x1000 },
		"imm pair cut":           func(im *arch.Image) { im.Relocs[relocOf(im, Imm64Pair)].Len = 6 },
		"skip branch mid insn":   func(im *arch.Image) { in := brclWith(maskEqual); put(im, in.Off, brcl(maskEqual, in.imm+2)) },
		"do_fexit branch leaves": func(im *arch.Image) { in := brclWith(maskNotEq); put(im, in.Off, brcl(maskNotEq, 0x10000)) },
		"skip NOP retargeted": func(im *arch.Image) {
			in := brclWith(maskNever)
			put(im, in.Off, brcl(maskNever, in.imm-6))
		},
		"skip NOP gone": func(im *arch.Image) { in := brclWith(maskNever); put(im, in.Off, brcl(maskEqual, in.imm)) },
		"call retargeted": func(im *arch.Image) {
			in := find(func(in Insn) bool { return in.k == kBrasl })
			put(im, in.Off, brasl(r14, in.imm+0x100))
		},
		"call through a register": func(im *arch.Image) {
			in := find(func(in Insn) bool { return in.k == kLgr && in.r1 == r3 })
			put(im, in.Off, word{uint64(basr(r14, r8).v)<<16 | 0x0707, 4})
		},
		"short relative branch": func(im *arch.Image) {
			in := find(func(in Insn) bool { return in.k == kLgr && in.r1 == r3 })
			put(im, in.Off, word{0xa7f40002, 4}) // j .+4
		},
	}
	for name, breakIt := range breaks {
		im := clone()
		breakIt(im)
		if err := Check(im, addrs.Image, p); err == nil {
			t.Errorf("%s: the checker accepts the broken image", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestGenerateRefusesBadInput: plans the kernel cannot have built or the
// JIT refuses, with their errnos where the JIT gives one, and addresses
// a brasl cannot reach.
func TestGenerateRefusesBadInput(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_modify_return_test\nprog x fexit\nattach x\n")
	bad := map[string]func(*trampoline.Plan, *arch.Addrs){
		"arch":        func(p *trampoline.Plan, _ *arch.Addrs) { p.Arch = "riscv64" },
		"13 args":     func(p *trampoline.Plan, _ *arch.Addrs) { p.Func.NrArgs = 13; p.Func.ArgSize = make([]int, 13) },
		"17-byte arg": func(p *trampoline.Plan, _ *arch.Addrs) { p.Func.ArgSize = []int{17, 4} },
		"struct_ops":  func(p *trampoline.Plan, _ *arch.Addrs) { p.Flags |= trampoline.FlagIndirect },
		"slots":       func(p *trampoline.Plan, _ *arch.Addrs) { p.ArgSlots++ },
		"no call orig": func(p *trampoline.Plan, _ *arch.Addrs) {
			p.Flags &^= trampoline.FlagCallOrig
		},
		"kernel before skip NOPs": func(p *trampoline.Plan, _ *arch.Addrs) { p.SkipNOP, p.IPAfterCallNOP = false, true },
		"bare arg count":          func(p *trampoline.Plan, _ *arch.Addrs) { p.ArgCountOnly = true },
		"jmp mode":                func(p *trampoline.Plan, _ *arch.Addrs) { p.JmpMode = true },
		"helper out of reach":     func(_ *trampoline.Plan, a *arch.Addrs) { a.Image -= 8 << 30 },
		"odd target":              func(_ *trampoline.Plan, a *arch.Addrs) { a.Func++ },
		"no symbol":               func(_ *trampoline.Plan, a *arch.Addrs) { delete(a.Symbols, trampoline.HelperTrampExit) },
		"no program":              func(_ *trampoline.Plan, a *arch.Addrs) { delete(a.Progs, "x") },
	}
	for name, f := range bad {
		q := *p
		q.Func.ArgSize = append([]int(nil), p.Func.ArgSize...)
		a := PlaceholderAddrs(p)
		f(&q, &a)
		if _, err := Generate(&q, Debian, a); err == nil {
			t.Errorf("%s: Generate accepts it", name)
		}
	}
	// The JIT's own refusals, which the verifier's limits keep out of
	// reach of any real plan: more than 5+32 arguments, an argument over
	// 16 bytes (ENOTSUPP), more than BPF_MAX_TRAMP_LINKS program calls
	// (skip[] overflows: -E2BIG, which invoke_bpf returns as -EINVAL).
	errnoOf := func(err error) trampoline.Errno {
		var te *trampoline.Error
		require.True(t, errors.As(err, &te), "%v", err)
		return te.Errno
	}
	many := trampoline.FuncModel{NrArgs: 38, ArgSize: make([]int, 38)}
	require.Equal(t, trampoline.ENOTSUPP, errnoOf(argRefusal(many)))
	many.NrArgs, many.ArgSize = 37, many.ArgSize[:37]
	require.NoError(t, argRefusal(many))
	require.Equal(t, trampoline.ENOTSUPP, errnoOf(argRefusal(trampoline.FuncModel{NrArgs: 1, ArgSize: []int{24}})))
	q := *p
	q.Fexit = nil
	for i := 0; i < maxTrampLinks+1; i++ {
		q.Fexit = append(q.Fexit, p.Fexit[0])
	}
	_, err := Size(&q)
	require.Equal(t, trampoline.EINVAL, errnoOf(err))
	q.Fexit = q.Fexit[:maxTrampLinks]
	_, err = Size(&q)
	require.NoError(t, err)
}

// TestExplain names the func_meta values, frame slots, tail call
// counters and relocations.
func TestExplain(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog s fsession cookie\nprog e fentry link-cookie=0x1234\nattach s\nattach e\n")
	addrs := PlaceholderAddrs(p)
	im, err := Generate(p, Debian, addrs)
	require.NoError(t, err)
	lines, err := Explain(im, addrs.Image)
	require.NoError(t, err)
	var sb strings.Builder
	arch.WriteListing(&sb, lines)
	arch.WriteFrame(&sb, im, "%r15")
	out := sb.String()
	for _, want := range []string{
		"func_meta: nr_args 1\n",
		"func_meta: nr_args 1, cookie index 3 (ctx-24)\n",
		"func_meta: nr_args 1, cookie index 3 (ctx-24), is_return",
		"; cookie0", "; arg0", "; &run_ctx", "im = 0x329cc00", "prog:s = 0x", "; bpf_func:s", "cookie:e = 0x1234",
		"; __bpf_tramp_enter", "; func+6", "; backchain", "tail_call_cnt <- parent's tail_call_cnt",
		"callee's tail_call_cnt <- tail_call_cnt", "to skip_target:s:entry", "to exit_helper:e:entry",
		"saved_r7..saved_r8", "return:\n", "  br %r14 ", "frame (", "parent_backchain",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	// A listing of broken code goes on past what does not decode.
	broken := *im
	broken.Code = append(append([]byte(nil), im.Code[:4]...), 0, 0)
	broken.Code = append(broken.Code, im.Code[4:]...)
	lines, err = Explain(&broken, addrs.Image)
	require.ErrorContains(t, err, "offset 0x4")
	require.Equal(t, "(bad)", lines[1].Text)
	// 13 words (1 register argument, 1 cookie, ip, func_meta, 1
	// argument word, retval, %r7/%r8, run_ctx, tccnt, %r14's 2) + 8.
	require.Equal(t, "aghi %r15, -112", lines[2].Text)
	require.Equal(t, len(lines)-1, len(insnsOf(t, im, addrs.Image)))
}

func insnsOf(t *testing.T, im *arch.Image, base uint64) []Insn {
	insns, err := Decode(im.Code, base)
	require.NoError(t, err)
	return insns
}

// TestDecoderGaps: what x/arch's s390xasm does not do, which Decode does.
func TestDecoderGaps(t *testing.T) {
	// The all-zero halfword (the kernel's hole fill) decodes without an
	// error in x/arch; Decode refuses it.
	_, text, err := decodeOne([]byte{0, 0}, 0)
	require.Error(t, err, text)
	_, err = Decode([]byte{0x07, 0xfe, 0, 0}, 0)
	require.ErrorContains(t, err, "offset 0x2")
	// x/arch panics on an instruction cut short; Decode says so.
	for _, b := range [][]byte{{0xc0, 0xe5, 0, 0}, {0xe3}, {0xb9, 0x04, 0x00}} {
		insns, err := Decode(b, 0)
		require.ErrorContains(t, err, "trailing bytes", "% x", b)
		require.Empty(t, insns)
	}
	// llihf and oilf immediates are unsigned, as objdump prints them.
	insns, err := Decode(append(llihf(r2, 0x80000000).bytes(), oilf(r2, 0xffffffff).bytes()...), 0)
	require.NoError(t, err)
	require.Equal(t, "llihf %r2, 2147483648", insns[0].Text)
	require.Equal(t, "oilf %r2, 4294967295", insns[1].Text)
	// Branch targets are absolute, both ways.
	insns, err = Decode(append(brasl(r14, -0x100000000).bytes(), brcl(maskAlways, 0xfffffffe).bytes()...), 0x3ff60040000)
	require.NoError(t, err)
	require.Equal(t, uint64(0x3ff60040000-0x100000000), insns[0].Target)
	require.Equal(t, uint64(0x3ff60040006+0xfffffffe), insns[1].Target)
	v, ok := ImmValue(append(llihf(r2, 0x37f).bytes(), oilf(r2, 0xe0a6d000).bytes()...), 0)
	require.True(t, ok)
	require.Equal(t, uint64(0x37fe0a6d000), v)
	_, ok = ImmValue(append(llihf(r2, 0x37f).bytes(), oilf(r3, 0xe0a6d000).bytes()...), 0)
	require.False(t, ok, "the halves build different registers")
}

// FuzzDecode: Decode never panics, and what it returns covers the input
// up to the reported error.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0xb9, 0x04, 0x00, 0x1f, 0xa7, 0xfb, 0xff, 0x80})
	f.Add([]byte{0xc0, 0xe5, 0x40, 0x1b, 0x0f, 0xd3, 0x07, 0xfe, 0xc0})
	f.Fuzz(func(t *testing.T, code []byte) {
		insns, err := Decode(code, 0x3ff60040000)
		n := 0
		for _, in := range insns {
			if in.Off != n {
				t.Fatalf("instruction at %#x, expected %#x", in.Off, n)
			}
			n += in.Len
		}
		if err == nil && n != len(code) {
			t.Fatalf("decoded %d of %d bytes without error", n, len(code))
		}
		_, _ = ImmValue(code, 0)
	})
}
