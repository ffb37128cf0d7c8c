package arm64

import (
	"encoding/binary"
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/arch/arm64/arm64asm"
)

// decodedValue decodes words with arm64asm and runs them as a move-wide
// sequence from the decoded operands alone (MOV aliases carry the whole
// value, MOVK an immediate and shift), independently of the encoders.
func decodedValue(t *testing.T, ws []uint32) (reg string, v uint64) {
	t.Helper()
	for i, w := range ws {
		b := binary.LittleEndian.AppendUint32(nil, w)
		in, err := arm64asm.Decode(b)
		if err != nil {
			t.Fatalf("word %d %08x: %v", i, w, err)
		}
		r, ok := in.Args[0].(arm64asm.Reg)
		if !ok {
			t.Fatalf("word %d: %v has no register destination", i, in)
		}
		if reg != "" && r.String() != reg {
			t.Fatalf("word %d writes %v, sequence builds %s", i, r, reg)
		}
		reg = r.String()
		switch in.Op {
		case arm64asm.MOV:
			switch a := in.Args[1].(type) {
			case arm64asm.Imm64:
				v = a.Imm
			case arm64asm.Imm:
				v = uint64(a.Imm)
			default:
				t.Fatalf("word %d: %v: operand %T", i, in, a)
			}
			if i != 0 {
				t.Fatalf("word %d: %v restarts the value", i, in)
			}
		case arm64asm.MOVK, arm64asm.MOVN, arm64asm.MOVZ:
			// "#0x4b3, LSL #16" or "#0x4b3"
			s := in.Args[1].String()
			parts := strings.Split(strings.TrimPrefix(s, "#"), ", LSL #")
			imm, err1 := strconv.ParseUint(parts[0], 0, 16)
			shift := uint64(0)
			var err2 error
			if len(parts) == 2 {
				shift, err2 = strconv.ParseUint(parts[1], 10, 8)
			}
			if err1 != nil || err2 != nil {
				t.Fatalf("word %d: cannot read %q", i, s)
			}
			switch in.Op {
			case arm64asm.MOVK:
				v = v&^(0xffff<<shift) | imm<<shift
			case arm64asm.MOVN:
				v = ^(imm << shift)
			default:
				v = imm << shift
			}
			if in.Op != arm64asm.MOVK && i != 0 {
				t.Fatalf("word %d: %v restarts the value", i, in)
			}
		default:
			t.Fatalf("word %d: %v is not a move", i, in)
		}
		if strings.HasPrefix(reg, "W") {
			v &= 0xffffffff
		}
	}
	return reg, v
}

