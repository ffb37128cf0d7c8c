package riscv64

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/arch/riscv64/riscv64asm"

	"github.com/bpftramp/tramp/internal/golden"
)

// encodeGolden is testdata/encode.txt: one line per encoder call as the
// generator makes it, with the bytes the encoder gives and x/arch's
// disassembly of them. A change to an encoder shows as a change of its
// line, in both columns.
const encodeGolden = "testdata/encode.txt"

type encoded struct {
	call string
	code []byte
	// want is what fields() must read back: base kind, rd, rs1, rs2, imm.
	k            kind
	rd, rs1, rs2 int
	imm          int64
}

func w32(w uint32) []byte { return binary.LittleEndian.AppendUint32(nil, w) }
func w16(h uint16) []byte { return binary.LittleEndian.AppendUint16(nil, h) }

// encoderCalls are the encoder calls the trampoline sequence makes, with
// the boundaries of their ranges.
func encoderCalls() []encoded {
	return []encoded{
		{"rvAddi(a1, fp, -72)", w32(rvAddi(a1, fp, -72)), kAddi, a1, fp, 0, -72},
		{"rvAddi(t1, zero, 1025)", w32(rvAddi(t1, zero, 1025)), kAddi, t1, zero, 0, 1025},
		{"rvAddi(a0, a0, -2048)", w32(rvAddi(a0, a0, -2048)), kAddi, a0, a0, 0, -2048},
		{"rvAddi(sp, sp, 2047)", w32(rvAddi(sp, sp, 2047)), kAddi, sp, sp, 0, 2047},
		{"rvAddiw(t1, t1, 1376)", w32(rvAddiw(t1, t1, 1376)), kAddiw, t1, t1, 0, 1376},
		{"rvSlli(a0, a0, 63)", w32(rvSlli(a0, a0, 63)), kSlli, a0, a0, 0, 63},
		{"rvLd(t1, -32, fp)", w32(rvLd(t1, -32, fp)), kLd, t1, fp, 0, -32},
		{"rvLd(t1, 2040, fp)", w32(rvLd(t1, 2040, fp)), kLd, t1, fp, 0, 2040},
		{"rvSd(fp, -88, s1)", w32(rvSd(fp, -88, s1)), kSd, 0, fp, s1, -88},
		{"rvSd(fp, -2048, zero)", w32(rvSd(fp, -2048, zero)), kSd, 0, fp, zero, -2048},
		{"rvLui(a0, 0xffebe)", w32(rvLui(a0, 0xffebe)), kLui, a0, 0, 0, -322},
		{"rvLui(t1, 0x7ffff)", w32(rvLui(t1, 0x7ffff)), kLui, t1, 0, 0, 0x7ffff},
		{"rvAuipc(t1, 33471)", w32(rvAuipc(t1, 33471)), kAuipc, t1, 0, 0, 33471},
		{"rvAuipc(t1, -1)", w32(rvAuipc(t1, -1)), kAuipc, t1, 0, 0, -1},
		{"rvJalr(ra, t1, 1986)", w32(rvJalr(ra, t1, 1986)), kJalr, ra, t1, 0, 1986},
		{"rvJalr(ra, t1, -2048)", w32(rvJalr(ra, t1, -2048)), kJalr, ra, t1, 0, -2048},
		{"rvJal(ra, -0x44c)", w32(rvJal(ra, -0x44c)), kJal, ra, 0, 0, -0x44c},
		{"rvJal(ra, 1<<20 - 2)", w32(rvJal(ra, 1<<20-2)), kJal, ra, 0, 0, 1<<20 - 2},
		{"rvJal(ra, -(1<<20))", w32(rvJal(ra, -(1 << 20))), kJal, ra, 0, 0, -(1 << 20)},
		{"rvBeq(a0, zero, 12)", w32(rvBeq(a0, zero, 12)), kBeq, 0, a0, zero, 12},
		{"rvBeq(a0, zero, 4094)", w32(rvBeq(a0, zero, 4094)), kBeq, 0, a0, zero, 4094},
		{"rvBne(t1, zero, 0x74)", w32(rvBne(t1, zero, 0x74)), kBne, 0, t1, zero, 0x74},
		{"rvBne(t1, zero, -4096)", w32(rvBne(t1, zero, -4096)), kBne, 0, t1, zero, -4096},
		{"insnNOP", w32(insnNOP), kAddi, zero, zero, 0, 0},
		{"rvcAddi16sp(-16)", w16(rvcAddi16sp(-16)), kAddi, sp, sp, 0, -16},
		{"rvcAddi16sp(-512)", w16(rvcAddi16sp(-512)), kAddi, sp, sp, 0, -512},
		{"rvcAddi16sp(496)", w16(rvcAddi16sp(496)), kAddi, sp, sp, 0, 496},
		{"rvcAddi4spn(fp, 16)", w16(rvcAddi4spn(fp, 16)), kAddi, fp, sp, 0, 16},
		{"rvcAddi4spn(fp, 1020)", w16(rvcAddi4spn(fp, 1020)), kAddi, fp, sp, 0, 1020},
		{"rvcAddi(t1, 1)", w16(rvcAddi(t1, 1)), kAddi, t1, t1, 0, 1},
		{"rvcAddi(t1, -32)", w16(rvcAddi(t1, -32)), kAddi, t1, t1, 0, -32},
		{"rvcAddiw(a0, 1)", w16(rvcAddiw(a0, 1)), kAddiw, a0, a0, 0, 1},
		{"rvcAddiw(a0, 0)", w16(rvcAddiw(a0, 0)), kAddiw, a0, a0, 0, 0},
		{"rvcLi(t1, -1)", w16(rvcLi(t1, -1)), kAddi, t1, zero, 0, -1},
		{"rvcLi(a0, 31)", w16(rvcLi(a0, 31)), kAddi, a0, zero, 0, 31},
		{"rvcLui(t1, 1)", w16(rvcLui(t1, 1)), kLui, t1, 0, 0, 1},
		{"rvcLui(t1, -32)", w16(rvcLui(t1, -32)), kLui, t1, 0, 0, -32},
		{"rvcSlli(a0, 13)", w16(rvcSlli(a0, 13)), kSlli, a0, a0, 0, 13},
		{"rvcSlli(t1, 63)", w16(rvcSlli(t1, 63)), kSlli, t1, t1, 0, 63},
		{"rvcMv(s1, a0)", w16(rvcMv(s1, a0)), kAddi, s1, a0, 0, 0},
		{"rvcJr(t0)", w16(rvcJr(t0)), kJalr, zero, t0, 0, 0},
		{"rvcJr(ra)", w16(rvcJr(ra)), kJalr, zero, ra, 0, 0},
		{"rvcJalr(t1)", w16(rvcJalr(t1)), kJalr, ra, t1, 0, 0},
		{"rvcLdsp(t0, 56)", w16(rvcLdsp(t0, 56)), kLd, t0, sp, 0, 56},
		{"rvcLdsp(ra, 504)", w16(rvcLdsp(ra, 504)), kLd, ra, sp, 0, 504},
		{"rvcSdsp(8, ra)", w16(rvcSdsp(8, ra)), kSd, 0, sp, ra, 8},
		{"rvcSdsp(504, t0)", w16(rvcSdsp(504, t0)), kSd, 0, sp, t0, 504},
		{"rvcLd(a0, 248, fp)", w16(rvcLd(a0, 248, fp)), kLd, a0, fp, 0, 248},
		{"rvcSd(fp, 8, a5)", w16(rvcSd(fp, 8, a5)), kSd, 0, fp, a5, 8},
	}
}

