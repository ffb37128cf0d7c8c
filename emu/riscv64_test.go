package emu

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/arch/riscv64/riscv64asm"

	"github.com/bpftramp/tramp/trampoline"
)

// asmFields reads an instruction's fields from the decoder's arguments
// (riscv64asm rewrites compressed forms to their base instructions), in
// the shape decodeRV gives them; ok is false for an operation the
// machine does not model.
func asmFields(in riscv64asm.Inst) (o rop, ok bool) {
	reg := func(i int) uint8 { return uint8(in.Args[i].(riscv64asm.Reg) - riscv64asm.X0) }
	simm := func(i int) int64 { return int64(in.Args[i].(riscv64asm.Simm).Imm) }
	uimm := func(i int) int64 { return int64(in.Args[i].(riscv64asm.Uimm).Imm) }
	mem := func(i int) (uint8, int64) {
		ro := in.Args[i].(riscv64asm.RegOffset)
		return uint8(ro.OfsReg - riscv64asm.X0), int64(ro.Ofs.Imm)
	}
	imm20 := func(i int) int64 { return int64(int32(uint32(uimm(i)) << 12)) }
	switch in.Op {
	case riscv64asm.ADDI, riscv64asm.ADDIW:
		o.kind = rAddi
		if in.Op == riscv64asm.ADDIW {
			o.kind = rAddiw
		}
		o.rd, o.rs1, o.imm = reg(0), reg(1), simm(2)
	case riscv64asm.LUI, riscv64asm.AUIPC:
		o.kind = rLui
		if in.Op == riscv64asm.AUIPC {
			o.kind = rAuipc
		}
		o.rd, o.imm = reg(0), imm20(1)
	case riscv64asm.SLLI, riscv64asm.SRLI, riscv64asm.SRAI:
		o.kind = map[riscv64asm.Op]uint8{riscv64asm.SLLI: rSlli, riscv64asm.SRLI: rSrli, riscv64asm.SRAI: rSrai}[in.Op]
		o.rd, o.rs1, o.imm = reg(0), reg(1), uimm(2)
	case riscv64asm.ADD, riscv64asm.SUB, riscv64asm.ADD_UW:
		o.kind = map[riscv64asm.Op]uint8{riscv64asm.ADD: rAdd, riscv64asm.SUB: rSub, riscv64asm.ADD_UW: rAddUw}[in.Op]
		o.rd, o.rs1, o.rs2 = reg(0), reg(1), reg(2)
	case riscv64asm.LD, riscv64asm.LW, riscv64asm.LWU:
		o.kind, o.size = rLoad, 8
		if in.Op != riscv64asm.LD {
			o.size, o.signed = 4, in.Op == riscv64asm.LW
		}
		o.rd = reg(0)
		o.rs1, o.imm = mem(1)
	case riscv64asm.SD, riscv64asm.SW:
		o.kind, o.size = rStore, 8
		if in.Op == riscv64asm.SW {
			o.size = 4
		}
		o.rs2 = reg(0)
		o.rs1, o.imm = mem(1)
	case riscv64asm.JAL:
		o.kind, o.rd, o.imm = rJal, reg(0), simm(1)
	case riscv64asm.JALR:
		o.kind, o.rd = rJalr, reg(0)
		o.rs1, o.imm = mem(1)
	case riscv64asm.BEQ, riscv64asm.BNE:
		o.kind = rBeq
		if in.Op == riscv64asm.BNE {
			o.kind = rBne
		}
		o.rs1, o.rs2, o.imm = reg(0), reg(1), simm(2)
	case riscv64asm.EBREAK:
		o.kind = rEbreak
	default:
		return o, false
	}
	return o, true
}

// decodeOne decodes one instruction at the start of b with decodeRV.
func decodeOne(b []byte) *rop {
	e := &Emulator{s: Setup{Arch: "riscv64", Code: b, Base: 0xffffffff78040000}}
	return e.decodeRV(0)
}

