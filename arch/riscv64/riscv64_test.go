package riscv64

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

func planOf(t *testing.T, profile, src string) *trampoline.Plan {
	t.Helper()
	c, err := cases.Parse("t.tramp", []byte(src))
	require.NoError(t, err)
	return replayFinal(t, profile, c)
}

func replayFinal(t *testing.T, profile string, c *cases.Case) *trampoline.Plan {
	t.Helper()
	p, err := trampoline.LookupProfile(profile)
	require.NoError(t, err)
	a, _ := trampoline.LookupArch("riscv64")
	res, err := cases.Replay(c, p, a, nil)
	require.NoError(t, err)
	if !res.Final.HasImage() {
		t.Fatal("no image")
	}
	return res.Final.Plan()
}

func retOf(p *trampoline.Plan) ReturnSequence {
	return ReturnOf(p.Flags&trampoline.FlagSkipFrame != 0)
}

// liveRecording is the part of a recording these tests read.
type liveRecording struct {
	Case  string `json:"case"`
	Start struct {
		Symbols map[string]uint64 `json:"symbols"`
	} `json:"start"`
	Captures []struct {
		Addr       uint64 `json:"addr"`
		Bytes      string `json:"bytes"`
		TargetAddr uint64 `json:"target_addr"`
		Progs      []struct {
			Name      string `json:"name"`
			JitedKsym uint64 `json:"jited_ksym"`
		} `json:"progs"`
	} `json:"captures"`
}

const liveDir = "../../cases/testdata/debian-7.2.13/riscv64"

// TestLiveImages renders the final image of recordings made on Debian
// 7.2.13 riscv64 (nokaslr, QEMU virt) with the kernel's own addresses and
// compares every byte; im and the struct bpf_prog pointers, which the
// kernel exports nowhere, are read from the image (ImmValue) at the
// fields the generator puts them. The zero fill up to the size pass
// follows.
func TestLiveImages(t *testing.T) {
	corpus, err := cases.CorpusByName()
	require.NoError(t, err)
	compared := 0
	for _, name := range []string{"fentry_only", "fmod_ret_two_and_fexit", "fsession_two_cookies_mixed", "fexit_seven_args", "tailcall_fentry_fexit", "sleepable_fentry"} {
		raw, err := os.ReadFile(filepath.Join(liveDir, name+".json"))
		if os.IsNotExist(err) {
			t.Skipf("no riscv64 recordings at %s", liveDir)
		}
		require.NoError(t, err)
		var rec liveRecording
		require.NoError(t, json.Unmarshal(raw, &rec))
		c := corpus[rec.Case]
		require.NotNil(t, c, rec.Case)
		if strings.Contains(string(cases.Format(c)), "detach") {
			// The last capture is then not the final state.
			continue
		}
		p := replayFinal(t, "debian-7.2.13", c)
		capt := rec.Captures[len(rec.Captures)-1]
		real, err := hex.DecodeString(capt.Bytes)
		require.NoError(t, err)
		addrs := PlaceholderAddrs(p)
		addrs.Image, addrs.Func, addrs.Symbols = capt.Addr, capt.TargetAddr, rec.Start.Symbols
		for _, pr := range capt.Progs {
			pa := addrs.Progs[pr.Name]
			pa.BPFFunc = pr.JitedKsym
			addrs.Progs[pr.Name] = pa
		}
		var im *arch.Image
		for range 8 {
			im, err = Generate(p, Debian, addrs)
			require.NoError(t, err)
			changed := false
			for _, r := range im.Relocs {
				if r.Sym != "im" && !strings.HasPrefix(r.Sym, "prog:") {
					continue
				}
				v, ok := ImmValue(real, r.Off)
				if !ok || v == r.Value {
					continue
				}
				changed = true
				if r.Sym == "im" {
					addrs.Im = v
				} else {
					n := strings.TrimPrefix(r.Sym, "prog:")
					pa := addrs.Progs[n]
					pa.Prog = v
					addrs.Progs[n] = pa
				}
			}
			if !changed {
				break
			}
		}
		if !bytes.Equal(im.Code, real[:min(len(real), len(im.Code))]) {
			t.Errorf("%s: generated %d bytes differ from the kernel's:\n got % x\nwant % x", name, len(im.Code), im.Code, real[:min(len(real), len(im.Code))])
			continue
		}
		if tail := real[len(im.Code):min(len(real), im.AllocSize)]; !bytes.Equal(tail, make([]byte, len(tail))) {
			t.Errorf("%s: the kernel's bytes up to the size pass are not the zero fill: % x", name, tail)
		}
		require.NoError(t, Check(im, capt.Addr, retOf(p)), name)
		compared++
	}
	if compared < 4 {
		t.Fatalf("only %d live images compared", compared)
	}
}

