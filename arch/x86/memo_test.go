package x86

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/arch/x86/x86asm"

	"github.com/bpftramp/tramp/arch/internal/recorded"
)

// direct decodes code without the memo: the reference the memo must
// agree with.
func direct(code []byte, base uint64) ([]checkInsn, error) {
	insns, err := decode(code, base, false)
	out := make([]checkInsn, 0, len(insns))
	for _, in := range insns {
		c := checkInsn{off: in.Off, len: in.Len, branch: in.Branch, target: in.Target, pcRelOff: in.pcRelOff}
		if in.Op != "ENDBR64" && in.Op != "ENDBR_POISON" {
			inst, _ := x86asm.Decode(in.Bytes, 64)
			c.op = inst.Op
		}
		if !c.branch {
			c.pcRelOff = 0
		}
		out = append(out, c)
	}
	return out, err
}

// sameDecode compares the memo's decoding of code with the direct one.
func sameDecode(t *testing.T, m *decodeMemo, code []byte, base uint64, what string) {
	t.Helper()
	want, werr := direct(code, base)
	got, gerr := m.decodeAll(code, base, nil)
	for i := range got {
		if !got[i].branch {
			got[i].pcRelOff = 0
		}
	}
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s: memo error %v, direct error %v", what, gerr, werr)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: memo decoded %d instructions, direct %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: instruction %d: memo %+v, direct %+v (% x)", what, i, got[i], want[i], code[want[i].off:want[i].off+want[i].len])
		}
	}
}

// recordedX86 yields the bytes read from real kernels' trampolines (code,
// then whatever followed it) with their addresses.
func recordedX86(t testing.TB) (codes [][]byte, bases []uint64) {
	t.Helper()
	caps, err := recorded.Captures("../../cases/testdata", "*/x86_64/*.json")
	require.NoError(t, err)
	for _, c := range caps {
		codes, bases = append(codes, c.Code), append(bases, c.Addr)
	}
	return codes, bases
}

// TestMemoAgreesOnRecordedImages: over every byte read from a real
// kernel's trampoline (the code and the bytes after it), the memoised
// decoder says what x86asm says, with the memo cold, warm, and restarting
// often.
func TestMemoAgreesOnRecordedImages(t *testing.T) {
	codes, bases := recordedX86(t)
	warm := newDecodeMemo()
	tiny := newDecodeMemo()
	tiny.limit = 7
	for i, code := range codes {
		sameDecode(t, newDecodeMemo(), code, bases[i], "cold")
		sameDecode(t, warm, code, bases[i], "warm")
		sameDecode(t, tiny, code, bases[i], "tiny")
	}
	// And at other addresses: the targets move, the entries are shared.
	for i, code := range codes {
		sameDecode(t, warm, code, bases[i]^0x5a5a000, "moved")
	}
	if len(warm.nodes) < 2 || len(tiny.nodes) > 7 {
		t.Fatalf("memo sizes: warm %d, tiny %d nodes (limit 7)", len(warm.nodes), len(tiny.nodes))
	}
	t.Logf("%d recorded byte ranges; %d distinct instructions in %d trie nodes (PC-relative fields and mov immediates skipped)", len(codes), countEnds(warm), len(warm.nodes))
}

// TestMemoMaskedFieldsStillCheck: two calls that differ only in their
// rel32 share one entry, and each gets its own target.
func TestMemoMaskedFieldsStillCheck(t *testing.T) {
	m := newDecodeMemo()
	code := []byte{0xe8, 0x10, 0, 0, 0, 0xe8, 0xf0, 0xff, 0xff, 0xff, 0xc3}
	got, err := m.decodeAll(code, 0x1000, nil)
	require.NoError(t, err)
	if got[0].target != 0x1000+5+0x10 || got[1].target != 0x1005+5-0x10 {
		t.Fatalf("targets %#x %#x", got[0].target, got[1].target)
	}
	if n := countEnds(m); n != 2 {
		t.Fatalf("%d instructions memoised, want 2 (one call, one ret)", n)
	}
}

