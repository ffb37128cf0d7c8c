package arm64

import (
	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// Placeholder addresses shaped like a Debian arm64 boot with nokaslr: the
// kernel image at 0xffff800080000000, the BPF pack (trampolines and
// program code) about 44 MiB above it, struct bpf_prog in vmalloc and im
// (kzalloc) in the linear map. Every call is then a direct bl and im takes
// three instructions, as on the live 7.2.13 images. arch.PlaceholderAddrs
// is x86-shaped: its helpers lie about 500 MiB from its image, which on
// arm64 makes every helper call indirect.
var nokaslr = arch.Layout{
	Image: 0xffff800082c00000, Im: 0xfff0000004b31c00, // the live im of the facts sheet's example
	Func: 0xffff800080a10000, SymBase: 0xffff800080200000,
	ProgBase: 0xffff800083800000, JITBase: 0xffff800082c10000,
	Symbols: arch.HelperSymbols,
}

// PatchSiteEnd is the offset in the traced function just past its patched
// entry: patchable-function-entry puts "mov x9, x30" and the patched insn
// (a bl to the trampoline, or a nop) at +0 and +4, so the function goes
// on at +8 (the LR the trampoline's call of the original function
// returns to).
const PatchSiteEnd = 8

// PlaceholderImage is where PlaceholderAddrs puts the image.
const PlaceholderImage = 0xffff800082c00000

// PlaceholderAddrs invents nokaslr-shaped addresses for every program of
// a plan.
func PlaceholderAddrs(p *trampoline.Plan) arch.Addrs { return nokaslr.Addrs(p) }

// PlaceholderAddrsFar is PlaceholderAddrs with the image and the programs'
// code moved 1 GiB away from kernel text, as KASLR can place them: calls
// to the helpers become indirect (movn/movk/movk x10; blr x10) while the
// programs stay in bl reach.
func PlaceholderAddrsFar(p *trampoline.Plan) arch.Addrs {
	a := PlaceholderAddrs(p)
	const far = 1 << 30
	a.Image += far
	for n, pa := range a.Progs {
		pa.BPFFunc += far
		a.Progs[n] = pa
	}
	return a
}