// TestEncodeGolden pins every encoder's bytes and x/arch's reading of
// them, and requires fields (what Check and Explain read) to give back
// the encoder's operands.
func TestEncodeGolden(t *testing.T) {
	var got strings.Builder
	got.WriteString("# encoder call\tbytes\tx/arch riscv64asm (GNU syntax)\n")
	for _, c := range encoderCalls() {
		inst, err := riscv64asm.Decode(c.code)
		text := "?"
		if err != nil || inst.Len != len(c.code) {
			t.Errorf("%s = % x: x/arch cannot decode it (len %d): %v", c.call, c.code, inst.Len, err)
		} else {
			text = abiNames(riscv64asm.GNUSyntax(inst))
		}
		k, rd, rs1, rs2, imm := fields(c.code)
		if k != c.k || rd != c.rd || rs1 != c.rs1 || rs2 != c.rs2 || imm != c.imm {
			t.Errorf("%s: fields read kind %d rd %d rs1 %d rs2 %d imm %d, want %d %d %d %d %d",
				c.call, k, rd, rs1, rs2, imm, c.k, c.rd, c.rs1, c.rs2, c.imm)
		}
		fmt.Fprintf(&got, "%s\t% x\t%s\n", c.call, c.code, text)
	}
	golden.Check(t, encodeGolden, got.String(), "go test ./arch/riscv64 -run TestEncodeGolden")
}