// Counts follow emit_a64_mov_i64 / emit_a64_mov_i as read in the source:
// below 2^32 the 32-bit path (movz [+movk lsl16] when bit 31 is clear,
// movn [+movk] when set); above, the fewer of non-zero and non-0xffff
// halfwords, at least one.
func TestMovI64Boundaries(t *testing.T) {
	tests := []struct {
		v     uint64
		n     int
		first string
	}{
		{0, 1, "W10"},
		{1, 1, "W10"},
		{0xffff, 1, "W10"},
		{0x10000, 2, "W10"}, // movz #0; movk #1, lsl 16
		{0x7fffffff, 2, "W10"},
		{0x80000000, 2, "W10"}, // movn #0x7fff, lsl 16; movk #0
		{0xffff0000, 1, "W10"}, // movn #0xffff (hi 0xffff, lo 0)
		{0xfffffffe, 1, "W10"},
		{0xffffffff, 1, "W10"},
		{0x7fff0000, 2, "W10"},    // movz #0; movk #0x7fff, lsl 16
		{0x8000ffff, 1, "W10"},    // movn #0x7fff, lsl 16 (lo 0xffff)
		{1 << 32, 1, "X10"},       // movz #1, lsl 32
		{0x1_0000_0001, 2, "X10"}, // movz lsl 32; movk
		{0xffffffffffffffff, 1, "X10"},
		{0xfffffffffffffffe, 1, "X10"},
		{0x8000000000000000, 1, "X10"},
		{0x8000000000000001, 2, "X10"},
		{0x8000000000000201, 2, "X10"},
		{0xfff0000004b31c00, 3, "X10"}, // the live im: movz lsl 48; movk lsl 16; movk
		{0xfff0000004b30000, 2, "X10"},
		{0xffff888100100000, 3, "X10"},
		{0xffff0000ffff0000, 2, "X10"}, // tie (2 vs 2): movz
		{0x0000ffff00000000, 1, "X10"},
		{0xffffffff00000000, 2, "X10"}, // tie (2 vs 2): movz lsl 48; movk lsl 32
		{0x123456789abcdef0, 4, "X10"},
		{0xffff800080000000, 3, "X10"}, // tie (3 vs 3): movz, movk, movk
	}
	for _, tc := range tests {
		var e emitter
		e.movI64(x10, tc.v)
		reg, got := decodedValue(t, e.words)
		if got != tc.v || len(e.words) != tc.n || reg != tc.first {
			t.Errorf("%#x: %d insns building %s = %#x; want %d insns, %s", tc.v, len(e.words), reg, got, tc.n, tc.first)
		}
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		var v uint64
		for s := 0; s < 64; s += 16 {
			switch r.Intn(4) {
			case 0:
				v |= 0xffff << s
			case 1:
			default:
				v |= uint64(r.Intn(1<<16)) << s
			}
		}
		var e emitter
		e.movI64(x10, v)
		_, got := decodedValue(t, e.words)
		want := 0
		if v>>32 != 0 {
			want = max(1, min(halfwordsNot(v, 0), halfwordsNot(v, 0xffff)))
		} else {
			want = len(e.words) // the 32-bit path: 1 or 2, checked above
			if want < 1 || want > 2 {
				t.Fatalf("%#x: %d insns on the 32-bit path", v, want)
			}
		}
		if got != v || len(e.words) != want {
			t.Fatalf("%#x: %d insns building %#x, want %d", v, len(e.words), got, want)
		}
	}
}

func TestAddrMov(t *testing.T) {
	for _, v := range []uint64{0xffff800083800000, 0xffffffffffffffff, 0xffff000000000000, 0xffff8000deadbeef} {
		var e emitter
		e.addrMov(x19, v, "prog:p")
		reg, got := decodedValue(t, e.words)
		if e.err != nil || got != v || len(e.words) != 3 || reg != "X19" {
			t.Errorf("%#x: %d insns building %s = %#x (%v)", v, len(e.words), reg, got, e.err)
		}
		if len(e.relocs) != 1 || e.relocs[0].Len != 12 || e.relocs[0].Value != v {
			t.Errorf("%#x: relocs %+v", v, e.relocs)
		}
	}
	var e emitter
	e.addrMov(x19, 0x0000800083800000, "prog:p")
	if e.err == nil {
		t.Error("address without 0xffff top accepted")
	}
}

func TestCallForm(t *testing.T) {
	const base = 0xffff800082c00000
	const pre = 5 // the call is the sixth instruction
	pc := uint64(base + 4*pre)
	tests := []struct {
		name     string
		base     uint64
		size     bool
		target   uint64
		indirect bool
	}{
		{"+128M-4", base, false, pc + sz128M - 4, false},
		{"+128M", base, false, pc + sz128M, true},
		{"-128M", base, false, pc - sz128M, false},
		{"-128M-4", base, false, pc - sz128M - 4, true},
		{"self", base, false, pc, false},
		{"target 0", base, false, 0, true},
		{"no ro_image", 0, false, pc, true},
		{"size pass", base, true, pc, true},
	}
	for _, tc := range tests {
		e := emitter{base: tc.base, sizePass: tc.size}
		for range pre {
			e.emit(insnNOP)
		}
		e.call(tc.target, "__bpf_prog_enter_recur")
		call := e.words[pre:]
		code := make([]byte, 0, 4*len(call))
		for _, w := range call {
			code = binary.LittleEndian.AppendUint32(code, w)
		}
		ins, err := Decode(code, tc.base+4*pre)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.indirect {
			if len(ins) != 4 || ins[3].Text != "blr x10" {
				t.Errorf("%s: want movn/movk/movk/blr x10, got %d insns", tc.name, len(ins))
				continue
			}
			if _, v := decodedValue(t, call[:3]); v != tc.target|0xffff<<48 && !tc.size {
				t.Errorf("%s: loads %#x", tc.name, v)
			}
			continue
		}
		if len(ins) != 1 || ins[0].Op != "BL" || ins[0].Target != tc.target {
			t.Errorf("%s: %+v, want bl %#x", tc.name, ins, tc.target)
		}
		if len(e.relocs) != 1 || e.relocs[0].Off != 4*pre || e.relocs[0].Value != tc.target {
			t.Errorf("%s: relocs %+v", tc.name, e.relocs)
		}
	}
}

