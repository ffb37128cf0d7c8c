package arch

import (
	"sort"

	"github.com/bpftramp/tramp/trampoline"
)

// Layout places invented addresses: where the image, im and the traced
// function are, and where helper symbols, struct bpf_prog objects and the
// programs' code start. Each architecture has one shaped like a nokaslr
// boot, so that every value-dependent encoding (and arm64's bl reach)
// comes out as on a real kernel.
type Layout struct {
	Image, Im, Func            uint64
	SymBase, ProgBase, JITBase uint64
	// Symbols are the helper symbols placed SymBase + i*0x100.
	Symbols []string
}

// HelperSymbols are the symbols a trampoline may call.
var HelperSymbols = []string{
	trampoline.HelperTrampEnter, trampoline.HelperTrampExit,
	trampoline.HelperProgEnterRecur, trampoline.HelperProgExitRecur,
	trampoline.HelperProgEnterSleepableRec, trampoline.HelperProgExitSleepableRec,
	trampoline.HelperProgEnter, trampoline.HelperProgExit,
	trampoline.HelperProgEnterSleepable, trampoline.HelperProgExitSleepable,
}

// Addrs invents addresses for every program of a plan, in name order.
func (l Layout) Addrs(p *trampoline.Plan) Addrs {
	a := Addrs{Image: l.Image, Im: l.Im, Func: l.Func, Symbols: map[string]uint64{}, Progs: map[string]ProgAddrs{}}
	for i, s := range l.Symbols {
		a.Symbols[s] = l.SymBase + uint64(i)*0x100
	}
	for i, n := range ProgNames(p) {
		a.Progs[n] = ProgAddrs{Prog: l.ProgBase + uint64(i)*0x1000, BPFFunc: l.JITBase + uint64(i)*0x800}
	}
	return a
}

// ProgNames lists the plan's programs once each, sorted.
func ProgNames(p *trampoline.Plan) []string {
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
