package x86

import (
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/arch/x86/x86asm"
)

// checkInsn is what Check needs to know of one instruction.
type checkInsn struct {
	off, len int
	op       x86asm.Op
	// branch: a relative jmp, jcc or call, going to target.
	branch   bool
	target   uint64
	pcRelOff int
}

// memoEntry is a decoded instruction, minus the value of its masked field
// (pcRelOff, pcRel: where it is and how long).
type memoEntry struct {
	len      int8
	pcRelOff int8
	pcRel    int8
	branch   bool
	op       x86asm.Op
}

// memoLimit bounds the memo's nodes; past it the memo starts over.
const memoLimit = 1 << 17

// decodeMemo remembers what golang.org/x/arch decoded, so that checking
// many trampolines decodes each distinct instruction once.
//
// It is a trie over instruction bytes. An x86 decode depends only on the
// instruction's own bytes, read in order; where a field sits (a
// displacement, an immediate) follows from the bytes before it, and the
// value of a PC-relative field never changes an instruction's length or
// meaning. So a path through the trie is an instruction's bytes, with a
// skip node standing for its PC-relative field, and its end holds the
// decode; a branch target is computed from the field x86asm located. The
// 64-bit immediate of movabs is skipped the same way (any value is the
// same instruction). Other immediates are part of the path. No path ends
// inside another: no instruction is a proper prefix of another.
type decodeMemo struct {
	mu     sync.Mutex
	padded []byte
	// insns, starts and relocAt are Check's scratch space (under mu).
	insns   []checkInsn
	starts  []bool
	relocAt []int32
	limit   int
	nodes   int
	root    *trieNode
}

// trieNode is one byte position of a memoised instruction.
type trieNode struct {
	// end: an instruction ends here, decoded as entry.
	end   bool
	entry memoEntry
	// skip > 0: the next skip bytes are a masked field; the path goes on
	// at next whatever they hold.
	skip int
	next *trieNode
	// keys[i] leads to kids[i].
	keys []byte
	kids []*trieNode
}

func (n *trieNode) kid(b byte) *trieNode {
	for i, k := range n.keys {
		if k == b {
			return n.kids[i]
		}
	}
	return nil
}

var checkMemo = newDecodeMemo()

func newDecodeMemo() *decodeMemo {
	return &decodeMemo{limit: memoLimit, root: &trieNode{}}
}

// lookup finds the instruction at the start of rest (padded: at least
// maxInsnLen bytes).
func (m *decodeMemo) lookup(rest []byte) (memoEntry, bool) {
	n := m.root
	for i := 0; n != nil && i <= maxInsnLen; {
		switch {
		case n.end:
			return n.entry, true
		case n.skip > 0:
			i += n.skip
			n = n.next
		default:
			n = n.kid(rest[i])
			i++
		}
	}
	return memoEntry{}, false
}

// insert remembers e for the instruction at the start of rest. A path
// that disagrees with what is there (which a correct decoder never
// produces) is left out.
func (m *decodeMemo) insert(rest []byte, e memoEntry) {
	if m.nodes >= m.limit {
		m.root, m.nodes = &trieNode{}, 0
	}
	n := m.root
	for i := 0; i < int(e.len); {
		if n.end {
			return
		}
		if e.pcRel > 0 && i == int(e.pcRelOff) {
			if len(n.keys) > 0 || (n.skip > 0 && n.skip != int(e.pcRel)) {
				return
			}
			if n.skip == 0 {
				n.skip, n.next = int(e.pcRel), &trieNode{}
				m.nodes++
			}
			i += n.skip
			n = n.next
			continue
		}
		if n.skip > 0 {
			return
		}
		k := n.kid(rest[i])
		if k == nil {
			k = &trieNode{}
			m.nodes++
			n.keys, n.kids = append(n.keys, rest[i]), append(n.kids, k)
		}
		n = k
		i++
	}
	if n.skip > 0 || len(n.keys) > 0 {
		return
	}
	n.end, n.entry = true, e
}

// decodeAll decodes code for Check (ENDBR64 and its poison included).
func (m *decodeMemo) decodeAll(code []byte, base uint64, out []checkInsn) ([]checkInsn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decodeLocked(code, base, out)
}

// decodeLocked is decodeAll with m.mu held.
func (m *decodeMemo) decodeLocked(code []byte, base uint64, out []checkInsn) ([]checkInsn, error) {
	m.padded = pad(m.padded, code)
	for off := 0; off < len(code); {
		rest := m.padded[off:]
		if string(rest[:4]) == string(endbr64) || string(rest[:4]) == string(endbrPoison) {
			out = append(out, checkInsn{off: off, len: 4})
			off += 4
			continue
		}
		e, found := m.lookup(rest)
		if !found {
			var err error
			if e, err = learn(rest); err != nil {
				return out, fmt.Errorf("offset %#x: cannot decode % x: %v", off, code[off:min(len(code), off+8)], err)
			}
			m.insert(rest, e)
		}
		if off+int(e.len) > len(code) {
			return out, errTruncated(off, code)
		}
		in := checkInsn{off: off, len: int(e.len), op: e.op, branch: e.branch, pcRelOff: int(e.pcRelOff)}
		if e.branch {
			var rel int64
			f := rest[e.pcRelOff:]
			switch e.pcRel {
			case 1:
				rel = int64(int8(f[0]))
			case 2:
				rel = int64(int16(binary.LittleEndian.Uint16(f)))
			case 4:
				rel = int64(int32(binary.LittleEndian.Uint32(f)))
			}
			in.target = base + uint64(off) + uint64(e.len) + uint64(rel)
		}
		out = append(out, in)
		off += int(e.len)
	}
	return out, nil
}

// learn decodes with x86asm.
func learn(rest []byte) (memoEntry, error) {
	inst, err := decodeInst(rest)
	if err != nil {
		return memoEntry{}, err
	}
	e := memoEntry{len: int8(inst.Len), op: inst.Op}
	switch {
	case inst.PCRel > 0:
		e.pcRelOff, e.pcRel = int8(inst.PCRelOff), int8(inst.PCRel)
		e.branch = isRelBranch(inst)
	case inst.Op == x86asm.MOV && inst.DataSize == 64 && inst.Opcode>>24 >= 0xb8 && inst.Opcode>>24 <= 0xbf:
		// movabs r64, imm64 (REX.W B8+r): the immediate is the last
		// eight bytes, and any value is the same instruction. Masked
		// like a PC-relative field (not a branch), so that the pointers
		// trampolines load (im, struct bpf_prog, the IP argument) do not
		// each take a path.
		e.pcRelOff, e.pcRel = int8(inst.Len-8), 8
	}
	return e, nil
}

// isRelBranch: a jmp, jcc or call with a relative target.
func isRelBranch(inst x86asm.Inst) bool {
	switch inst.Op {
	case x86asm.CALL, x86asm.JMP, x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JNE,
		x86asm.JG, x86asm.JGE, x86asm.JL, x86asm.JLE, x86asm.JO, x86asm.JNO, x86asm.JP, x86asm.JNP, x86asm.JS, x86asm.JNS,
		x86asm.JCXZ, x86asm.JECXZ, x86asm.JRCXZ, x86asm.LOOP, x86asm.LOOPE, x86asm.LOOPNE:
		_, ok := inst.Args[0].(x86asm.Rel)
		return ok
	}
	return false
}
