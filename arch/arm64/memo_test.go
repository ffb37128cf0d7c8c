package arm64

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/arch/arm64/arm64asm"

	"github.com/bpftramp/tramp/arch/internal/recorded"
)

// sameClass is what Check relies on: the word decodes or not, is a bl or
// a blr or neither, and its PC-relative target. (The mnemonic of a masked
// move-wide word may differ: arm64asm names some values MOV.)
type sameClass struct {
	bl, blr, pcRel bool
	target         uint64
}

func classOf(op arm64asm.Op, pcRel bool, target uint64) sameClass {
	return sameClass{bl: op == arm64asm.BL, blr: op == arm64asm.BLR, pcRel: pcRel, target: target}
}

// sameDecode compares the memo with arm64asm on every word of code.
func sameDecode(t *testing.T, m *decodeMemo, code []byte, base uint64, what string) {
	t.Helper()
	code = code[:len(code)&^3]
	for off := 0; off < len(code); off += 4 {
		w := code[off : off+4]
		inst, derr := arm64asm.Decode(w)
		got, merr := m.decodeAll(w, base+uint64(off), nil)
		if (derr == nil) != (merr == nil) {
			t.Fatalf("%s: word %08x: memo error %v, arm64asm error %v", what, binary.LittleEndian.Uint32(w), merr, derr)
		}
		if derr != nil {
			continue
		}
		want := classOf(inst.Op, false, 0)
		for _, a := range inst.Args {
			if r, ok := a.(arm64asm.PCRel); ok {
				want.pcRel, want.target = true, base+uint64(off)+uint64(int64(r))
			}
		}
		g := got[0]
		if c := classOf(g.op, g.pcRel, g.target); c != want {
			t.Fatalf("%s: word %08x: memo %+v, arm64asm %+v (%v)", what, g.word, c, want, inst)
		}
		if g.op != inst.Op && binary.LittleEndian.Uint32(w)&moveWideMask != moveWideMatch {
			t.Fatalf("%s: word %08x: memo says %v, arm64asm %v", what, g.word, g.op, inst.Op)
		}
	}
}

// TestMemoAgreesOnRecordedImages: on every word read from a real kernel's
// trampoline (the code and the brk/other words after it), cold, warm,
// restarting often, and at other addresses.
func TestMemoAgreesOnRecordedImages(t *testing.T) {
	caps, err := recorded.Captures("../../cases/testdata", "*/arm64/*.json")
	require.NoError(t, err)
	warm, tiny := newDecodeMemo(), newDecodeMemo()
	tiny.limit = 5
	words := 0
	for _, c := range caps {
		words += len(c.Code) / 4
		sameDecode(t, warm, c.Code, c.Addr, c.File)
		sameDecode(t, tiny, c.Code, c.Addr^0x40000000, c.File+" (moved, tiny memo)")
	}
	if len(tiny.entries) > 5 {
		t.Fatalf("tiny memo holds %d entries, limit 5", len(tiny.entries))
	}
	t.Logf("%d words; %d distinct (immediates masked)", words, len(warm.entries))
}

// TestMemoMasks: a movk and a bl with different immediates share an entry
// and keep their own values where Check reads them.
func TestMemoMasks(t *testing.T) {
	m := newDecodeMemo()
	var code []byte
	for _, w := range []uint32{0xf2a00020, 0xf2a1fe20, 0x94000010, 0x97fffff0} { // movk x0,#1,lsl 16; movk x0,#0xff1,lsl 16; bl +0x40; bl -0x40
		code = binary.LittleEndian.AppendUint32(code, w)
	}
	got, err := m.decodeAll(code, 0x1000, nil)
	require.NoError(t, err)
	if len(m.entries) != 2 {
		t.Fatalf("%d entries, want 2", len(m.entries))
	}
	if got[2].target != 0x1008+0x40 || got[3].target != 0x100c-0x40 || got[1].word != 0xf2a1fe20 {
		t.Fatalf("decoded %+v", got)
	}
	sameDecode(t, m, code, 0x1000, "masks")
}

// FuzzMemoDecode: on any words, the memo agrees with arm64asm, also when
// it learnt from others first.
func FuzzMemoDecode(f *testing.F) {
	f.Add([]byte{0x20, 0x00, 0xa0, 0xf2, 0x10, 0, 0, 0x94, 0xe0, 0x03, 0x1f, 0xaa})
	f.Add([]byte{0x00, 0x00, 0x80, 0x12, 0x00, 0x00, 0x80, 0x52, 0xff, 0xff, 0xff, 0x17})
	m := newDecodeMemo()
	m.limit = 1024
	f.Fuzz(func(t *testing.T, b []byte) {
		sameDecode(t, m, b, 0xffff800082c00000, "shared")
		sameDecode(t, newDecodeMemo(), b, 0xffff800082c00000, "fresh")
	})
}

// BenchmarkDecodeRecorded decodes the words of recorded images, through
// the memo and directly with arm64asm, and reports words per second.
func BenchmarkDecodeRecorded(b *testing.B) {
	caps, err := recorded.Captures("../../cases/testdata", "debian-7.2.13/arm64/*.json")
	if err != nil {
		b.Fatal(err)
	}
	var codes [][]byte
	var bases []uint64
	for _, c := range caps {
		if len(c.Code) >= 4 {
			codes, bases = append(codes, c.Code[:len(c.Code)&^3]), append(bases, c.Addr)
		}
	}
	for _, mode := range []string{"memo", "arm64asm"} {
		b.Run(mode, func(b *testing.B) {
			m := newDecodeMemo()
			n := 0
			for i := 0; i < b.N; i++ {
				k := i % len(codes)
				if mode == "memo" {
					m.insns, _ = m.decodeAll(codes[k], bases[k], m.insns[:0])
				} else {
					m.insns, _ = directWords(codes[k], bases[k], m.insns[:0])
				}
				n += len(m.insns)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "words/s")
		})
	}
}

// directWords decodes every word with arm64asm, no memo.
func directWords(code []byte, base uint64, out []checkInsn) ([]checkInsn, error) {
	for off := 0; off+4 <= len(code); off += 4 {
		inst, err := arm64asm.Decode(code[off : off+4])
		if err != nil {
			return out, err
		}
		out = append(out, checkInsn{off: off, op: inst.Op})
	}
	return out, nil
}