// TestRVFieldsAgainstDecoder: the fields decodeRV reads from the
// encoding agree with riscv64asm's arguments for every 16-bit parcel and
// for random 32-bit words of each modelled major opcode, and every
// parcel riscv64asm decodes to a modelled operation is modelled (C.ADDW
// and the like decode to operations that are not).
func TestRVFieldsAgainstDecoder(t *testing.T) {
	var words [][]byte
	for w := 0; w < 1<<16; w++ {
		if w&3 != 3 {
			words = append(words, binary.LittleEndian.AppendUint16(nil, uint16(w)))
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, opc := range []uint32{0x13, 0x1b, 0x37, 0x17, 0x33, 0x3b, 0x03, 0x23, 0x6f, 0x67, 0x63, 0x73} {
		for range 5000 {
			w := r.Uint32()&^0x7f | opc
			if r.IntN(4) == 0 {
				w &^= 0xfe000000 // funct7 0: add, slli, srli
			}
			words = append(words, binary.LittleEndian.AppendUint32(nil, w))
		}
	}
	words = append(words, binary.LittleEndian.AppendUint32(nil, 0x00100073)) // ebreak
	checked, bad := 0, 0
	for _, b := range words {
		in, err := riscv64asm.Decode(b)
		mine := decodeOne(b)
		if err != nil {
			if mine.err == "" {
				t.Errorf("% x: riscv64asm refuses it (%v), decodeRV gives %+v", b, err, mine)
			}
			continue
		}
		want, modelled := asmFields(in)
		if modelled && want.kind == rAddi && want.rd == 0 && in.Len == 2 {
			continue // c.nop and its hints: riscv64asm drops the immediate
		}
		if !modelled {
			if mine.err == "" {
				t.Errorf("% x %s: decodeRV models an operation outside the list: %+v", b, riscv64asm.GNUSyntax(in), mine)
			}
			continue
		}
		if mine.err != "" {
			if in.Len == 2 && in.Op == riscv64asm.ADDI && in.Args[0].(riscv64asm.Reg) == riscv64asm.X0 {
				continue // an RVC hint on x0
			}
			t.Errorf("% x %s: %s", b, riscv64asm.GNUSyntax(in), mine.err)
			bad++
		} else {
			got := rop{kind: mine.kind, rd: mine.rd, rs1: mine.rs1, rs2: mine.rs2, imm: mine.imm, size: mine.size, signed: mine.signed}
			// The decoder does not name the implicit operands it leaves
			// out (c.beqz's x0 is there; c.lui has no rs1).
			if got != want {
				t.Errorf("% x %s: decodeRV %+v, riscv64asm %+v", b, riscv64asm.GNUSyntax(in), got, want)
				bad++
			}
			checked++
		}
		if bad > 20 {
			t.Fatal("too many")
		}
	}
	t.Logf("%d encodings agree", checked)
}

// TestRVDecodeErrors: an undecodable parcel, an instruction the machine
// does not model, the zero fill and a cut instruction each stop the run
// with a decode violation at their offset.
func TestRVDecodeErrors(t *testing.T) {
	nop := []byte{0x01, 0x00} // c.nop
	for _, tc := range []struct {
		name string
		code []byte
		want string
	}{
		{"mul", append(append([]byte{}, nop...), 0x33, 0x05, 0xb5, 0x02), "not modelled"}, // mul a0, a0, a1
		{"fld", append(append([]byte{}, nop...), 0x07, 0x35, 0x05, 0x00), "not modelled"}, // fld fa0, 0(a0)
		{"c.and", append(append([]byte{}, nop...), 0x6d, 0x8d), "not modelled"},           // c.and a0, a1
		{"zero fill", append(append([]byte{}, nop...), 0, 0, 0, 0), "all-zero parcel"},
		{"cut", append(append([]byte{}, nop...), 0x13, 0x05), "partial"},
		{"reserved", append(append([]byte{}, nop...), 0x7f, 0x00, 0x00, 0x00), "cannot decode"},
	} {
		s := Setup{Arch: "riscv64", Code: tc.code, Base: 0xffffffff78040000, Func: 0xffffffff80bbb560, OrigEntry: 0xffffffff80bbb568}
		e, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		res := e.Run(Run{})
		if len(res.Violations) != 1 || res.Violations[0].Check != CheckDecode || res.Violations[0].Off != 2 ||
			!strings.Contains(res.Violations[0].Msg, tc.want) {
			t.Errorf("%s: %v, want one %s violation at 0x2 saying %q", tc.name, res.Violations, CheckDecode, tc.want)
		}
	}
}

// TestRVEntryAndChecks runs hand-written images through the riscv64
// entry convention: ra holds the caller's return address, t0 the address
// past the patch site, sp the function's entry sp; a trampoline that
// returns through ra with every register intact passes, and each broken
// variant fails its check.
func TestRVEntryAndChecks(t *testing.T) {
	const (
		ret     = 0x8082 // ret (c.jr ra)
		jrT0    = 0x8282 // c.jr t0
		addiSpM = 0x1141 // c.addi sp, -16
		addiSpP = 0x0141 // c.addi sp, 16
		sdRa    = 0xe406 // c.sdsp ra, 8(sp)
		ldRa    = 0x60a2 // c.ldsp ra, 8(sp)
		liS1    = 0x4485 // c.li s1, 1
		liGp    = 0x4185 // c.li gp, 1
		mvT1Ra  = 0x8306 // c.mv t1, ra
		liRa    = 0x4085 // c.li ra, 1
		jrT1    = 0x8302 // c.jr t1
		addiSp8 = 0x1161 // c.addi sp, -8
		addSp8  = 0x0121 // c.addi sp, 8
	)
	half := func(ws ...uint16) []byte {
		var b []byte
		for _, w := range ws {
			b = binary.LittleEndian.AppendUint16(b, w)
		}
		return b
	}
	// jal ra, <orig>: from base+4 to orig.
	m := trampoline.FuncModel{NrArgs: 1, ArgSize: []int{8}, RetSize: 8}
	base, fn := uint64(0xffffffff78040000), uint64(0xffffffff78050000)
	for _, tc := range []struct {
		name string
		code []byte
		want []string
	}{
		{"jr t0", half(jrT0), nil},
		{"ret", half(ret), nil},
		{"frame", half(addiSpM, sdRa, ldRa, addiSpP, ret), nil},
		{"sp not restored", half(addiSpM, ret), []string{CheckSP}},
		{"s1 clobbered", half(liS1, ret), []string{CheckCalleeSaved}},
		{"gp clobbered", half(liGp, ret), []string{CheckCalleeSaved}},
		{"ra changed, return through a copy", half(mvT1Ra, liRa, jrT1), []string{CheckCalleeSaved}},
		{"call", append(half(addiSpM, sdRa), append(binary.LittleEndian.AppendUint32(nil, rvJalTo(base+4, fn+8)), half(ldRa, addiSpP, ret)...)...), nil},
		{"misaligned call", append(half(addiSpM, sdRa, addiSp8), append(binary.LittleEndian.AppendUint32(nil, rvJalTo(base+6, fn+8)), half(addSp8, ldRa, addiSpP, ret)...)...), []string{CheckAlign}},
	} {
		s := Setup{Arch: "riscv64", Code: tc.code, Base: base, Func: fn, OrigEntry: fn + 8, Model: m}
		e, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		res := e.Run(Run{Args: ArgsOf(m, []uint64{7}), OrigRet: 3})
		var got []string
		if res.Err() != nil {
			got = res.Failed()
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || !res.Completed {
			t.Errorf("%s: failed %v (completed %v: %v), want %v", tc.name, got, res.Completed, res.Err(), tc.want)
		}
	}
}

// rvJalTo encodes "jal ra, target" at pc.
func rvJalTo(pc, target uint64) uint32 {
	off := uint32(target - pc)
	return (off>>20&1)<<31 | (off>>1&0x3ff)<<21 | (off>>11&1)<<20 | (off>>12&0xff)<<12 | 1<<7 | 0x6f
}