// The live frame of fsession_two_cookies_mixed's third image: 96 bytes
// below the two saved frames, s1 at s0-96, run_ctx at -88, the two
// cookies at -72 and -64, ip at -56, func_meta at -48, the argument at
// -40, the return value (a0, a5) at -32 and -24.
func TestFrameLayout(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog a fsession cookie\nprog b fsession cookie ip\nprog e fentry link-cookie=0x1234\nattach a\nattach b\nattach e\n")
	f := layout(p)
	want := Frame{NrArgSlots: 1, SaveRet: true, RetvalOff: 32, ArgsOff: 40, FuncMetaOff: 48, IPArg: true, IPOff: 56,
		CookieCount: 2, CookieOff: 72, RunCtxOff: 88, SregOff: 96, StkArgOff: 96, StackSize: 96}
	require.Equal(t, want, f)
	// The first cookie-using node's index is the lowest cookie slot's
	// distance below ctx, in words.
	for _, n := range p.Fentry {
		if n.Cookie {
			require.Equal(t, (f.CookieOff-f.ArgsOff)/8, n.CookieIndex, "first cookie index")
			break
		}
	}
	// Stack arguments: 10 slots with CALL_ORIG reserve 2 outgoing slots at
	// the bottom of the frame.
	q := *p
	q.Func = trampoline.FuncModel{NrArgs: 10, ArgSize: []int{8, 8, 8, 8, 8, 8, 8, 8, 8, 8}, ArgFlags: make([]int, 10)}
	q.ArgSlots = 10
	g := layout(&q)
	require.Equal(t, 2, g.StackArgs)
	require.Equal(t, 0, g.StackSize%16)
	require.Equal(t, g.StackSize, g.StkArgOff)
	require.GreaterOrEqual(t, g.StackSize, g.SregOff+16)
}

// emitImm returns emit_imm's code for v.
func emitImm(rvc bool, reg int, v int64) []byte {
	e := emitter{rvc: rvc}
	e.imm(reg, v)
	return e.code
}

// TestEmitImm: the sequences of live images, ImmValue reading back any
// value from either form, and RV_MAX_COUNT_IMM being the longest.
func TestEmitImm(t *testing.T) {
	live := []struct {
		reg  int
		v    uint64
		code string
	}{
		// prog pointer: li a0,-225; slli a0,26; addi a0,877; slli a0,13
		{a0, 0xffff8f80006da000, "1305f0f16a051305d5363605"},
		// im: lui a0,0xffebe; addiw a0,1; slli 14; addi -1223; slli 12; addi -2048
		{a0, 0xffffaf8003b38800, "37e5ebff05253a05130595b3320513050580"},
		// func_meta exit value: li t1,-1; slli t1,63; addi t1,1
		{t1, 0x8000000000000001, "7d537e130503"},
		// the traced function's address: lui t1,0x80bbb; addiw t1,1376
		{t1, 0xffffffff80bbb560, "37b3bb801b030356"},
		// func_meta with a cookie index: li t1,1025
		{t1, 0x401, "13031040"},
		// a link cookie: c.lui t1,1; addiw t1,564
		{t1, 0x1234, "05631b034323"},
		{t1, 1, "0543"},
	}
	for _, l := range live {
		got := hex.EncodeToString(emitImm(true, l.reg, int64(l.v)))
		require.Equal(t, l.code, got, "emit_imm(%#x)", l.v)
	}
	maxLen := len(emitImm(true, a0, maxCountImm))
	maxLen32 := len(emitImm(false, a0, maxCountImm))
	r := rand.New(rand.NewSource(1))
	for i := range 20000 {
		v := int64(r.Uint64())
		switch i % 4 {
		case 1:
			v >>= r.Intn(64)
		case 2:
			v = int64(uint64(v) &^ (1<<r.Intn(64) - 1))
		case 3:
			v = int64(int32(v))
		}
		for _, rvc := range []bool{true, false} {
			code := emitImm(rvc, a0, v)
			got, ok := ImmValue(append(code, 0x13, 0, 0, 0), 0)
			if !ok || got != uint64(v) {
				t.Fatalf("emit_imm(%#x) (rvc %v) = % x reads back as %#x, %v", uint64(v), rvc, code, got, ok)
			}
			if rvc && len(code) > maxLen || !rvc && len(code) > maxLen32 {
				t.Fatalf("emit_imm(%#x) takes %d bytes, more than RV_MAX_COUNT_IMM's %d", uint64(v), len(code), maxLen)
			}
		}
	}
}

