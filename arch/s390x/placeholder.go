package s390x

import (
	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/trampoline"
)

// Expoline thunks the trampoline may branch to (Features.Expoline).
const (
	ThunkR1  = "__s390_indirect_jump_r1"
	ThunkR8  = "__s390_indirect_jump_r8"
	ThunkR14 = "__s390_indirect_jump_r14"
)

// Symbols are the kernel symbols an s390x trampoline may branch to: the
// shared helpers, then the expoline thunks.
var Symbols = append(append([]string(nil), arch.HelperSymbols...), ThunkR1, ThunkR8, ThunkR14)

// nokaslr is a layout shaped like a Debian 7.2.13 s390x kernel (built
// for z196, CONFIG_KERNEL_IMAGE_BASE 0x3ffe0000000) booted with nokaslr
// under QEMU s390-ccw-virtio, as setup_kernel_memory_layout places it:
// kernel text from 0x3ffe0100000 (TEXT_OFFSET), the 2 GiB modules area
// right below it (MODULES_VADDR 0x3ff60000000), where execmem puts the
// trampoline pages and the programs' code (bpf_jit_alloc_exec;
// CONFIG_MODULES is off, EXECMEM_BPF falls back to that range), vmalloc
// (struct bpf_prog) below that from 0x37fe0000000, and kzalloc'd memory
// (im) in the identity map at 0 (no RANDOMIZE_IDENTITY_BASE). Every
// brasl from the image reaches kernel text (about 2 GiB) and the
// programs (a few hundred KiB) as on a real boot.
//
// TODO: these are guesses from the source, not a boot: replace them with
// the first live s390x boot's addresses (image, im, the traced function,
// the helper symbols, struct bpf_prog and bpf_func) once one is
// recorded. Only brasl reach and the relocated fields' values depend on
// them; no instruction's length does.
var nokaslr = arch.Layout{
	Image: 0x000003ff60040000, Im: 0x0000000005a1e400,
	Func: 0x000003ffe0cb3a10, SymBase: 0x000003ffe03a2000,
	ProgBase: 0x0000037fe0a6c000, JITBase: 0x000003ff60001100,
	Symbols: Symbols,
}

// PatchSiteEnd is S390X_PATCH_SIZE: the offset in the traced function
// just past its 6-byte -mfentry NOP, where the call of the original
// function and the return into it go.
const PatchSiteEnd = 6

// PlaceholderImage is where PlaceholderAddrs puts the image.
const PlaceholderImage = 0x000003ff60040000

// PlaceholderAddrs invents nokaslr-shaped addresses for every program of
// a plan.
func PlaceholderAddrs(p *trampoline.Plan) arch.Addrs { return nokaslr.Addrs(p) }
