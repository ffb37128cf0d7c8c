package emu

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// generated renders the image of a corpus case's first run step.
func generated(t *testing.T, name, archName string) (*Generated, Run) {
	t.Helper()
	c, err := cases.ParseFile(filepath.Join("..", "cases", name+".tramp"))
	require.NoError(t, err)
	prof, _ := trampoline.LookupProfile("debian-7.2.13")
	a, _ := trampoline.LookupArch(archName)
	if archName == "s390x" {
		prof = s390xJIT(prof)
	}
	runs, err := RunSteps(c, prof, a)
	if err != nil || len(runs) == 0 || runs[0].Plan == nil {
		t.Fatalf("%s: no run with an image (%v)", name, err)
	}
	g, err := Generate(runs[0].Plan, nil, c.Progs)
	require.NoError(t, err)
	return g, runs[0].Run
}

func label(t *testing.T, img *arch.Image, name string) int {
	t.Helper()
	for _, l := range img.Labels {
		if l.Name == name {
			return l.Off
		}
	}
	t.Fatalf("no label %s", name)
	return 0
}

// patch replaces want at off with repl (same length), failing when the
// image does not hold want there.
func patch(t *testing.T, code []byte, off int, want, repl []byte) []byte {
	t.Helper()
	if off < 0 || off+len(want) > len(code) || !bytes.Equal(code[off:off+len(want)], want) {
		t.Fatalf("expected % x at %#x, image has % x", want, off, code[off:min(len(code), off+len(want))])
	}
	out := append([]byte(nil), code...)
	copy(out[off:], repl)
	return out
}