// FuzzMemoDecode: on any bytes the memo agrees with x86asm, also after
// learning from other bytes.
func FuzzMemoDecode(f *testing.F) {
	f.Add([]byte{0xe8, 0x10, 0, 0, 0, 0xc3, 0xcc})
	f.Add([]byte{0x48, 0x8b, 0x05, 1, 2, 3, 4, 0x66, 0x48, 0x8b, 0x85, 1, 2, 3, 4})
	f.Add([]byte{0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x1f, 0x40, 0xd6, 0x74, 0x02, 0xeb, 0xfe})
	m := newDecodeMemo()
	m.limit = 512
	f.Fuzz(func(t *testing.T, b []byte) {
		sameDecode(t, m, b, 0xffffffffa0000000, "shared")
		sameDecode(t, newDecodeMemo(), b, 0xffffffffa0000000, "fresh")
		// Flip a byte of a copy and decode it with the memo that saw b.
		if len(b) > 0 {
			c := append([]byte(nil), b...)
			c[int(c[0])%len(c)] ^= 0x5b
			sameDecode(t, m, c, 0xffffffffa0000000, "flipped")
		}
	})
}

// TestMemoMovImmediates: movs of different immediates share an entry
// per form; other immediates do not.
func TestMemoMovImmediates(t *testing.T) {
	m := newDecodeMemo()
	code := []byte{
		0x48, 0xbf, 1, 2, 3, 4, 5, 6, 7, 8, // movabs rdi, ...
		0x48, 0xbf, 8, 7, 6, 5, 4, 3, 2, 1, // movabs rdi, ...
		0xbf, 1, 0, 0, 0, // mov edi, 1
		0xbf, 2, 0, 0, 0, // mov edi, 2
		0x48, 0xc7, 0xc0, 0x10, 0x00, 0xa0, 0xff, // mov rax, -0x5ffff0
		0x48, 0xc7, 0xc0, 0x20, 0x00, 0xa0, 0xff, // mov rax, -0x5fffe0
		0x48, 0xc7, 0x45, 0xf8, 1, 0, 0, 0, // mov qword [rbp-8], 1
		0x48, 0xc7, 0x45, 0xf8, 2, 0, 0, 0, // mov qword [rbp-8], 2
		0x66, 0xb8, 0x34, 0x12, // mov ax, 0x1234
		0x66, 0xb8, 0x78, 0x56, // mov ax, 0x5678
		0x48, 0x83, 0xc4, 0x08, // add rsp, 8
		0x48, 0x83, 0xc4, 0x10, // add rsp, 16
	}
	sameDecode(t, m, code, 0x1000, "mov immediates")
	if n := countEnds(m); n != 7 {
		t.Fatalf("%d instructions memoised, want 7 (one per mov form, two adds)", n)
	}
}

// countEnds counts the instructions a memo holds.
func countEnds(m *decodeMemo) int {
	c := 0
	for _, n := range m.nodes {
		if n.end {
			c++
		}
	}
	return c
}

// BenchmarkDecodeRecorded decodes every recorded byte range, through the
// memo and directly with x86asm, and reports instructions per second.
func BenchmarkDecodeRecorded(b *testing.B) {
	codes, bases := recordedX86(b)
	for _, mode := range []string{"memo", "x86asm"} {
		b.Run(mode, func(b *testing.B) {
			m := newDecodeMemo()
			n := 0
			for i := 0; i < b.N; i++ {
				k := i % len(codes)
				var insns []checkInsn
				if mode == "memo" {
					insns, _ = m.decodeAll(codes[k], bases[k], m.insns[:0])
					m.insns = insns
				} else {
					d, _ := decode(codes[k], bases[k], false)
					n += len(d)
					continue
				}
				n += len(insns)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "insns/s")
		})
	}
}
