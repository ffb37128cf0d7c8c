package x86

import (
	"bytes"
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"github.com/bpftramp/tramp/arch"
)

// Insn is one decoded instruction of an image.
type Insn struct {
	Off   int
	Len   int
	Bytes []byte
	// Text is the instruction in Intel syntax (targets as image offsets
	// or absolute addresses).
	Text string
	// Op is the mnemonic ("ENDBR64" and "ENDBR_POISON" for the two forms
	// x86asm does not name).
	Op string
	// Branch: a relative jmp, jcc or call; Target is its absolute
	// destination (image base + offset for internal ones).
	Branch bool
	Target uint64
	// pcRelOff is where the rel field starts within the instruction.
	pcRelOff int
	// inst is the decoded instruction (kept only with text).
	inst *x86asm.Inst
}

var (
	endbr64     = []byte{0xf3, 0x0f, 0x1e, 0xfa}
	endbrPoison = []byte{0x0f, 0x1f, 0x40, 0xd6}
)

// Decode splits code into instructions with golang.org/x/arch. It closes
// the decoder's gap for ENDBR64 (f3 0f 1e fa, which x86asm reads as a
// one-byte rep prefix) and names the kernel's sealed-ENDBR poison. An
// undecodable byte stops it with an error naming the offset.
func Decode(code []byte, base uint64) ([]Insn, error) { return decode(code, base, true) }

// decode is Decode; without withText the (costly) Intel syntax is left
// out, and Check formats it only for the instruction it complains about.
func decode(code []byte, base uint64, withText bool) ([]Insn, error) {
	out := make([]Insn, 0, len(code)/4)
	for off := 0; off < len(code); {
		rest := code[off:]
		switch {
		case bytes.HasPrefix(rest, endbr64):
			out = append(out, Insn{Off: off, Len: 4, Bytes: rest[:4], Text: "endbr64", Op: "ENDBR64"})
			off += 4
			continue
		case bytes.HasPrefix(rest, endbrPoison):
			out = append(out, Insn{Off: off, Len: 4, Bytes: rest[:4], Text: "nop dword ptr [rax-0x2a] (endbr poison)", Op: "ENDBR_POISON"})
			off += 4
			continue
		}
		inst, err := x86asm.Decode(rest, 64)
		if err != nil {
			return out, fmt.Errorf("offset %#x: cannot decode % x: %v", off, rest[:min(len(rest), 8)], err)
		}
		in := Insn{Off: off, Len: inst.Len, Bytes: rest[:inst.Len], Op: inst.Op.String(), pcRelOff: inst.PCRelOff}
		pc := base + uint64(off)
		if inst.PCRel > 0 {
			switch inst.Op {
			case x86asm.CALL, x86asm.JMP, x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JNE,
				x86asm.JG, x86asm.JGE, x86asm.JL, x86asm.JLE, x86asm.JO, x86asm.JNO, x86asm.JP, x86asm.JNP, x86asm.JS, x86asm.JNS:
				if rel, ok := inst.Args[0].(x86asm.Rel); ok {
					in.Branch = true
					in.Target = pc + uint64(inst.Len) + uint64(int64(rel))
				}
			}
		}
		if withText {
			in.Text = x86asm.IntelSyntax(inst, pc, nil)
			kept := inst
			in.inst = &kept
		}
		out = append(out, in)
		off += inst.Len
	}
	return out, nil
}

// ReturnSequence is what the profile's return looks like.
type ReturnSequence int

// Return sequences.
const (
	RetPlain ReturnSequence = iota // c3
	RetSLS                         // c3 cc
	RetThunk                       // e9 rel32 (to x86_return_thunk)
)

// ReturnOf gives the return sequence the features produce.
func ReturnOf(f Features) ReturnSequence {
	switch {
	case f.Rethunk:
		return RetThunk
	case f.SLS:
		return RetSLS
	}
	return RetPlain
}

