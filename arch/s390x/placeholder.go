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

// nokaslr is a layout shaped like debian-7.2.13+z196 (Debian's s390x
// source built for z196, CONFIG_KERNEL_IMAGE_BASE 0x3ffe0000000) booted
// with nokaslr under QEMU s390-ccw-virtio (TCG), as its fsession_cookie
// recording has it: kernel text from 0x3ffe0100000 (bpf_fentry_test1 at
// 0x3ffe0b32168, the helpers near 0x3ffe038c000), the modules area right
// below it (MODULES_VADDR 0x3ff60000000), where execmem puts the
// trampoline pages and the programs' code (there the program's code at
// 0x3ff6000a740 and the image at 0x3ff6000c000, which moves with the
// programs loaded before it: here it sits higher, above the code of up to
// a hundred programs), struct bpf_prog in vmalloc
// (0x37fe0035000) and the kzalloc'd im in the identity map at 0
// (0x329cc00). Every brasl from the image reaches kernel text (about
// 2 GiB away) and the programs as on the real boot; load_imm64 has one
// length for every value, so no address changes an instruction's length.
var nokaslr = arch.Layout{
	Image: 0x000003ff60040000, Im: 0x000000000329cc00,
	Func: 0x000003ffe0b32168, SymBase: 0x000003ffe038c000,
	ProgBase: 0x0000037fe0035000, JITBase: 0x000003ff6000a000,
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
