package guestapi

import (
	"encoding/hex"
	"strings"
	"testing"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestCallSiteX86(t *testing.T) {
	fn := uint64(0xffffffff81fffd90)  // bpf_fentry_test1, 7.2.13 amd64 nokaslr
	mrt := uint64(0xffffffff82002060) // bpf_modify_return_test
	for _, c := range []struct {
		head string
		want CallSite
	}{
		// Live 7.2.13: endbr64; jmp tramp (fexit present).
		{"f30f1efae9a70e003e8d4701c3cccccc", CallSite{Kind: "jmp", Offset: 4, Target: 0xffffffffc0000c40}},
		{"f30f1efae82715003e8d4701c3cccccc", CallSite{Kind: "call", Offset: 4, Target: 0xffffffffc00012c0}},
		// Sealed ENDBR poison nop (bpf_modify_return_test).
		{"0f1f40d6e99706003e8b0683c0018906", CallSite{Kind: "jmp", Offset: 4, Target: 0xffffffffc0002700}},
		{"660f1f00e8a7cb563e8d0437c3cccccc", CallSite{Kind: "call", Offset: 4, Target: 0xffffffff81fffd90 + 4 + 5 + 0x3e56cba7}}, // the seal of 6.12 to 6.17
		{"f30f1efa0f1f4400003e8d4701c3cccc", CallSite{Kind: "nop", Offset: 4, Target: 0}},
		{"e8fbffffff", CallSite{Kind: "call", Offset: 0, Target: fn}},
		{"5548", CallSite{Kind: "unknown", Offset: 0, Target: 0}},
		{"", CallSite{Kind: "unknown", Offset: 0, Target: 0}},
	} {
		f := fn
		if strings.HasPrefix(c.head, "0f1f40d6") {
			f = mrt
		}
		if got := decodeCallSiteX86(f, mustHex(c.head)); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.head, got, c.want)
		}
	}
}

func TestCallSiteARM64(t *testing.T) {
	fn := uint64(0xffff800080e94c88) // bpf_fentry_test1, 7.2.13 arm64 nokaslr
	for _, c := range []struct {
		head string
		want CallSite
	}{
		// mov x9, x30; bl tramp (live 7.2.13 arm64, nokaslr).
		{"e9031eaacd84609400040011c0035fd6", CallSite{Kind: "bl", Offset: 4, Target: 0xffff8000826b5fc0}},
		// bl backwards.
		{"e9031eaaffffff97", CallSite{Kind: "bl", Offset: 4, Target: fn}},
		// bti c first.
		{"5f2403d5e9031eaa01000094", CallSite{Kind: "bl", Offset: 8, Target: fn + 12}},
		{"e9031eaa1f2003d5", CallSite{Kind: "nop", Offset: 4, Target: 0}},
		{"1f2003d51f2003d5", CallSite{Kind: "unknown", Offset: 0, Target: 0}},
		{"e9031eaa", CallSite{Kind: "unknown", Offset: 0, Target: 0}},
	} {
		if got := decodeCallSiteARM64(fn, mustHex(c.head)); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.head, got, c.want)
		}
	}
}

// The patched entry of a BPF program (x86_64 JIT, Debian 7.2.13): ENDBR,
// the 5-byte poke site (here a call: fentry only), then the
// tail-call-reachable prologue's xor rax, rax.
func TestCallSiteBPFProgX86(t *testing.T) {
	head := []byte{0xf3, 0x0f, 0x1e, 0xfa, 0xe8, 0x5b, 0x05, 0x00, 0x00, 0x48, 0x31, 0xc0, 0x55, 0x48, 0x89, 0xe5}
	const fn = 0xffffffffc00006dc
	cs := decodeCallSiteX86(fn, head)
	if cs.Kind != "call" || cs.Offset != 4 || cs.Target != 0xffffffffc0000c40 {
		t.Errorf("call site %+v, want call at +4 to 0xffffffffc0000c40", cs)
	}
}