// mnemonicOf is the instruction an encoder call names: rvcAddi16sp(...)
// is c.addi16sp, rvSd(...) sd, insnNOP addi.
func mnemonicOf(call string) string {
	name := call[:strings.IndexAny(call+"(", "(")]
	switch {
	case name == "insnNOP":
		return "addi"
	case strings.HasPrefix(name, "rvc"):
		return "c." + strings.ToLower(name[3:])
	}
	return strings.ToLower(strings.TrimPrefix(name, "rv"))
}

// TestEncodeAgreesWithObjdump disassembles every encoder's bytes with
// llvm-objdump (without aliases) when it is installed and requires the
// instruction the encoder is named for, compressed forms as such.
func TestEncodeAgreesWithObjdump(t *testing.T) {
	objcopy, err1 := exec.LookPath("llvm-objcopy")
	objdump, err2 := exec.LookPath("llvm-objdump")
	if err1 != nil || err2 != nil {
		t.Skip("llvm-objcopy/llvm-objdump not installed")
	}
	dir := t.TempDir()
	calls := encoderCalls()
	var all []byte
	for _, c := range calls {
		all = append(all, c.code...)
	}
	bin, obj := filepath.Join(dir, "x.bin"), filepath.Join(dir, "x.o")
	if err := os.WriteFile(bin, all, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(objcopy, "-I", "binary", "-O", "elf64-littleriscv",
		"--rename-section=.data=.text,code,alloc", bin, obj).CombinedOutput(); err != nil {
		t.Skipf("llvm-objcopy has no riscv target: %v %s", err, out)
	}
	out, err := exec.Command(objdump, "-d", "-M", "no-aliases", "--mattr=+c", obj).CombinedOutput()
	if err != nil {
		t.Skipf("llvm-objdump cannot disassemble riscv: %v %s", err, out)
	}
	var mnems []string
	for _, l := range strings.Split(string(out), "\n") {
		// "  5c: 13 00 00 00  \taddi\tzero, zero, 0"
		f := strings.Split(l, "\t")
		if len(f) >= 2 && strings.Contains(f[0], ": ") {
			mnems = append(mnems, strings.TrimSpace(f[1]))
		}
	}
	if len(mnems) != len(calls) {
		t.Fatalf("objdump gave %d instructions for %d encoder calls:\n%s", len(mnems), len(calls), out)
	}
	for i, c := range calls {
		if want := mnemonicOf(c.call); mnems[i] != want {
			t.Errorf("%s = % x: objdump says %s, want %s", c.call, c.code, mnems[i], want)
		}
	}
}
