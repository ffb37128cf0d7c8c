package riscv64

import (
	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// Placeholder addresses shaped like a Debian riscv64 boot with nokaslr
// under QEMU (Sv48): kernel text at 0xffffffff80000000, the BPF region
// (trampolines and program code in one pack) 128 MiB below it at
// 0xffffffff78000000, struct bpf_prog in vmalloc (0xffff8f80...) and im
// (kzalloc) in the linear map (0xffffaf80...), as on the live 7.2.13
// images. The programs' code lies below the image in the same pack, so
// helper calls are auipc+jalr pairs (about 130 MiB away) and calls of the
// programs jal; im and the prog pointers take as many emit_imm
// instructions as the live ones.
var nokaslr = arch.Layout{
	Image: 0xffffffff78040000, Im: 0xffffaf8003b38800,
	Func: 0xffffffff80bbb560, SymBase: 0xffffffff802bf000,
	ProgBase: 0xffff8f80006da000, JITBase: 0xffffffff78000100,
	Symbols: arch.HelperSymbols,
}

// PatchSiteEnd is the offset in the traced function just past its
// patched entry: "auipc t0, hi; jalr t0, lo(t0)" (RV_FENTRY_NINSNS
// instructions of 4 bytes), where t0 points when the trampoline is
// entered and where the call of the original function (SKIP_FRAME) goes.
const PatchSiteEnd = 8

// PlaceholderImage is where PlaceholderAddrs puts the image.
const PlaceholderImage = 0xffffffff78040000

// PlaceholderAddrs invents nokaslr-shaped addresses for every program of
// a plan.
func PlaceholderAddrs(p *trampoline.Plan) arch.Addrs { return nokaslr.Addrs(p) }

// PlaceholderAddrsFar is PlaceholderAddrs with the programs' code 16 MiB
// away from the image, beyond a jal's reach: their calls become
// auipc+jalr pairs too.
func PlaceholderAddrsFar(p *trampoline.Plan) arch.Addrs {
	a := PlaceholderAddrs(p)
	for n, pa := range a.Progs {
		pa.BPFFunc += 16 << 20
		a.Progs[n] = pa
	}
	return a
}
