package emu

import (
	"fmt"

	"github.com/bpftramp/tramp/arch"
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
// progs are the case's programs in declaration order, origEntry where
// the traced function goes on past its patched entry (the boot's
// generator says: generators.Generator.OrigEntry).
func FromImage(p *trampoline.Plan, img *arch.Image, addrs arch.Addrs, progs []*trampoline.Prog, origEntry uint64) (Setup, error) {
	s := Setup{Arch: p.Arch, Code: img.Code, Base: addrs.Image, Func: addrs.Func, Im: addrs.Im,
		Symbols: addrs.Symbols, Model: p.Func, OrigEntry: origEntry}
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
	case "s390x":
		s.TailCallCtx = p.Flags&trampoline.FlagTailCallCtx != 0
	case "arm64", "riscv64":
	default:
		return s, fmt.Errorf("emu: no machine for %s", p.Arch)
	}
	return s, nil
}

// KernelImage is a trampoline image read from a real kernel: its bytes
// at Base, the traced function at Func with the patched entry ftrace or
// the JIT put at EntryOffset (EntryKind: call or jmp on x86_64, bl on
// arm64, auipc+jalr on riscv64 with EntryOffset at the jalr, brasl or
// brcl at offset 0 on s390x), and each program's bpf_func by name.
type KernelImage struct {
	Arch        string
	Code        []byte
	Base, Func  uint64
	EntryKind   string
	EntryOffset int
	BPFFuncs    map[string]uint64
}

// FromKernelImage describes a trampoline image captured from a real
// kernel, with the kernel's helper addresses (symbols). The struct
// bpf_prog and bpf_tramp_image pointers, which the kernel does not
// export, are left unknown (the run checks that they are used
// consistently). The original function resumes after the patched entry
// (x86 ftrace's 5-byte call or jmp; arm64's bl after "mov x9, x30";
// riscv64's jalr after the auipc; s390x's 6-byte patch site).
func FromKernelImage(k KernelImage, symbols map[string]uint64, m trampoline.FuncModel, progs []*trampoline.Prog) (Setup, error) {
	s := Setup{Arch: k.Arch, Code: k.Code, Base: k.Base, Func: k.Func, Symbols: symbols, Model: m}
	s.Progs = progsOf(progs, func(name string) (arch.ProgAddrs, bool) {
		f := k.BPFFuncs[name]
		return arch.ProgAddrs{BPFFunc: f}, f != 0
	})
	switch k.Arch {
	case "x86_64":
		switch k.EntryKind {
		case "call":
			s.CallMode = true
		case "jmp":
		default:
			return s, fmt.Errorf("the traced function's entry is %q, not a call or jmp", k.EntryKind)
		}
		s.OrigEntry = k.Func + uint64(k.EntryOffset) + 5
	case "arm64":
		off := k.EntryOffset
		if off == 0 {
			off = 4
		}
		s.OrigEntry = k.Func + uint64(off) + 4
	case "riscv64":
		// "auipc t0, hi; jalr t0, lo(t0)" at the function's entry (the
		// jalr at EntryOffset 4) goes on at func+8. A BPF program's poked
		// entry is "auipc t1, hi; jalr t0, lo(t1)" (emit_jump_and_link
		// puts the upper part in t1), which vm/guestapi's decoder leaves
		// "unknown"; it enters the same way, t0 past the pair.
		switch k.EntryKind {
		case "auipc+jalr", "unknown":
		default:
			return s, fmt.Errorf("the traced function's entry is %q, not an auipc+jalr pair", k.EntryKind)
		}
		off := k.EntryOffset
		if off == 0 {
			off = 4
		}
		s.OrigEntry = k.Func + uint64(off) + 4
	case "s390x":
		// The 6-byte -mfentry site: "brasl %r0,target" where ftrace
		// patches the branch (cpu_has_seq_insn), else "brcl 15" to the
		// function's hotpatch trampoline (ftrace_make_trampoline_call);
		// a BPF program's prologue "brcl 15" to its PLT
		// (bpf_arch_text_poke). Each enters with %r0 past the site, and
		// the body goes on there.
		switch k.EntryKind {
		case "brasl", "brcl", "unknown":
		default:
			return s, fmt.Errorf("the traced function's entry is %q, not a brasl or brcl", k.EntryKind)
		}
		s.OrigEntry = k.Func + uint64(k.EntryOffset) + 6
	default:
		return s, fmt.Errorf("emu: no machine for %s", k.Arch)
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