// TestSizePass: arch_bpf_trampoline_size's pass takes an auipc+jalr for
// every call and RV_MAX_COUNT_IMM's sequence for each load of im, and is
// never shorter than the real pass on any corpus image.
func TestSizePass(t *testing.T) {
	// fentry only: one call jal in the real pass (the program), two helper
	// calls auipc+jalr in both.
	p := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog e fentry\nattach e\n")
	addrs := PlaceholderAddrs(p)
	im, err := Generate(p, Debian, addrs)
	require.NoError(t, err)
	require.Equal(t, 124, len(im.Code), "the live fentry_only image is 124 bytes")
	require.Equal(t, len(im.Code)+4, im.AllocSize)
	n, err := Size(p)
	require.NoError(t, err)
	require.Equal(t, im.AllocSize, n)

	// fexit: the im loads are RV_MAX_COUNT_IMM's length in the size pass.
	q := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog x fexit\nattach x\n")
	qa := PlaceholderAddrs(q)
	qi, err := Generate(q, Debian, qa)
	require.NoError(t, err)
	imLen := len(emitImm(true, a0, int64(qa.Im)))
	maxLen := len(emitImm(true, a0, maxCountImm))
	jals := 0
	for _, r := range qi.Relocs {
		if r.Kind == arch.RVJal {
			jals++
		}
	}
	require.Equal(t, len(qi.Code)+4*jals+2*(maxLen-imLen), qi.AllocSize)

	corpus, err := cases.Corpus()
	require.NoError(t, err)
	a, _ := trampoline.LookupArch("riscv64")
	count := 0
	for _, c := range corpus {
		for _, prof := range c.Profiles() {
			res, err := cases.Replay(c, prof, a, nil)
			if err != nil || !res.Final.HasImage() {
				continue
			}
			p := res.Final.Plan()
			for _, layout := range []func(*trampoline.Plan) arch.Addrs{PlaceholderAddrs, PlaceholderAddrsFar} {
				im, err := Generate(p, Debian, layout(p))
				require.NoError(t, err, c.Name)
				require.LessOrEqual(t, len(im.Code), im.AllocSize, c.Name)
				count++
			}
		}
	}
	require.Greater(t, count, 40)
}

// TestFentryOnlyReturnsIntoFunction: without fexit the trampoline goes
// back into the traced function (jr t0) and restores the arguments.
func TestFentryOnlyReturnsIntoFunction(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog e fentry\nattach e\n")
	im, err := Generate(p, Debian, PlaceholderAddrs(p))
	require.NoError(t, err)
	require.Equal(t, RetToFunc, retOf(p))
	require.True(t, bytes.HasSuffix(im.Code, []byte{0x82, 0x82}), "ends with c.jr t0")
	require.NoError(t, Check(im, PlaceholderImage, RetToFunc))
	require.Error(t, Check(im, PlaceholderImage, RetSkipFrame))
}

// TestNoRVC: without CONFIG_RISCV_ISA_C every instruction is 4 bytes and
// the image still checks.
func TestNoRVC(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog s fsession cookie ip\nprog m fentry link-cookie=7\nattach s\nattach m\n")
	addrs := PlaceholderAddrs(p)
	c, err := Generate(p, Debian, addrs)
	require.NoError(t, err)
	im, err := Generate(p, Features{}, addrs)
	require.NoError(t, err)
	insns, err := Decode(im.Code, addrs.Image)
	require.NoError(t, err)
	for _, in := range insns {
		require.Equal(t, 4, in.Len, "offset %#x: %s", in.Off, in.Text)
	}
	require.Greater(t, len(im.Code), len(c.Code))
	require.NoError(t, Check(im, addrs.Image, retOf(p)))
}

