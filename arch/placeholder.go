package arch

import (
	"sort"

	"github.com/bpftramp/tramp/trampoline"
)

// Placeholder addresses, shaped like a nokaslr boot: kernel text for the
// traced function and the helpers, the BPF area for the image and the
// programs' code, the direct map for im, vmalloc for struct bpf_prog.
// Their lengths under every value-dependent encoding equal real ones.
const (
	PlaceholderImage    = 0xffffffffa0000000
	PlaceholderIm       = 0xffff888100100000
	PlaceholderFunc     = 0xffffffff81a00000
	placeholderSymBase  = 0xffffffff81200000
	placeholderProgBase = 0xffffc90000100000
	placeholderFuncBase = 0xffffffffa0010000
)

// PlaceholderSymbols are the helper symbols a trampoline may call.
var PlaceholderSymbols = []string{
	trampoline.HelperTrampEnter, trampoline.HelperTrampExit,
	trampoline.HelperProgEnterRecur, trampoline.HelperProgExitRecur,
	trampoline.HelperProgEnterSleepableRec, trampoline.HelperProgExitSleepableRec,
	trampoline.HelperProgEnter, trampoline.HelperProgExit,
	trampoline.HelperProgEnterSleepable, trampoline.HelperProgExitSleepable,
	"x86_return_thunk",
}

// PlaceholderAddrs invents addresses for every program of a plan, for
// rendering without a recording (and for the size pass).
func PlaceholderAddrs(p *trampoline.Plan) Addrs {
	a := Addrs{Image: PlaceholderImage, Im: PlaceholderIm, Func: PlaceholderFunc,
		Symbols: map[string]uint64{}, Progs: map[string]ProgAddrs{}}
	for i, s := range PlaceholderSymbols {
		a.Symbols[s] = placeholderSymBase + uint64(i)*0x100
	}
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
	for i, n := range names {
		a.Progs[n] = ProgAddrs{Prog: placeholderProgBase + uint64(i)*0x1000, BPFFunc: placeholderFuncBase + uint64(i)*0x800}
	}
	return a
}