func word(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// find returns the offset of the only occurrence of b (4-byte aligned on
// arm64).
func find(t *testing.T, code, b []byte, aligned bool) int {
	t.Helper()
	at := -1
	for i := 0; i+len(b) <= len(code); i++ {
		if aligned && i%4 != 0 {
			continue
		}
		if bytes.Equal(code[i:i+len(b)], b) {
			if at >= 0 {
				t.Fatalf("% x occurs twice", b)
			}
			at = i
		}
	}
	if at < 0 {
		t.Fatalf("% x not in the image", b)
	}
	return at
}

var nop4 = []byte{0x0f, 0x1f, 0x40, 0x00}

const (
	a64Nop = 0xd503201f
	rvNop  = 0x00000013 // addi zero, zero, 0
)

// rvStore checks that the 32-bit instruction at off is "sd rs2, n(s0)"
// and returns off.
func rvStore(t *testing.T, code []byte, off int, rs2 uint32) int {
	t.Helper()
	w := binary.LittleEndian.Uint32(code[off:])
	if w&0x01fff07f != rs2<<20|8<<15|3<<12|0x23 {
		t.Fatalf("%08x at %#x is not sd x%d, n(s0)", w, off, rs2)
	}
	return off
}

// s390Find returns the offset of the only instruction of an s390x image
// that match says is the one (decoded by the machine).
func s390Find(t *testing.T, g *Generated, what string, match func(o *sop) bool) int {
	t.Helper()
	e := &Emulator{s: g.Setup}
	at := -1
	for off := 0; off < len(g.Setup.Code); off += s390Len(g.Setup.Code[off]) {
		if o := e.decodeS390(off); o.err == "" && match(o) {
			if at >= 0 {
				t.Fatalf("%s at %#x and %#x", what, at, off)
			}
			at = off
		}
	}
	if at < 0 {
		t.Fatalf("no %s in the image", what)
	}
	return at
}

// s390Nop6 is the image's own first skip NOP (brcl 0: it never
// branches, whatever its offset), a 6-byte no-op to patch in.
func s390Nop6(t *testing.T, g *Generated) []byte {
	t.Helper()
	e := &Emulator{s: g.Setup}
	for off := 0; off < len(g.Setup.Code); off += s390Len(g.Setup.Code[off]) {
		if o := e.decodeS390(off); o.kind == sBrcl && o.mask == 0 {
			return g.Setup.Code[off : off+6]
		}
	}
	t.Fatal("no brcl 0 in the image")
	return nil
}

// s390Patch replaces the instruction at off, checked by match, with
// repl.
func s390Patch(t *testing.T, g *Generated, off int, what string, match func(o *sop) bool, repl []byte) []byte {
	t.Helper()
	e := &Emulator{s: g.Setup}
	o := e.decodeS390(off)
	if o.err != "" || !match(o) || int(o.n) != len(repl) {
		t.Fatalf("%q at %#x is not %s", o.text, off, what)
	}
	return patch(t, g.Setup.Code, off, g.Setup.Code[off:off+len(repl)], repl)
}

// TestMutations breaks generated images in several ways per arch and
// expects each to be caught by a named check; the unbroken images pass.
func TestMutations(t *testing.T) {
	type mutation struct {
		name, caseName, arch string
		mutate               func(t *testing.T, g *Generated) []byte
		want                 []string
	}
	ms := []mutation{
		{"wrong cookie index", "fsession_cookie", "x86_64", func(t *testing.T, g *Generated) []byte {
			// mov eax, 0x201 (func_meta with cookie index 2) -> index 3
			off := label(t, g.Image, "entry:s") - 9
			return patch(t, g.Setup.Code, off, []byte{0xb8, 0x01, 0x02}, []byte{0xb8, 0x01, 0x03})
		}, []string{CheckObservation}},
		{"wrong cookie index", "fsession_cookie", "arm64", func(t *testing.T, g *Generated) []byte {
			// movz w10, #0x201 -> #0x301
			off := label(t, g.Image, "entry:s") - 8
			return patch(t, g.Setup.Code, off, word(0x5280402a), word(0x5280602a))
		}, []string{CheckObservation}},
		{"dropped rbx save", "fsession_cookie", "x86_64", func(t *testing.T, g *Generated) []byte {
			// mov [rbp-0x28], rbx (the rbx slot of this frame)
			off := find(t, g.Setup.Code, []byte{0x48, 0x89, 0x5d, 0xd8}, false)
			return patch(t, g.Setup.Code, off, []byte{0x48, 0x89, 0x5d, 0xd8}, nop4)
		}, []string{CheckUninit, CheckCalleeSaved}},
		{"dropped x19 save", "fsession_cookie", "arm64", func(t *testing.T, g *Generated) []byte {
			// str x19, [sp, #48]
			w := uint32(0xf90003f3 | (48/8)<<10)
			off := find(t, g.Setup.Code, word(w), true)
			return patch(t, g.Setup.Code, off, word(w), word(a64Nop))
		}, []string{CheckUninit, CheckCalleeSaved}},
		{"misaligned call", "fexit_seven_args", "x86_64", func(t *testing.T, g *Generated) []byte {
			// sub rsp, S -> S+8: the original function's stack arguments
			// are no longer 16-byte aligned.
			s := byte(g.Image.FrameSize)
			return patch(t, g.Setup.Code, 4, []byte{0x48, 0x83, 0xec, s}, []byte{0x48, 0x83, 0xec, s + 8})
		}, []string{CheckAlign}},
		{"misaligned call", "fsession_cookie", "arm64", func(t *testing.T, g *Generated) []byte {
			// sub sp, sp, #S -> #S+8
			s := uint32(g.Image.FrameSize)
			w := 0xd10003ff | s<<10
			return patch(t, g.Setup.Code, 16, word(w), word(0xd10003ff|(s+8)<<10))
		}, []string{CheckAlign}},
		{"missing retval store", "fsession_cookie", "x86_64", func(t *testing.T, g *Generated) []byte {
			// mov [rbp-8], rax after the call of the original function
			off := label(t, g.Image, "call_orig") + 5
			return patch(t, g.Setup.Code, off, []byte{0x48, 0x89, 0x45, 0xf8}, nop4)
		}, []string{CheckRetval, CheckObservation}},
		{"missing retval store", "fsession_cookie", "arm64", func(t *testing.T, g *Generated) []byte {
			// str x0, [sp, #retval] after ret x10
			off := label(t, g.Image, "call_orig") + 12
			w := binary.LittleEndian.Uint32(g.Setup.Code[off:])
			if w&0xffc003ff != 0xf90003e0 {
				t.Fatalf("%08x at %#x is not str x0, [sp, #n]", w, off)
			}
			return patch(t, g.Setup.Code, off, word(w), word(a64Nop))
		}, []string{CheckRetval, CheckObservation}},
		{"wrong cookie index", "fsession_cookie", "riscv64", func(t *testing.T, g *Generated) []byte {
			// li t1, 0x201 (func_meta with cookie index 2) -> 0x301, then
			// sd t1, -func_meta(s0)
			off := label(t, g.Image, "entry:s") - 8
			return patch(t, g.Setup.Code, off, word(0x20100313), word(0x30100313))
		}, []string{CheckObservation}},
		{"dropped s1 save", "fsession_cookie", "riscv64", func(t *testing.T, g *Generated) []byte {
			// sd s1, -sreg(s0) after the two frames' prologue
			off := rvStore(t, g.Setup.Code, 16, 9)
			return patch(t, g.Setup.Code, off, g.Setup.Code[off:off+4], word(rvNop))
		}, []string{CheckUninit, CheckCalleeSaved}},
		{"misaligned call", "fsession_cookie", "riscv64", func(t *testing.T, g *Generated) []byte {
			// c.addi16sp sp, -16 (the parent's frame) -> c.addi sp, -8
			return patch(t, g.Setup.Code, 0, []byte{0x7d, 0x71}, []byte{0x61, 0x11})
		}, []string{CheckAlign}},
		{"missing retval store", "fsession_cookie", "riscv64", func(t *testing.T, g *Generated) []byte {
			// sd a0, -retval(s0) after the auipc+jalr of the original
			// function
			off := rvStore(t, g.Setup.Code, label(t, g.Image, "call_orig")+8, 10)
			return patch(t, g.Setup.Code, off, g.Setup.Code[off:off+4], word(rvNop))
		}, []string{CheckRetval, CheckObservation}},
		{"t0 not reloaded", "fentry_only", "riscv64", func(t *testing.T, g *Generated) []byte {
			// c.ldsp t0, n(sp) before "jr t0" into the traced function ->
			// c.nop: t0 is what the last helper left in it.
			off := label(t, g.Image, "return") - 12
			w := binary.LittleEndian.Uint16(g.Setup.Code[off:])
			if w&0xef83 != 0x6282 {
				t.Fatalf("%04x at %#x is not c.ldsp t0, n(sp)", w, off)
			}
			return patch(t, g.Setup.Code, off, g.Setup.Code[off:off+2], []byte{0x01, 0x00})
		}, []string{CheckControl}},
		{"dropped r7 restore", "fsession_cookie", "s390x", func(t *testing.T, g *Generated) []byte {
			// lmg %r7,%r8,r7_r8_off(%r15) before the return -> brcl 0
			isRestore := func(o *sop) bool { return o.kind == sLmg && o.r1 == 7 && o.r2 == 8 && o.b == 15 }
			off := s390Find(t, g, "lmg %r7,%r8", isRestore)
			return s390Patch(t, g, off, "lmg %r7,%r8", isRestore, s390Nop6(t, g))
		}, []string{CheckCalleeSaved}},
		{"wrong cookie index", "fsession_cookie", "s390x", func(t *testing.T, g *Generated) []byte {
			// oilf %r0,func_meta (llihf, oilf, stg %r0,func_meta_off
			// before the program) with the cookie index one higher
			off := label(t, g.Image, "entry:s") - 12
			isMeta := func(o *sop) bool { return o.kind == sOilf && o.r1 == 0 && o.imm>>8&0xff != 0 }
			meta := binary.BigEndian.Uint32(g.Setup.Code[off+2:])
			w := append([]byte(nil), g.Setup.Code[off:off+2]...)
			return s390Patch(t, g, off, "oilf %r0,func_meta", isMeta, binary.BigEndian.AppendUint32(w, meta+0x100))
		}, []string{CheckObservation}},
		{"missing retval store", "fsession_cookie", "s390x", func(t *testing.T, g *Generated) []byte {
			// stg %r2,retval_off(%r15) after brasl %r14,func+6
			off := label(t, g.Image, "call_orig") + 6
			isStore := func(o *sop) bool { return o.kind == sStg && o.r1 == 2 && o.b == 15 }
			return s390Patch(t, g, off, "stg %r2,retval", isStore, s390Nop6(t, g))
		}, []string{CheckRetval, CheckObservation}},
		{"misaligned call", "fsession_cookie", "s390x", func(t *testing.T, g *Generated) []byte {
			// aghi %r15,-S -> -(S+4)
			isAlloc := func(o *sop) bool { return o.kind == sAghi && o.r1 == 15 && o.imm < 0 }
			w := append([]byte(nil), g.Setup.Code[4:6]...)
			return s390Patch(t, g, 4, "aghi %r15,-S", isAlloc, binary.BigEndian.AppendUint16(w, uint16(-g.Image.FrameSize-4)))
		}, []string{CheckAlign}},
		{"tail call counter kept", "tailcall_fentry_fexit", "s390x", func(t *testing.T, g *Generated) []byte {
			// mvc tccnt_off(4,%r15),64(%r15) after the call of the
			// original function -> brcl 0: the body's counter does not go
			// back to the caller
			isCopy := func(o *sop) bool { return o.kind == sMvc && o.length == 4 && o.d2 == 64 && o.b2 == 15 }
			off := s390Find(t, g, "mvc tccnt,64(%r15)", isCopy)
			if off < label(t, g.Image, "call_orig") {
				t.Fatalf("mvc tccnt,64(%%r15) at %#x is before the call", off)
			}
			return s390Patch(t, g, off, "mvc tccnt,64(%r15)", isCopy, s390Nop6(t, g))
		}, []string{CheckTailCallCtx}},
	}
	for _, m := range ms {
		g, run := generated(t, m.caseName, m.arch)
		res, err := Check(g.Setup, g.Plan, run)
		require.NoError(t, err)
		if err := res.Err(); err != nil {
			t.Fatalf("%s %s: the unbroken image fails: %v", m.caseName, m.arch, err)
		}
		s := g.Setup
		s.Code = m.mutate(t, g)
		res, err = Check(s, g.Plan, run)
		require.NoError(t, err)
		for _, c := range m.want {
			if !res.Has(c) {
				t.Errorf("%s (%s): check %q did not fire; failed: %v", m.name, m.arch, c, res.Failed())
			}
		}
		t.Logf("%-20s %-7s caught by %v", m.name, m.arch, res.Failed())
	}
}