// Words the facts sheet quotes from live 7.2.13 arm64 images.
func TestEncodersMatchLiveWords(t *testing.T) {
	str16, _ := ldstImm64(false, x10, sp, 24)
	ldr72, _ := ldstImm64(true, x10, sp, 72)
	sub40, _ := addSubImm(true, sp, sp, 0x40)
	for name, c := range map[string][2]uint32{
		"stp x29, x9":       {stpPre(fp, x9, sp), 0xa9bf27fd},
		"mov x29, sp":       {movSP(fp, sp), 0x910003fd},
		"stp x29, x30":      {stpPre(fp, lr, sp), 0xa9bf7bfd},
		"sub sp, sp, #0x40": {sub40, 0xd10003ff | 0x40<<10},
		"str x10, [sp,#24]": {str16, 0xf90003e0 | 3<<10 | 10},
		"ldr x10, [sp,#72]": {ldr72, 0xf94003e0 | 9<<10 | 10},
		"mov x0, x19":       {movReg(x0, x19), 0xaa1303e0},
		"mov x20, x0":       {movReg(x20, x0), 0xaa0003f4},
		"mov x1, x20":       {movReg(x1, x20), 0xaa1403e1},
		"adr x30, #8":       {adr(lr, 8), 0x1000005e},
		"ret x10":           {ret(x10), 0xd65f0140},
		"ret x9":            {ret(x9), 0xd65f0120},
		"blr x10":           {blr(x10), 0xd63f0140},
		"ldp x29, x30":      {ldpPost(fp, lr, sp), 0xa8c17bfd},
		"ldp x29, x9":       {ldpPost(fp, x9, sp), 0xa8c127fd},
		"mov x30, x9":       {movReg(lr, x9), 0xaa0903fe},
		"mov x10, x30":      {movReg(x10, lr), 0xaa1e03ea},
		"movz x10, #0":      {movewide(true, movZ, x10, 0, 0), 0xd280000a},
		"movz x10, lsl 48":  {movewide(true, movZ, x10, 0x8000, 48), 0xd2f0000a},
		"cbz x0, +3":        {cbz(x0, 3), 0xb4000000 | 3<<5},
		"cbnz x10":          {cbnz(x10, 0), 0xb500000a},
	} {
		if c[0] != c[1] {
			t.Errorf("%s: encoded %08x, live %08x", name, c[0], c[1])
		}
	}
	// Encodings the kernel refuses (the JIT would emit a fault word).
	if _, err := ldstImm64(false, x10, sp, 12); err == nil {
		t.Error("unaligned str offset accepted")
	}
	if _, err := addSubImm(true, sp, sp, 0x1001); err == nil {
		t.Error("unencodable sub accepted")
	}
	if w, err := addSubImm(true, sp, sp, 0x1000); err != nil || w != 0xd14007ff {
		t.Errorf("shifted sub: %08x %v", w, err)
	}
}

func TestDecodeNamesHints(t *testing.T) {
	code := binary.LittleEndian.AppendUint32(nil, 0xd50324df)
	code = binary.LittleEndian.AppendUint32(code, 0xd503233f)
	code = binary.LittleEndian.AppendUint32(code, 0xd50323bf)
	code = binary.LittleEndian.AppendUint32(code, insnNOP)
	code = binary.LittleEndian.AppendUint32(code, 0xd503245f)
	ins, err := Decode(code, 0)
	require.NoError(t, err)
	want := []string{"bti jc", "paciasp", "autiasp", "nop", "bti c"}
	for i, w := range want {
		if ins[i].Text != w {
			t.Errorf("%08x: %q, want %q", ins[i].Word, ins[i].Text, w)
		}
	}
}
