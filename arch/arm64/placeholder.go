package arm64

import (
	"sort"

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
const (
	PlaceholderImage    = 0xffff800082c00000
	PlaceholderIm       = 0xfff0000004b31c00 // the live im of the facts sheet's example
	PlaceholderFunc     = 0xffff800080a10000
	placeholderSymBase  = 0xffff800080200000
	placeholderProgBase = 0xffff800083800000
	placeholderFuncBase = 0xffff800082c10000
)

// PlaceholderSymbols are the helper symbols an arm64 trampoline may call.
var PlaceholderSymbols = []string{
	trampoline.HelperTrampEnter, trampoline.HelperTrampExit,
	trampoline.HelperProgEnterRecur, trampoline.HelperProgExitRecur,
	trampoline.HelperProgEnterSleepableRec, trampoline.HelperProgExitSleepableRec,
	trampoline.HelperProgEnter, trampoline.HelperProgExit,
	trampoline.HelperProgEnterSleepable, trampoline.HelperProgExitSleepable,
}

// PlaceholderAddrs invents nokaslr-shaped addresses for every program of
// a plan.
func PlaceholderAddrs(p *trampoline.Plan) arch.Addrs {
	a := arch.Addrs{Image: PlaceholderImage, Im: PlaceholderIm, Func: PlaceholderFunc,
		Symbols: map[string]uint64{}, Progs: map[string]arch.ProgAddrs{}}
	for i, s := range PlaceholderSymbols {
		a.Symbols[s] = placeholderSymBase + uint64(i)*0x100
	}
	for i, n := range progNames(p) {
		a.Progs[n] = arch.ProgAddrs{Prog: placeholderProgBase + uint64(i)*0x1000, BPFFunc: placeholderFuncBase + uint64(i)*0x800}
	}
	return a
}

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

func progNames(p *trampoline.Plan) []string {
	var names []string
	seen := map[string]bool{}
	for _, l := range [][]trampoline.Node{p.Fentry, p.Fexit, p.ModReturn} {
		for _, n := range l {
			if !seen[n.Prog] {
				seen[n.Prog] = true
				names = append(names, n.Prog)
			}
		}
	}
	sort.Strings(names)
	return names
}