// TestCheckerCatchesBrokenImages breaks a good image in several ways.
func TestCheckerCatchesBrokenImages(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_modify_return_test\nprog m fmod_ret\nprog x fexit\nattach m\nattach x\n")
	addrs := PlaceholderAddrs(p)
	good, err := Generate(p, Debian, addrs)
	require.NoError(t, err)
	require.NoError(t, Check(good, addrs.Image, retOf(p)))
	clone := func() *arch.Image {
		c := *good
		c.Code = append([]byte(nil), good.Code...)
		c.Relocs = append([]arch.Reloc(nil), good.Relocs...)
		return &c
	}
	find := func(im *arch.Image, k kind) Insn {
		insns, _ := Decode(im.Code, addrs.Image)
		for _, in := range insns {
			if in.k == k {
				return in
			}
		}
		t.Fatalf("no instruction of kind %d", k)
		return Insn{}
	}
	cases := map[string]func(*arch.Image){
		"truncated":      func(im *arch.Image) { im.Code = im.Code[:len(im.Code)-1] },
		"zero parcel":    func(im *arch.Image) { copy(im.Code[8:], []byte{0, 0}) },
		"wrong return":   func(im *arch.Image) { copy(im.Code[len(im.Code)-2:], w16(rvcJr(t0))) },
		"no frame pop":   func(im *arch.Image) { copy(im.Code[len(im.Code)-4:], w16(rvcAddi(t1, 1))) },
		"reloc value":    func(im *arch.Image) { im.Relocs[0].Value++ },
		"reloc kind":     func(im *arch.Image) { im.Relocs[0].Kind = arch.A64Branch26 },
		"reloc mid insn": func(im *arch.Image) { im.Relocs[0].Off++ },
		"branch mid insn": func(im *arch.Image) {
			in := find(im, kBeq)
			copy(im.Code[in.Off:], w32(rvBeq(a0, zero, in.imm+2)))
		},
		"branch leaves": func(im *arch.Image) {
			in := find(im, kBne)
			copy(im.Code[in.Off:], w32(rvBne(t1, zero, 4000)))
		},
		"jal retargeted": func(im *arch.Image) {
			in := find(im, kJal)
			copy(im.Code[in.Off:], w32(rvJal(ra, in.imm+0x100)))
		},
		"auipc without jalr": func(im *arch.Image) {
			in := find(im, kAuipc)
			copy(im.Code[in.Off+4:], w32(insnNOP))
		},
		"imm value": func(im *arch.Image) {
			for i, r := range im.Relocs {
				if r.Kind == arch.RVImm {
					im.Relocs[i].Value ^= 0x1000
					return
				}
			}
		},
		"imm cut short": func(im *arch.Image) {
			for i, r := range im.Relocs {
				if r.Kind == arch.RVImm && r.Len > 4 {
					im.Relocs[i].Len -= 2
					return
				}
			}
		},
	}
	for name, breakIt := range cases {
		im := clone()
		breakIt(im)
		if err := Check(im, addrs.Image, retOf(p)); err == nil {
			t.Errorf("%s: the checker accepts the broken image", name)
		}
	}
}

