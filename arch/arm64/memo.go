package arm64

import (
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/arch/arm64/arm64asm"
)

// checkInsn is what Check needs to know of one instruction.
type checkInsn struct {
	off  int
	word uint32
	op   arm64asm.Op
	// pcRel: a PC-relative target (b, bl, b.cond, cbz, adr, ...).
	pcRel  bool
	target uint64
}

// memoEntry is a decoded word, minus its masked field.
type memoEntry struct {
	op    arm64asm.Op
	pcRel bool
	rel   int64
}

// memoLimit bounds the memo; past it the memo starts over.
const memoLimit = 1 << 16

// Word families whose immediate field is masked out of the memo key: the
// field's value never makes the word invalid or another instruction.
const (
	moveWideMask  = 0x1f800000 // movn/movz/movk: imm16 in bits 5..20
	moveWideMatch = 0x12800000
	imm16Field    = 0xffff << 5
	branchMask    = 0x7c000000 // b/bl: imm26 in bits 0..25
	branchMatch   = 0x14000000
	imm26Field    = 1<<26 - 1
)

// memoKey masks a word's field for the memo; branch says it is a b/bl,
// whose target the memo computes from imm26.
func memoKey(w uint32) (key uint32, branch bool) {
	switch {
	case w&moveWideMask == moveWideMatch:
		return w &^ imm16Field, false
	case w&branchMask == branchMatch:
		return w &^ imm26Field, true
	}
	return w, false
}

// decodeMemo remembers what golang.org/x/arch decoded, so that checking
// many trampolines decodes each distinct word once (arm64asm searches its
// whole format table per word). A word decodes alone; the move-wide
// immediate (the pointers and addresses trampolines build 16 bits at a
// time) and the b/bl offset are masked out of the key, since no value of
// them changes what the word is, and b/bl targets are computed from
// imm26.
type decodeMemo struct {
	mu sync.Mutex
	// insns, relocAt and endsAt are Check's scratch space (under mu).
	insns           []checkInsn
	relocAt, endsAt []int32
	limit           int
	entries         map[uint32]memoEntry
}

var checkMemo = &decodeMemo{limit: memoLimit, entries: map[uint32]memoEntry{}}

func newDecodeMemo() *decodeMemo {
	return &decodeMemo{limit: memoLimit, entries: map[uint32]memoEntry{}}
}

// decodeAll decodes code for Check.
func (m *decodeMemo) decodeAll(code []byte, base uint64, out []checkInsn) ([]checkInsn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decodeLocked(code, base, out)
}

// decodeLocked is decodeAll with m.mu held.
func (m *decodeMemo) decodeLocked(code []byte, base uint64, out []checkInsn) ([]checkInsn, error) {
	for off := 0; off+4 <= len(code); off += 4 {
		w := binary.LittleEndian.Uint32(code[off:])
		key, branch := memoKey(w)
		e, ok := m.entries[key]
		if !ok {
			inst, err := arm64asm.Decode(code[off : off+4])
			if err != nil {
				return out, fmt.Errorf("offset %#x: cannot decode %08x: %v", off, w, err)
			}
			e = memoEntry{op: inst.Op}
			for _, a := range inst.Args {
				if r, ok := a.(arm64asm.PCRel); ok {
					e.pcRel, e.rel = true, int64(r)
				}
			}
			if len(m.entries) >= m.limit {
				clear(m.entries)
			}
			m.entries[key] = e
		}
		pc := base + uint64(off)
		in := checkInsn{off: off, word: w, op: e.op, pcRel: e.pcRel}
		if e.pcRel {
			in.target = pc + uint64(e.rel)
		}
		if branch {
			in.target = pc + uint64(int64(int32(w<<6)>>6)*4)
		}
		out = append(out, in)
	}
	if len(code)%4 != 0 {
		return out, fmt.Errorf("offset %#x: %d trailing bytes, not a whole instruction", len(code)&^3, len(code)%4)
	}
	return out, nil
}
