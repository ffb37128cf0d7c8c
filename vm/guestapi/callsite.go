package guestapi

import (
	"encoding/binary"

	"github.com/bpftramp/tramp/arch/x86"
)

// DecodeCallSite reads the patched entry of a traced function from its
// first bytes (Capture.TargetHead): the guest does at capture, the host
// again for a recording whose guest did not know a form (the ENDBR seal
// of 6.12 to 6.17). goarch is "amd64"/"x86_64", "arm64", "riscv64" or
// "s390x".
func DecodeCallSite(goarch string, fn uint64, head []byte) CallSite {
	switch goarch {
	case "amd64", "x86_64":
		return decodeCallSiteX86(fn, head)
	case "arm64":
		return decodeCallSiteARM64(fn, head)
	case "riscv64":
		return decodeCallSiteRISCV64(fn, head)
	case "s390x":
		return decodeCallSiteS390X(fn, head)
	}
	return CallSite{Kind: "unknown"}
}

// decodeCallSiteX86 models where ftrace puts the fentry site on x86_64:
// after an ENDBR64 (or a sealed ENDBR, x86.StartsWithEndbr) at +4, else at +0; a
// direct call is "e8 rel32", jmp mode "e9 rel32" (ftrace_replace_code /
// the direct-call text patching).
func decodeCallSiteX86(fn uint64, b []byte) CallSite {
	off := 0
	if x86.StartsWithEndbr(b) {
		off = 4
	}
	if len(b) < off+5 {
		return CallSite{Kind: "unknown", Offset: off}
	}
	site := b[off : off+5]
	switch site[0] {
	case 0xe8, 0xe9:
		rel := int32(binary.LittleEndian.Uint32(site[1:]))
		k := "call"
		if site[0] == 0xe9 {
			k = "jmp"
		}
		return CallSite{Kind: k, Offset: off, Target: fn + uint64(off) + 5 + uint64(int64(rel))}
	case 0x0f:
		if site[1] == 0x1f && site[2] == 0x44 && site[3] == 0 && site[4] == 0 {
			return CallSite{Kind: "nop", Offset: off}
		}
	}
	return CallSite{Kind: "unknown", Offset: off}
}

// decodeCallSiteARM64 follows arm64 patchable-function-entry: "mov x9,
// x30" then the patched insn ("bl <tramp>" or "bl ftrace_caller", nop when
// idle), optionally after a "bti c". A BPF program's entry has the same
// shape (the JIT's prologue, poked by bpf_arch_text_poke), with "bti jc"
// first when the JIT emits BTI, and its mov written as "add x9, x30, #0"
// by the 6.18 JIT (ftrace and the 7.x JIT write "orr x9, xzr, x30").
func decodeCallSiteARM64(fn uint64, b []byte) CallSite {
	const (
		movX9X30 = 0xaa1e03e9 // orr x9, xzr, x30
		addX9X30 = 0x910003c9 // add x9, x30, #0
		btiC     = 0xd503245f
		btiJC    = 0xd50324df
		nop      = 0xd503201f
	)
	word := func(i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
	start := 0
	if len(b) >= 4 && (word(0) == btiC || word(0) == btiJC) {
		start = 4
	}
	if len(b) < start+8 || word(start) != movX9X30 && word(start) != addX9X30 {
		return CallSite{Kind: "unknown", Offset: start}
	}
	off := start + 4
	w := word(off)
	switch {
	case w&0xfc000000 == 0x94000000:
		imm := int64(int32(w<<6) >> 6) // sign-extend imm26
		return CallSite{Kind: "bl", Offset: off, Target: fn + uint64(off) + uint64(imm*4)}
	case w == nop:
		return CallSite{Kind: "nop", Offset: off}
	}
	return CallSite{Kind: "unknown", Offset: off}
}

// decodeCallSiteRISCV64 follows riscv64's patchable entry: an auipc then
// "jalr t0, lo(rs)" with rs the auipc's register (kind "auipc+jalr",
// Offset at the jalr), or a nop in the jalr's place when idle. ftrace
// only ever patches the jalr of a kernel function, "auipc t0; jalr t0,
// lo(t0)" (ftrace_make_call: the auipc is written once for
// ftrace_caller's page), so a traced kernel function reaches its
// trampoline through ftrace_caller and its ops; a BPF program's two
// reserved nops become "auipc t1; jalr t0, lo(t1)" straight to the image
// (bpf_arch_text_poke, gen_jump_or_nops).
func decodeCallSiteRISCV64(fn uint64, b []byte) CallSite {
	const (
		nop    = 0x00000013 // addi zero, zero, 0
		t0, t1 = 5, 6
		opAuip = 0x17
		opJalr = 0x67
	)
	if len(b) < 8 {
		return CallSite{Kind: "unknown"}
	}
	auipc := binary.LittleEndian.Uint32(b)
	jalr := binary.LittleEndian.Uint32(b[4:])
	rd := (auipc >> 7) & 31
	if auipc&0x7f != opAuip || rd != t0 && rd != t1 {
		if auipc == nop && jalr == nop {
			return CallSite{Kind: "nop", Offset: 4}
		}
		return CallSite{Kind: "unknown", Offset: 4}
	}
	switch {
	case jalr == nop:
		return CallSite{Kind: "nop", Offset: 4}
	case jalr&0x7f == opJalr && (jalr>>12)&7 == 0 && (jalr>>7)&31 == t0 && (jalr>>15)&31 == rd:
		hi := int64(int32(auipc &^ 0xfff))
		lo := int64(int32(jalr) >> 20)
		return CallSite{Kind: "auipc+jalr", Offset: 4, Target: fn + uint64(hi+lo)}
	}
	return CallSite{Kind: "unknown", Offset: 4}
}

// decodeCallSiteS390X reads s390x's 6-byte entry (the -mfentry "brcl 0,
// ." while idle). ftrace patches it one of two ways (ftrace_make_call):
// with the sequential-instruction facility into "brasl %r0, target"
// (kind "brasl", Target the trampoline or ftrace_caller; %r0 then holds
// fn+6), else its mask into "brcl 15, hotpatch" (kind "brcl", Target the
// function's ftrace_hotpatch_trampoline, whose interceptor field holds
// where it goes: ftrace_init_nop writes the brcl's displacement once).
// A patched-out brasl becomes "brcl 0, 0" again, a patched-out brcl keeps
// its displacement with mask 0: both are "nop".
func decodeCallSiteS390X(fn uint64, b []byte) CallSite {
	if len(b) < 6 {
		return CallSite{Kind: "unknown"}
	}
	target := fn + uint64(int64(int32(binary.BigEndian.Uint32(b[2:])))*2)
	switch binary.BigEndian.Uint16(b) {
	case 0xc005: // brasl %r0
		return CallSite{Kind: "brasl", Target: target}
	case 0xc0f4: // brcl 15
		return CallSite{Kind: "brcl", Target: target}
	case 0xc004: // brcl 0
		return CallSite{Kind: "nop"}
	}
	return CallSite{Kind: "unknown"}
}