// TestGenerateRefusesBadInput: the plans the JIT refuses, and calls out of
// auipc+jalr reach.
func TestGenerateRefusesBadInput(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_modify_return_test\nprog x fexit\nattach x\n")
	bad := map[string]func(*trampoline.Plan, *arch.Addrs){
		"arch":        func(p *trampoline.Plan, _ *arch.Addrs) { p.Arch = "arm64" },
		"13 args":     func(p *trampoline.Plan, _ *arch.Addrs) { p.Func.NrArgs = 13; p.Func.ArgSize = make([]int, 13) },
		"17-byte arg": func(p *trampoline.Plan, _ *arch.Addrs) { p.Func.ArgSize = []int{17, 4} },
		"orig stack":  func(p *trampoline.Plan, _ *arch.Addrs) { p.Flags |= trampoline.FlagOrigStack },
		"struct_ops":  func(p *trampoline.Plan, _ *arch.Addrs) { p.Flags |= trampoline.FlagIndirect },
		"slots":       func(p *trampoline.Plan, _ *arch.Addrs) { p.ArgSlots++ },
		"no call orig": func(p *trampoline.Plan, _ *arch.Addrs) {
			p.Flags &^= trampoline.FlagCallOrig
		},
		"helper out of reach": func(_ *trampoline.Plan, a *arch.Addrs) { a.Image -= 4 << 30 },
		"no symbol":           func(_ *trampoline.Plan, a *arch.Addrs) { delete(a.Symbols, trampoline.HelperTrampExit) },
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
}

// TestExplain names the func_meta values, frame slots and relocations.
func TestExplain(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog s fsession cookie\nattach s\n")
	addrs := PlaceholderAddrs(p)
	im, err := Generate(p, Debian, addrs)
	require.NoError(t, err)
	lines, err := Explain(im, addrs.Image)
	require.NoError(t, err)
	var sb strings.Builder
	arch.WriteListing(&sb, lines)
	out := sb.String()
	for _, want := range []string{
		"func_meta: nr_args 1\n",
		"func_meta: nr_args 1, cookie index 2 (ctx-16)\n",
		"func_meta: nr_args 1, cookie index 2 (ctx-16), is_return",
		"; cookie0", "; arg0", "; &run_ctx", "im = 0xffffaf8003b38800", "prog:s = 0x", "; bpf_func:s",
		"; __bpf_tramp_enter", "; func+8", "sd s1, -", "return:\n", "  ret ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
}

func TestFill(t *testing.T) {
	p := planOf(t, "debian-7.2.13", "target bpf_fentry_test1\nprog e fentry\nattach e\n")
	im, err := Generate(p, Debian, PlaceholderAddrs(p))
	require.NoError(t, err)
	f := Fill(im)
	require.Len(t, f, im.AllocSize)
	require.Equal(t, im.Code, f[:len(im.Code)])
	require.Equal(t, make([]byte, im.AllocSize-len(im.Code)), f[len(im.Code):])
}

// FuzzDecode: Decode never panics, and what it returns covers the input
// up to the reported error.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x7d, 0x71, 0x06, 0xe4, 0x13, 0, 0, 0})
	f.Add([]byte{0x17, 0xf3, 0x2b, 0x08, 0xe7, 0x00, 0x23, 0x7c, 0x82, 0x82})
	f.Fuzz(func(t *testing.T, code []byte) {
		insns, err := Decode(code, 0xffffffff78000000)
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

// TestTailCallCtx: on a tail-call-reachable BPF program, 7.3's JIT keeps
// the tail call counter (a6) in a slot below s1's, stores it after the
// prologue, hands it to the original program and takes it back, and
// loads it before returning; 7.2's JIT ignores BPF_TRAMP_F_TAIL_CALL_CTX.
func TestTailCallCtx(t *testing.T) {
	const src = "target tc_entry(ptr) -> s32 bpf-prog tail-call\nprog x fexit\nattach x\n"
	listing := func(profile string) (Frame, string) {
		p := planOf(t, profile, src)
		require.NotZero(t, p.Flags&trampoline.FlagTailCallCtx, "the model sets TAIL_CALL_CTX on every arch")
		addrs := PlaceholderAddrs(p)
		im, err := Generate(p, Debian, addrs)
		require.NoError(t, err)
		require.NoError(t, Check(im, PlaceholderImage, retOf(p)))
		lines, err := Explain(im, addrs.Image)
		require.NoError(t, err)
		var sb strings.Builder
		arch.WriteListing(&sb, lines)
		return layout(p), sb.String()
	}
	f72, out72 := listing("debian-7.2.13")
	require.False(t, f72.TCC)
	require.NotContains(t, out72, " a6,")
	f73, out73 := listing("debian-7.3.4")
	require.True(t, f73.TCC)
	require.Equal(t, f73.SregOff+8, f73.TCCOff, "tcc_off right below sreg_off")
	slot := fmt.Sprintf("a6, -%d(s0)", f73.TCCOff)
	require.Equal(t, 2, strings.Count(out73, "sd "+slot), "stored after the prologue and after the original call:\n%s", out73)
	require.Equal(t, 2, strings.Count(out73, "ld "+slot), "loaded before the original call and before returning:\n%s", out73)
}