// TestCallSiteARM64BPFProg618: the 6.18 JIT writes the prologue's mov as
// "add x9, x30, #0"; the poked bl after it is still found (recorded
// tailcall_taken, debian-6.18.15 arm64, step 0: the image 0x638 after the
// program).
func TestCallSiteARM64BPFProg618(t *testing.T) {
	const fn = 0xffff800081cdc008
	cs := decodeCallSiteARM64(fn, mustHex("c90300918d0100943f2303d5fd7bbfa9"))
	if cs.Kind != "bl" || cs.Offset != 4 || cs.Target != fn+0x638 {
		t.Errorf("%+v, want bl at +4 to %#x", cs, uint64(fn+0x638))
	}
	// bti jc first (a JIT with BTI).
	cs = decodeCallSiteARM64(fn, mustHex("df2403d5c9030091010000943f2303d5"))
	if cs.Kind != "bl" || cs.Offset != 8 || cs.Target != fn+12 {
		t.Errorf("bti jc: %+v", cs)
	}
}

func TestCallSiteRISCV64(t *testing.T) {
	fn := uint64(0xffffffff80bbb560) // bpf_fentry_test1, 7.2.13 riscv64 nokaslr
	for _, c := range []struct {
		head string
		want CallSite
	}{
		// auipc t0, -0xb99; jalr t0, 0x488(t0): ftrace_caller at
		// 0xffffffff800229e8 (live 7.2.13 riscv64, an fentry attached).
		{"977246ffe7828248411122e006e40008", CallSite{Kind: "auipc+jalr", Offset: 4, Target: 0xffffffff800229e8}},
		// Idle: the jalr is a nop.
		{"977246ff13000000", CallSite{Kind: "nop", Offset: 4}},
		// A BPF program's two reserved nops.
		{"1300000013000000", CallSite{Kind: "nop", Offset: 4}},
		// A BPF program poked: auipc t1, 0; jalr t0, 0x468(t1) (live
		// 7.2.13, bpf_prog_target_no_tailcall: the image at fn+0x468).
		{"17030000e7028346130810027d7122e4", CallSite{Kind: "auipc+jalr", Offset: 4, Target: fn + 0x468}},
		// auipc t1 with a jalr through t0: not a pair.
		{"17f346ffe7828248", CallSite{Kind: "unknown", Offset: 4}},
		{"977246ff", CallSite{Kind: "unknown"}},
	} {
		if got := decodeCallSiteRISCV64(fn, mustHex(c.head)); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.head, got, c.want)
		}
	}
}

// Live heads of debian-7.2.13+z196 under QEMU's s390x (TCG, which lacks
// the sequential-instruction facility, so ftrace patches the mask): a
// kernel function's "brcl 15" to its hotpatch trampoline and a BPF
// program's "brcl 15" to its prologue PLT.
func TestCallSiteS390X(t *testing.T) {
	for _, c := range []struct {
		fn   uint64
		head string
		want CallSite
	}{
		{0x3ffe0b32168, "c0f4001683f4a72a0001b914002207fe", CallSite{Kind: "brcl", Target: 4397524330832}},        // bpf_fentry_test1
		{0x3ff60006b00, "c0f400000014d703f040f040ebbff070", CallSite{Kind: "brcl", Target: 0x3ff60006b00 + 0x28}}, // a BPF program
		{0x3ff60006b00, "c00400000014d703f040f040ebbff070", CallSite{Kind: "nop"}},                                // the mask bpf_arch_text_poke writes on detach (built, not captured)
		{0x3ffe0b32168, "eb6ff0480024", CallSite{Kind: "unknown"}},
		{0x3ffe0b32168, "c0f4", CallSite{Kind: "unknown"}},
	} {
		if got := DecodeCallSite("s390x", c.fn, mustHex(c.head)); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.head, got, c.want)
		}
	}
}
