package emu

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/x86"
	"github.com/bpftramp/tramp/cmd/tramp-guest/bpfobs"
	"github.com/bpftramp/tramp/trampoline"
)

// progsOf gives the stubs' view of the case's programs that have
// addresses (the attached ones), with their case index.
func progsOf(progs []*trampoline.Prog, addr func(name string) (arch.ProgAddrs, bool)) []Prog {
	var out []Prog
	for i, p := range progs {
		a, ok := addr(p.Name)
		if !ok {
			continue
		}
		out = append(out, Prog{Name: p.Name, Index: i, Kind: p.Kind, Cookie: p.Cookie, IP: p.IP,
			Returns: p.Returns, Ptr: a.Prog, BPFFunc: a.BPFFunc})
	}
	return out
}

// FromImage describes an image tramp generated from plan with addrs;
// progs are the case's programs in declaration order.
func FromImage(p *trampoline.Plan, img *arch.Image, addrs arch.Addrs, progs []*trampoline.Prog) (Setup, error) {
	s := Setup{Arch: p.Arch, Code: img.Code, Base: addrs.Image, Func: addrs.Func, Im: addrs.Im,
		Symbols: addrs.Symbols, Model: p.Func}
	attached := map[string]bool{}
	for _, l := range [][]trampoline.Node{p.Fentry, p.Fexit, p.ModReturn} {
		for _, n := range l {
			attached[n.Prog] = true
		}
	}
	s.Progs = progsOf(progs, func(name string) (arch.ProgAddrs, bool) {
		a, ok := addrs.Progs[name]
		return a, ok && attached[name]
	})
	switch p.Arch {
	case "x86_64":
		s.CallMode = !p.JmpMode
		s.TailCallCtx = p.Flags&trampoline.FlagTailCallCtx != 0
		s.OrigEntry = addrs.Func + 5
		if x86.Debian.EndbrAtFunc {
			s.OrigEntry = addrs.Func + 9
		}
		for _, r := range img.Relocs {
			if strings.HasPrefix(r.Sym, "func+") {
				s.OrigEntry = r.Value
			}
		}
	case "arm64":
		s.OrigEntry = addrs.Func + 8
	default:
		return s, fmt.Errorf("emu: no machine for %s", p.Arch)
	}
	return s, nil
}

// FromCapture describes a trampoline image captured from a real kernel:
// its bytes, the kernel's helper addresses (symbols), each program's
// bpf_func and the traced function's patched entry. The struct bpf_prog
// and bpf_tramp_image pointers, which the kernel does not export, are
// left unknown (the run checks that they are used consistently).
func FromCapture(archName string, c bpfobs.Capture, symbols map[string]uint64, m trampoline.FuncModel, progs []*trampoline.Prog) (Setup, error) {
	code, err := hex.DecodeString(c.Bytes)
	if err != nil {
		return Setup{}, fmt.Errorf("capture after step %d: %v", c.Step, err)
	}
	s := Setup{Arch: archName, Code: code, Base: c.Addr, Func: c.TargetAddr, Symbols: symbols, Model: m}
	byName := map[string]bpfobs.ProgImage{}
	for _, p := range c.Progs {
		byName[p.Name] = p
	}
	s.Progs = progsOf(progs, func(name string) (arch.ProgAddrs, bool) {
		p, ok := byName[name]
		return arch.ProgAddrs{BPFFunc: p.JitedKsym}, ok && p.JitedKsym != 0
	})
	switch archName {
	case "x86_64":
		switch c.CallSite.Kind {
		case "call":
			s.CallMode = true
		case "jmp":
		default:
			return s, fmt.Errorf("capture after step %d: the traced function's entry is %q, not a call or jmp", c.Step, c.CallSite.Kind)
		}
		s.OrigEntry = c.TargetAddr + uint64(c.CallSite.Offset) + 5
	case "arm64":
		off := c.CallSite.Offset
		if off == 0 {
			off = 4
		}
		s.OrigEntry = c.TargetAddr + uint64(off) + 4
	default:
		return s, fmt.Errorf("emu: no machine for %s", archName)
	}
	return s, nil
}

// RunFor gives the run of a case's run step: its explicit arguments, or
// the kernel's own for a known test_run target; the body returns the
// target's known value when it gets the kernel's own arguments, else
// 0x7e57 (other targets get 1, 2, 3, ... when the step gives no
// arguments, with 0x101, 0x102, ... in the upper words of 16-byte
// arguments).
func RunFor(target trampoline.Target, m trampoline.FuncModel, explicit []int64) Run {
	var vals []uint64
	var ret uint64
	t, known := TestTargetOf(target)
	if known {
		vals, ret = t.Args, t.Ret
	}
	if explicit != nil || !known {
		vals = nil
		for i := 0; i < m.NrArgs; i++ {
			v := uint64(i + 1)
			if i < len(explicit) {
				v = uint64(explicit[i])
			}
			vals = append(vals, v)
		}
	}
	args := ArgsOf(m, vals)
	if known && explicit != nil {
		// Other arguments than the kernel's: the known return value
		// holds only for the kernel's own.
		for i, v := range vals {
			if i >= len(t.Args) || v != t.Args[i] {
				known = false
			}
		}
	}
	if !known {
		for i := range args {
			if args[i].Size > 8 {
				args[i].Hi = 0x100 + uint64(i+1)
			}
		}
		ret = 0x7e57
	}
	return Run{Args: args, OrigRet: ret}
}