// Check verifies an image's structure: instructions tile the code exactly,
// every internal branch lands on an instruction start, every branch that
// leaves the image goes through a relocation at its rel32 field, and the
// code ends with the return sequence the features produce (with a return
// thunk: a jmp whose relocation names feat.ReturnThunk).
func Check(im *arch.Image, base uint64, feat Features) error {
	ret := ReturnOf(feat)
	insns, err := decode(im.Code, base, false)
	if err != nil {
		return err
	}
	text := func(in Insn) string {
		if in.Text != "" {
			return in.Text
		}
		full, err := decode(in.Bytes, base+uint64(in.Off), true)
		if err != nil || len(full) == 0 {
			return fmt.Sprintf("% x", in.Bytes)
		}
		return full[0].Text
	}
	starts := make([]bool, len(im.Code))
	end := 0
	for _, in := range insns {
		starts[in.Off] = true
		end = in.Off + in.Len
	}
	if end != len(im.Code) {
		return fmt.Errorf("instructions end at %#x, code is %#x bytes", end, len(im.Code))
	}
	relocs := make(map[int]arch.Reloc, len(im.Relocs))
	for _, r := range im.Relocs {
		relocs[r.Off] = r
	}
	for _, in := range insns {
		if !in.Branch {
			continue
		}
		if in.Target >= base && in.Target < base+uint64(len(im.Code)) {
			if !starts[int(in.Target-base)] {
				return fmt.Errorf("offset %#x: %s lands at %#x, inside an instruction", in.Off, text(in), in.Target-base)
			}
			continue
		}
		field := in.Off + in.pcRelOff
		r, ok := relocs[field]
		if !ok || r.Len != 4 {
			return fmt.Errorf("offset %#x: %s leaves the image without a relocation", in.Off, text(in))
		}
		want := r.Value
		if got := in.Target; got != want {
			return fmt.Errorf("offset %#x: %s goes to %#x, its relocation %s says %#x", in.Off, text(in), got, r.Sym, want)
		}
	}
	// Call-depth accounting: with it the image starts with the template and
	// every template's disp32 goes through a relocation to the per-CPU
	// counter; without it there is none.
	isTemplate := func(in Insn) bool {
		return in.Len == CallThunkLen && bytes.HasPrefix(in.Bytes, []byte{0x65, 0x48, 0xc1, 0x3d}) && in.Bytes[8] == 0x05
	}
	if feat.CallDepth && (len(insns) == 0 || !isTemplate(insns[0])) {
		return fmt.Errorf("call-depth accounting is on but the image does not start with its template")
	}
	for _, in := range insns {
		if !isTemplate(in) {
			continue
		}
		if !feat.CallDepth {
			return fmt.Errorf("offset %#x: call-depth accounting template, but the features have none", in.Off)
		}
		r, ok := relocs[in.Off+4]
		if !ok || r.Kind != arch.RelRIP32Imm8 || r.Len != 4 || r.Sym != CallDepthVar {
			return fmt.Errorf("offset %#x: call-depth template without a %s relocation to %s", in.Off, arch.RelRIP32Imm8, CallDepthVar)
		}
		disp := int32(uint32(in.Bytes[4]) | uint32(in.Bytes[5])<<8 | uint32(in.Bytes[6])<<16 | uint32(in.Bytes[7])<<24)
		if got := base + uint64(in.Off+in.Len) + uint64(int64(disp)); got != r.Value {
			return fmt.Errorf("offset %#x: call-depth template reaches %#x, its relocation says %#x", in.Off, got, r.Value)
		}
	}
	n := len(insns)
	bad := func() error {
		last := insns[n-1]
		return fmt.Errorf("code ends with %q at %#x, not the expected return sequence", text(last), last.Off)
	}
	if n == 0 {
		return fmt.Errorf("empty image")
	}
	switch ret {
	case RetPlain:
		if insns[n-1].Op != "RET" {
			return bad()
		}
	case RetSLS:
		if n < 2 || insns[n-2].Op != "RET" || insns[n-1].Op != "INT" || insns[n-1].Bytes[0] != 0xcc {
			return bad()
		}
	case RetThunk:
		last := insns[n-1]
		if last.Op != "JMP" || last.Len != 5 {
			return bad()
		}
		want := feat.ReturnThunk
		if want == "" {
			want = ThunkGeneric
		}
		if r, ok := im.RelocAt(last.Off + 1); !ok || r.Sym != want || r.Kind != arch.RelJump32 {
			got := "no relocation"
			if ok {
				got = "a relocation to " + r.Sym
			}
			return fmt.Errorf("final jmp at %#x has %s, not the return thunk %s", last.Off, got, want)
		}
	}
	return nil
}
