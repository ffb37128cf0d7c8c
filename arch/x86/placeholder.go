package x86

import (
	"bytes"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// nokaslr is shaped like an x86_64 nokaslr boot: kernel text for the
// traced function and the helpers, the BPF area for the image and the
// programs' code, the direct map for im, vmalloc for struct bpf_prog.
var nokaslr = arch.Layout{
	Image: 0xffffffffa0000000, Im: 0xffff888100100000, Func: 0xffffffff81a00000,
	SymBase: 0xffffffff81200000, ProgBase: 0xffffc90000100000, JITBase: 0xffffffffa0010000,
	Symbols: append(append([]string(nil), arch.HelperSymbols...), "x86_return_thunk",
		// The return thunks x86_return_thunk may point at and the per-CPU
		// call-depth counter (after the others, so their places stay).
		"__x86_return_thunk", "retbleed_return_thunk", "srso_return_thunk", "srso_alias_return_thunk",
		"its_return_thunk", "call_depth_return_thunk", "__x86_call_depth"),
}

// PlaceholderAddrs invents nokaslr-shaped addresses for every program of
// a plan (for rendering without a recording, and the size pass).
func PlaceholderAddrs(p *trampoline.Plan) arch.Addrs { return nokaslr.Addrs(p) }

// PatchSiteEnd is the offset in the traced function just past the 5-byte
// call or jmp ftrace patches in: after the ENDBR64 (or its sealed poison
// nop) when the function starts with one (ftrace_location puts the site
// there). The image's call of the original function goes to this
// offset, as the kernel's orig_call + X86_PATCH_SIZE (+ ENDBR_INSN_SIZE)
// does in __arch_prepare_bpf_trampoline.
func PatchSiteEnd(feat Features) int {
	if feat.EndbrAtFunc {
		return 4 + 5
	}
	return 5
}

// StartsWithEndbr says whether a function's first bytes are an ENDBR64,
// or the 4-byte nop the kernel seals unused ones with (apply_seal_endbr's
// poison, which is_endbr accepts too): either way ftrace's patch site
// follows at +4 (EndbrAtFunc). The poison changed: Debian 6.12 to 6.17
// seal with 66 0f 1f 00 (nopw (%rax)), 6.18 on with 0f 1f 40 d6 (nopl
// -0x2a(%rax)), as their recorded bpf_fentry_test heads show.
func StartsWithEndbr(head []byte) bool {
	for _, p := range endbrHeads {
		if bytes.HasPrefix(head, p) {
			return true
		}
	}
	return false
}

var endbrHeads = [][]byte{
	{0xf3, 0x0f, 0x1e, 0xfa}, // endbr64
	{0x0f, 0x1f, 0x40, 0xd6}, // the poison since 6.18
	{0x66, 0x0f, 0x1f, 0x00}, // the poison up to 6.17
}
