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
// immediate of a mov (B8+r, C7 /0: any value is the same instruction) is
// skipped the same way, so that the pointers trampolines load (im, struct
// bpf_prog, the traced function) do not each take a path. Other
// immediates are part of the path. No path ends inside another: no
// instruction is a proper prefix of another.
//
// The nodes live in one pointer-free slice, which the garbage collector
// does not scan however large the memo grows.
type decodeMemo struct {
	mu     sync.Mutex
	padded []byte
	// insns, starts and relocAt are Check's scratch space (under mu).
	insns   []checkInsn
	starts  []bool
	relocAt []int32
	limit   int
	// nodes[0] is the root; index 0 elsewhere means none. The first two
	// levels, where most instructions differ, are tables: first[b0] is
	// the root's child, second[b0<<8|b1] that child's (allocated with
	// the first insert).
	nodes  []trieNode
	first  [256]int32
	second []int32
}

// trieNode is one byte position of a memoised instruction.
type trieNode struct {
	// end: an instruction ends here, decoded as entry.
	end   bool
	entry memoEntry
	// b is the byte that leads here from the parent.
	b byte
	// skip > 0: the next skip bytes are a masked field; the path goes on
	// at next whatever they hold.
	skip int8
	next int32
	// child is the first child, sibling the parent's next one (below
	// the two table levels); hasKids says a node has children in a table.
	child, sibling int32
	hasKids        bool
}

// kid is the child for byte rest[i] of node n, which rest[:i] led to,
// or 0.
func (m *decodeMemo) kid(n int32, rest []byte, i int) int32 {
	switch {
	case i == 0:
		return m.first[rest[0]]
	case i == 1 && m.second != nil:
		return m.second[int(rest[0])<<8|int(rest[1])]
	}
	b := rest[i]
	for c := m.nodes[n].child; c != 0; c = m.nodes[c].sibling {
		if m.nodes[c].b == b {
			return c
		}
	}
	return 0
}

// setKid makes k the child for byte rest[i] of node n.
func (m *decodeMemo) setKid(n int32, rest []byte, i int, k int32) {
	switch i {
	case 0:
		m.first[rest[0]] = k
	case 1:
		m.nodes[n].hasKids = true
		if m.second == nil {
			m.second = make([]int32, 1<<16)
		}
		m.second[int(rest[0])<<8|int(rest[1])] = k
	default:
		m.nodes[k].sibling = m.nodes[n].child
		m.nodes[n].child = k
	}
}

// add appends a node and returns its index.
func (m *decodeMemo) add(t trieNode) int32 {
	m.nodes = append(m.nodes, t)
	return int32(len(m.nodes) - 1)
}

var checkMemo = newDecodeMemo()

func newDecodeMemo() *decodeMemo {
	return &decodeMemo{limit: memoLimit, nodes: make([]trieNode, 1, 1024)}
}

// lookup finds the instruction at the start of rest (padded: at least
// maxInsnLen bytes).
func (m *decodeMemo) lookup(rest []byte) (memoEntry, bool) {
	n := int32(0)
	for i := 0; i <= maxInsnLen; {
		t := &m.nodes[n]
		switch {
		case t.end:
			return t.entry, true
		case t.skip > 0:
			i += int(t.skip)
			n = t.next
		default:
			if n = m.kid(n, rest, i); n == 0 {
				return memoEntry{}, false
			}
			i++
		}
	}
	return memoEntry{}, false
}

// insert remembers e for the instruction at the start of rest. A path
// that disagrees with what is there (which a correct decoder never
// produces) is left out.
func (m *decodeMemo) insert(rest []byte, e memoEntry) {
	if len(m.nodes) >= m.limit {
		m.nodes = m.nodes[:1]
		m.nodes[0] = trieNode{}
		clear(m.first[:])
		clear(m.second)
	}
	n := int32(0)
	for i := 0; i < int(e.len); {
		t := m.nodes[n]
		if t.end {
			return
		}
		if e.pcRel > 0 && i == int(e.pcRelOff) {
			if m.hasKids(n) || (t.skip > 0 && t.skip != e.pcRel) {
				return
			}
			if t.skip == 0 {
				next := m.add(trieNode{})
				m.nodes[n].skip, m.nodes[n].next = e.pcRel, next
			}
			i += int(e.pcRel)
			n = m.nodes[n].next
			continue
		}
		if t.skip > 0 {
			return
		}
		k := m.kid(n, rest, i)
		if k == 0 {
			k = m.add(trieNode{b: rest[i]})
			m.setKid(n, rest, i, k)
		}
		n = k
		i++
	}
	if t := m.nodes[n]; t.skip > 0 || m.hasKids(n) {
		return
	}
	m.nodes[n].end, m.nodes[n].entry = true, e
}

// hasKids: node n has children (which an end or a skip node must not
// have).
func (m *decodeMemo) hasKids(n int32) bool {
	return m.nodes[n].child != 0 || m.nodes[n].hasKids
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
	case inst.Op == x86asm.MOV && inst.Opcode>>24 >= 0xb8 && inst.Opcode>>24 <= 0xbf:
		// mov r, imm (B8+r): the immediate, operand-sized (imm64 with
		// REX.W), is the last bytes; any value is the same instruction.
		// Masked like a PC-relative field, not a branch.
		n := int8(inst.DataSize / 8)
		e.pcRelOff, e.pcRel = int8(inst.Len)-n, n
	case inst.Op == x86asm.MOV && inst.Opcode>>24 == 0xc7:
		// mov r/m, imm (C7 /0): imm16, or imm32 (sign-extended with
		// REX.W), after ModRM, SIB and displacement: the last bytes.
		n := int8(min(inst.DataSize/8, 4))
		e.pcRelOff, e.pcRel = int8(inst.Len)-n, n
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
