package x86

import (
	"bytes"
	"encoding/binary"
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
// out (the memo tests use that as their reference).
func decode(code []byte, base uint64, withText bool) ([]Insn, error) {
	out := make([]Insn, 0, len(code)/4)
	padded := pad(nil, code)
	for off := 0; off < len(code); {
		rest := padded[off:]
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
		inst, err := decodeInst(rest)
		if err != nil {
			return out, fmt.Errorf("offset %#x: cannot decode % x: %v", off, code[off:min(len(code), off+8)], err)
		}
		if off+inst.Len > len(code) {
			return out, errTruncated(off, code)
		}
		rest = code[off:]
		in := Insn{Off: off, Len: inst.Len, Bytes: rest[:inst.Len], Op: inst.Op.String(), pcRelOff: inst.PCRelOff}
		pc := base + uint64(off)
		if inst.PCRel > 0 && isRelBranch(inst) {
			in.Branch = true
			in.Target = pc + uint64(inst.Len) + uint64(int64(inst.Args[0].(x86asm.Rel)))
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

// pad appends code and maxInsnLen int3 bytes to buf. x86asm misreads
// an instruction cut short by the end of its input (a VEX instruction
// without its ModRM decodes, with a shorter length); decoding the padded
// code, an instruction that runs into the padding is truncated, and its
// length does not depend on where the input ends.
func pad(buf, code []byte) []byte {
	buf = append(buf[:0], code...)
	for range maxInsnLen {
		buf = append(buf, 0xcc)
	}
	return buf
}

// maxInsnLen is the longest x86 instruction.
const maxInsnLen = 15

func errTruncated(off int, code []byte) error {
	return fmt.Errorf("offset %#x: % x is an instruction cut short by the end of the code", off, code[off:])
}

// decodeInst is x86asm.Decode in 64-bit mode, except that what it reads
// as a bare prefix with no instruction (its answer for bytes cut short,
// Op 0) is an error.
func decodeInst(b []byte) (x86asm.Inst, error) {
	inst, err := x86asm.Decode(b, 64)
	if err == nil && inst.Op == 0 {
		err = fmt.Errorf("truncated or invalid instruction")
	}
	return inst, err
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
	m := checkMemo
	m.mu.Lock()
	defer m.mu.Unlock()
	insns, err := m.decodeLocked(im.Code, base, m.insns[:0])
	m.insns = insns
	if err != nil {
		return err
	}
	text := func(in checkInsn) string {
		full, err := decode(im.Code[in.off:in.off+in.len], base+uint64(in.off), true)
		if err != nil || len(full) == 0 {
			return fmt.Sprintf("% x", im.Code[in.off:in.off+in.len])
		}
		return full[0].Text
	}
	starts := m.starts[:0]
	starts = append(starts, make([]bool, len(im.Code))...)
	m.starts = starts
	// relocAt[off]-1 is the relocation whose field starts at off.
	relocAt := append(m.relocAt[:0], make([]int32, len(im.Code))...)
	m.relocAt = relocAt
	for k, r := range im.Relocs {
		if r.Off >= 0 && r.Off < len(relocAt) {
			relocAt[r.Off] = int32(k + 1)
		}
	}
	relocStartingAt := func(off int) (arch.Reloc, bool) {
		if off < 0 || off >= len(relocAt) || relocAt[off] == 0 {
			return arch.Reloc{}, false
		}
		return im.Relocs[relocAt[off]-1], true
	}
	end := 0
	for _, in := range insns {
		starts[in.off] = true
		end = in.off + in.len
	}
	if end != len(im.Code) {
		return fmt.Errorf("instructions end at %#x, code is %#x bytes", end, len(im.Code))
	}
	for _, in := range insns {
		if !in.branch {
			continue
		}
		if in.target >= base && in.target < base+uint64(len(im.Code)) {
			if !starts[int(in.target-base)] {
				return fmt.Errorf("offset %#x: %s lands at %#x, inside an instruction", in.off, text(in), in.target-base)
			}
			continue
		}
		r, ok := relocStartingAt(in.off + in.pcRelOff)
		if !ok || r.Len != 4 {
			return fmt.Errorf("offset %#x: %s leaves the image without a relocation", in.off, text(in))
		}
		if got, want := in.target, r.Value; got != want {
			return fmt.Errorf("offset %#x: %s goes to %#x, its relocation %s says %#x", in.off, text(in), got, r.Sym, want)
		}
	}
	// Call-depth accounting: with it the image starts with the template and
	// every template's disp32 goes through a relocation to the per-CPU
	// counter; without it there is none.
	isTemplate := func(in checkInsn) bool {
		b := im.Code[in.off : in.off+in.len]
		return in.len == CallThunkLen && bytes.HasPrefix(b, []byte{0x65, 0x48, 0xc1, 0x3d}) && b[8] == 0x05
	}
	if feat.CallDepth && (len(insns) == 0 || !isTemplate(insns[0])) {
		return fmt.Errorf("call-depth accounting is on but the image does not start with its template")
	}
	for _, in := range insns {
		if !isTemplate(in) {
			continue
		}
		if !feat.CallDepth {
			return fmt.Errorf("offset %#x: call-depth accounting template, but the features have none", in.off)
		}
		r, ok := relocStartingAt(in.off + 4)
		if !ok || r.Kind != arch.RelRIP32Imm8 || r.Len != 4 || r.Sym != CallDepthVar {
			return fmt.Errorf("offset %#x: call-depth template without a %s relocation to %s", in.off, arch.RelRIP32Imm8, CallDepthVar)
		}
		disp := int32(binary.LittleEndian.Uint32(im.Code[in.off+4:]))
		if got := base + uint64(in.off+in.len) + uint64(int64(disp)); got != r.Value {
			return fmt.Errorf("offset %#x: call-depth template reaches %#x, its relocation says %#x", in.off, got, r.Value)
		}
	}
	n := len(insns)
	if n == 0 {
		return fmt.Errorf("empty image")
	}
	last := insns[n-1]
	bad := func() error {
		return fmt.Errorf("code ends with %q at %#x, not the expected return sequence", text(last), last.off)
	}
	switch ret {
	case RetPlain:
		if last.op != x86asm.RET || last.len != 1 {
			return bad()
		}
	case RetSLS:
		if n < 2 || insns[n-2].op != x86asm.RET || insns[n-2].len != 1 || im.Code[last.off] != 0xcc {
			return bad()
		}
	case RetThunk:
		if last.op != x86asm.JMP || last.len != 5 {
			return bad()
		}
		want := feat.ReturnThunk
		if want == "" {
			want = ThunkGeneric
		}
		if r, ok := relocStartingAt(last.off + 1); !ok || r.Sym != want || r.Kind != arch.RelJump32 {
			got := "no relocation"
			if ok {
				got = "a relocation to " + r.Sym
			}
			return fmt.Errorf("final jmp at %#x has %s, not the return thunk %s", last.off, got, want)
		}
	}
	return nil
}
