package record

import (
	"encoding/hex"
	"fmt"
	"github.com/bpftramp/tramp/vm/recording"
	"path/filepath"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/emu"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/guestapi"
)

// This file hands what a kernel recorded to the emulator: a captured
// image as an emu.Setup, and the observer programs' records as the calls
// emu.CompareKernel holds an emulated run against.

// EmuSetup describes a captured image for the emulator, with the
// recording's helper addresses.
func EmuSetup(rec *recording.Recording, c guestapi.Capture, m trampoline.FuncModel, progs []*trampoline.Prog) (emu.Setup, error) {
	code, err := hex.DecodeString(c.Bytes)
	if err != nil {
		return emu.Setup{}, fmt.Errorf("capture after step %d: %v", c.Step, err)
	}
	funcs := map[string]uint64{}
	for _, p := range c.Progs {
		funcs[p.Name] = p.JitedKsym
	}
	var syms map[string]uint64
	if rec.Start != nil {
		syms = rec.Start.Symbols
	}
	cs := c.CallSite
	if head, err := hex.DecodeString(c.TargetHead); cs.Kind == "unknown" && err == nil {
		// The guest that recorded it did not know this entry's form;
		// the bytes it kept say it (DecodeCallSite knows it now).
		cs = guestapi.DecodeCallSite(rec.Arch, c.TargetAddr, head)
	}
	s, err := emu.FromKernelImage(emu.KernelImage{Arch: rec.Arch, Code: code, Base: c.Addr, Func: c.TargetAddr,
		EntryKind: cs.Kind, EntryOffset: cs.Offset, BPFFuncs: funcs}, syms, m, progs)
	if err != nil {
		return s, fmt.Errorf("capture after step %d: %v", c.Step, err)
	}
	return s, nil
}

// KernelCalls are the observer records of a run as emulator calls: what
// each program saw, and its frame dump where the kernel's read of it
// succeeded (FrameInit).
func KernelCalls(obs []guestapi.Obs) []emu.Call {
	out := make([]emu.Call, len(obs))
	for i, o := range obs {
		c := emu.Call{Order: int(o.Order), Prog: o.Prog, Phase: o.Phase, ArgCnt: o.ArgCnt, Args: o.Args, Ret: o.Ret, IP: o.IP,
			AttachCookie: o.AttachCookie, CookieRead: o.CookieRead, CookieWritten: o.CookieWritten, CookieSlot: o.CookieSlot, Ctx: o.Ctx}
		if o.FrameStatus == "ok" && o.FrameOffset == -emu.FrameBelow && len(o.Frame) == len(c.Frame) {
			copy(c.Frame[:], o.Frame)
			for w := range c.FrameInit {
				c.FrameInit[w] = true
			}
		}
		out[i] = c
	}
	return out
}

// CaseOf is the case a recording ran: its Source (shapes, fuzz), else the
// corpus file <case>.tramp in casesDir.
func CaseOf(rec *recording.Recording, casesDir string) (*cases.Case, error) {
	if rec.Source != "" {
		return ShapeCase(rec)
	}
	return cases.ParseFile(filepath.Join(casesDir, rec.Case+".tramp"))
}
