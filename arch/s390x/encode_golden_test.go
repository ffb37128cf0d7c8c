package s390x

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpftramp/tramp/internal/golden"
)

// gnuAsGolden is testdata/gnu-as.txt: one line per instruction the
// encoders are tested on, its GNU as source and the bytes
// s390x-linux-gnu-as assembles it to. TestGNUAsGolden writes it (with
// -update) from the assembler and holds it to the assembler when one is
// installed; TestEncodersMatchGNUAs holds the encoders to it everywhere.
const gnuAsGolden = "testdata/gnu-as.txt"

const gnuAsRerun = "go test ./arch/s390x -run TestGNUAsGolden"

// encoded is one encoder call as the generator makes it, with the GNU as
// source of the instruction it must be.
type encoded struct {
	call string
	asm  string
	w    word
}

// encoderCalls are calls of every encoder the trampoline uses, with
// several registers, displacements and immediates each and the
// boundaries of their fields: negative and extreme aghi and lghi,
// 12-bit displacements up to 4095, 20-bit ones to ±512 KiB, mvc lengths
// 1 to 256, brasl and brcl offsets both ways to ±4 GiB.
func encoderCalls() []encoded {
	return []encoded{
		{"lgr(r1, r15)", "lgr %r1,%r15", lgr(r1, r15)},
		{"lgr(r3, r7)", "lgr %r3,%r7", lgr(r3, r7)},
		{"lgr(r8, r0)", "lgr %r8,%r0", lgr(r8, r0)},
		{"lgr(r1, r8)", "lgr %r1,%r8", lgr(r1, r8)},
		{"ltgr(r7, r2)", "ltgr %r7,%r2", ltgr(r7, r2)},
		{"ltgr(r0, r15)", "ltgr %r0,%r15", ltgr(r0, r15)},
		{"lgbr(r2, r2)", "lgbr %r2,%r2", lgbr(r2, r2)},
		{"lgbr(r15, r0)", "lgbr %r15,%r0", lgbr(r15, r0)},
		{"llgcr(r2, r2)", "llgcr %r2,%r2", llgcr(r2, r2)},
		{"lghr(r2, r2)", "lghr %r2,%r2", lghr(r2, r2)},
		{"llghr(r2, r2)", "llghr %r2,%r2", llghr(r2, r2)},
		{"lgfr(r2, r2)", "lgfr %r2,%r2", lgfr(r2, r2)},
		{"llgfr(r2, r2)", "llgfr %r2,%r2", llgfr(r2, r2)},
		{"llgfr(r7, r14)", "llgfr %r7,%r14", llgfr(r7, r14)},
		{"aghi(r15, -128)", "aghi %r15,-128", aghi(r15, -128)},
		{"aghi(r15, 128)", "aghi %r15,128", aghi(r15, 128)},
		{"aghi(r15, -8)", "aghi %r15,-8", aghi(r15, -8)},
		{"aghi(r15, -32768)", "aghi %r15,-32768", aghi(r15, -32768)},
		{"aghi(r15, 32767)", "aghi %r15,32767", aghi(r15, 32767)},
		{"aghi(r1, 0)", "aghi %r1,0", aghi(r1, 0)},
		{"lghi(r0, 2)", "lghi %r0,2", lghi(r0, 2)},
		{"lghi(r0, 0)", "lghi %r0,0", lghi(r0, 0)},
		{"lghi(r0, 74)", "lghi %r0,74", lghi(r0, 74)},
		{"lghi(r1, -1)", "lghi %r1,-1", lghi(r1, -1)},
		{"lghi(r0, 32767)", "lghi %r0,32767", lghi(r0, 32767)},
		{"lghi(r0, -32768)", "lghi %r0,-32768", lghi(r0, -32768)},
		{"la(r3, r15, 240)", "la %r3,240(%r15)", la(r3, r15, 240)},
		{"la(r2, r15, 0)", "la %r2,0(%r15)", la(r2, r15, 0)},
		{"la(r4, r15, 4095)", "la %r4,4095(%r15)", la(r4, r15, 4095)},
		{"stg(r1, r15, 152)", "stg %r1,152(%r15)", stg(r1, r15, 152)},
		{"stg(r0, r15, 0)", "stg %r0,0(%r15)", stg(r0, r15, 0)},
		{"stg(r14, r15, 4095)", "stg %r14,4095(%r15)", stg(r14, r15, 4095)},
		{"stg(r2+4, r15, 4096)", "stg %r6,4096(%r15)", stg(r2+4, r15, 4096)},
		{"stg(r2, r15, -8)", "stg %r2,-8(%r15)", stg(r2, r15, -8)},
		{"stg(r2, r15, 524287)", "stg %r2,524287(%r15)", stg(r2, r15, 524287)},
		{"stg(r2, r15, -524288)", "stg %r2,-524288(%r15)", stg(r2, r15, -524288)},
		{"lg(r14, r15, 264)", "lg %r14,264(%r15)", lg(r14, r15, 264)},
		{"lg(r1, r15, 4104)", "lg %r1,4104(%r15)", lg(r1, r15, 4104)},
		{"lg(r2, r15, -1)", "lg %r2,-1(%r15)", lg(r2, r15, -1)},
		{"ltg(r0, r15, 216)", "ltg %r0,216(%r15)", ltg(r0, r15, 216)},
		{"ltg(r0, r15, 524287)", "ltg %r0,524287(%r15)", ltg(r0, r15, 524287)},
		{"stmg(r2, r6, r15, 160)", "stmg %r2,%r6,160(%r15)", stmg(r2, r2+4, r15, 160)},
		{"stmg(r7, r8, r15, 224)", "stmg %r7,%r8,224(%r15)", stmg(r7, r8, r15, 224)},
		{"stmg(r2, r2, r15, 4095)", "stmg %r2,%r2,4095(%r15)", stmg(r2, r2, r15, 4095)},
		{"stmg(r2, r3, r15, -16)", "stmg %r2,%r3,-16(%r15)", stmg(r2, r3, r15, -16)},
		{"lmg(r2, r6, r15, 160)", "lmg %r2,%r6,160(%r15)", lmg(r2, r2+4, r15, 160)},
		{"lmg(r7, r8, r15, 224)", "lmg %r7,%r8,224(%r15)", lmg(r7, r8, r15, 224)},
		{"lmg(r2, r2, r15, 8192)", "lmg %r2,%r2,8192(%r15)", lmg(r2, r2, r15, 8192)},
		{"mvc(256, 4, r15, 192, r15)", "mvc 256(4,%r15),192(%r15)", mvc(256, 4, r15, 192, r15)},
		{"mvc(64, 4, r15, 256, r15)", "mvc 64(4,%r15),256(%r15)", mvc(64, 4, r15, 256, r15)},
		{"mvc(200, 8, r15, 312, r15)", "mvc 200(8,%r15),312(%r15)", mvc(200, 8, r15, 312, r15)},
		{"mvc(200, 16, r15, 0, r6)", "mvc 200(16,%r15),0(%r6)", mvc(200, 16, r15, 0, r2+4)},
		{"mvc(184, 16, r15, 0, r1)", "mvc 184(16,%r15),0(%r1)", mvc(184, 16, r15, 0, r1)},
		{"mvc(160, 56, r15, 400, r15)", "mvc 160(56,%r15),400(%r15)", mvc(160, 56, r15, 400, r15)},
		{"mvc(4095, 256, r15, 4095, r15)", "mvc 4095(256,%r15),4095(%r15)", mvc(4095, 256, r15, 4095, r15)},
		{"mvc(0, 1, r15, 0, r15)", "mvc 0(1,%r15),0(%r15)", mvc(0, 1, r15, 0, r15)},
		{"xc(216, 8, r15, 216, r15)", "xc 216(8,%r15),216(%r15)", xc(216, 8, r15, 216, r15)},
		{"xc(4095, 8, r15, 4095, r15)", "xc 4095(8,%r15),4095(%r15)", xc(4095, 8, r15, 4095, r15)},
		{"llihf(r2, 0x3ff)", "llihf %r2,1023", llihf(r2, 0x3ff)},
		{"llihf(r0, 0)", "llihf %r0,0", llihf(r0, 0)},
		{"llihf(r2, 0xffffffff)", "llihf %r2,4294967295", llihf(r2, 0xffffffff)},
		{"llihf(r0, 0x80000000)", "llihf %r0,2147483648", llihf(r0, 0x80000000)},
		{"oilf(r2, 0xe0a6d000)", "oilf %r2,3769028608", oilf(r2, 0xe0a6d000)},
		{"oilf(r0, 0)", "oilf %r0,0", oilf(r0, 0)},
		{"oilf(r0, 0xffffffff)", "oilf %r0,4294967295", oilf(r0, 0xffffffff)},
		{"oilf(r0, 0x302)", "oilf %r0,770", oilf(r0, 0x302)},
		{"brasl(r14, 0x1000)", "brasl %r14,.+4096", brasl(r14, 0x1000)},
		{"brasl(r14, -6)", "brasl %r14,.-6", brasl(r14, -6)},
		{"brasl(r14, 0x8063a16)", "brasl %r14,.+134625814", brasl(r14, 0x8063a16)},
		{"brasl(r14, -0x7f5e9a00)", "brasl %r14,.-2136906240", brasl(r14, -0x7f5e9a00)},
		{"brasl(r14, 0xfffffffe)", "brasl %r14,.+4294967294", brasl(r14, 0xfffffffe)},
		{"brasl(r14, -0x100000000)", "brasl %r14,.-4294967296", brasl(r14, -0x100000000)},
		{"brcl(0, 0x2e)", "brcl 0,.+46", brcl(maskNever, 0x2e)},
		{"brcl(0, -0x96)", "brcl 0,.-150", brcl(maskNever, -0x96)},
		{"brcl(8, 8)", "brcl 8,.+8", brcl(maskEqual, 8)},
		{"brcl(8, 0x1e)", "brcl 8,.+30", brcl(maskEqual, 0x1e)},
		{"brcl(7, 0x36)", "brcl 7,.+54", brcl(maskNotEq, 0x36)},
		{"brcl(7, -0x164)", "brcl 7,.-356", brcl(maskNotEq, -0x164)},
		{"brcl(15, 0x806ba16)", "brcl 15,.+134658582", brcl(maskAlways, 0x806ba16)},
		{"brcl(15, -0x100)", "brcl 15,.-256", brcl(maskAlways, -0x100)},
		{"brcl(15, 0xfffffffe)", "brcl 15,.+4294967294", brcl(maskAlways, 0xfffffffe)},
		{"brcl(15, -0x100000000)", "brcl 15,.-4294967296", brcl(maskAlways, -0x100000000)},
		{"basr(r14, r8)", "basr %r14,%r8", basr(r14, r8)},
		{"br(r14)", "br %r14", br(r14)},
		{"br(r1)", "br %r1", br(r1)},
	}
}

// render writes an instruction back as GNU as source from what fields
// reads of it (the extended mnemonic br for bcr 15, PC-relative targets
// as .±offset): the decoder's view, which must give back the source the
// bytes were assembled from.
func render(b []byte) string {
	in := fields(b)
	mem := func(d int64, base int) string { return fmt.Sprintf("%d(%%r%d)", d, base) }
	rel := func(off int64) string {
		if off < 0 {
			return fmt.Sprintf(".%d", off)
		}
		return fmt.Sprintf(".+%d", off)
	}
	switch in.k {
	case kLgr, kLtgr, kExtend:
		op := map[uint16]string{0xb904: "lgr", 0xb902: "ltgr", 0xb906: "lgbr", 0xb984: "llgcr",
			0xb907: "lghr", 0xb985: "llghr", 0xb914: "lgfr", 0xb916: "llgfr"}[uint16(b[0])<<8|uint16(b[1])]
		return fmt.Sprintf("%s %%r%d,%%r%d", op, in.r1, in.r2)
	case kAghi:
		return fmt.Sprintf("aghi %%r%d,%d", in.r1, in.imm)
	case kLghi:
		return fmt.Sprintf("lghi %%r%d,%d", in.r1, in.imm)
	case kLa:
		return fmt.Sprintf("la %%r%d,%s", in.r1, mem(in.disp, in.b2))
	case kStg, kLg, kLtg:
		op := map[kind]string{kStg: "stg", kLg: "lg", kLtg: "ltg"}[in.k]
		return fmt.Sprintf("%s %%r%d,%s", op, in.r1, mem(in.disp, in.b2))
	case kStmg, kLmg:
		op := map[kind]string{kStmg: "stmg", kLmg: "lmg"}[in.k]
		return fmt.Sprintf("%s %%r%d,%%r%d,%s", op, in.r1, in.r2, mem(in.disp, in.b2))
	case kMvc, kXc:
		op := map[kind]string{kMvc: "mvc", kXc: "xc"}[in.k]
		return fmt.Sprintf("%s %d(%d,%%r%d),%s", op, in.d1, in.length, in.b1, mem(in.disp, in.b2))
	case kLlihf:
		return fmt.Sprintf("llihf %%r%d,%d", in.r1, uint32(in.imm))
	case kOilf:
		return fmt.Sprintf("oilf %%r%d,%d", in.r1, uint32(in.imm))
	case kBrasl:
		return fmt.Sprintf("brasl %%r%d,%s", in.r1, rel(in.imm))
	case kBrcl:
		return fmt.Sprintf("brcl %d,%s", in.r1, rel(in.imm))
	case kBasr:
		return fmt.Sprintf("basr %%r%d,%%r%d", in.r1, in.r2)
	case kBcr:
		if in.r1 == maskAlways {
			return fmt.Sprintf("br %%r%d", in.r2)
		}
		return fmt.Sprintf("bcr %d,%%r%d", in.r1, in.r2)
	}
	return "?"
}

// readGNUAs reads the golden file: GNU as source to the bytes it
// assembles to.
func readGNUAs(t *testing.T) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile(gnuAsGolden)
	if err != nil {
		t.Fatalf("%v (%s -update writes it with s390x-linux-gnu-as)", err, gnuAsRerun)
	}
	out := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		src, hexBytes, ok := strings.Cut(line, "\t")
		b, err := hex.DecodeString(strings.ReplaceAll(hexBytes, " ", ""))
		if !ok || err != nil {
			t.Fatalf("%s:%d: want \"source<TAB>hex bytes\", got %q", gnuAsGolden, n, line)
		}
		out[src] = b
	}
	return out
}

// TestEncodersMatchGNUAs holds every encoder call to the bytes GNU as
// gave for its instruction (the golden file, so the assembler is not
// needed here), and requires the decoder (fields, through render) to
// read the bytes back as that source, and x/arch to decode them at the
// same length.
func TestEncodersMatchGNUAs(t *testing.T) {
	want := readGNUAs(t)
	for _, c := range encoderCalls() {
		got := c.w.bytes()
		exp, ok := want[c.asm]
		if !ok {
			t.Errorf("%s: %q is not in %s (%s -update adds it)", c.call, c.asm, gnuAsGolden, gnuAsRerun)
			continue
		}
		if !bytes.Equal(got, exp) {
			t.Errorf("%s = % x, GNU as assembles %q to % x", c.call, got, c.asm, exp)
		}
		if r := render(got); r != c.asm {
			t.Errorf("%s = % x: fields read it as %q", c.call, got, r)
		}
		insns, err := Decode(got, 0x3ff60040000)
		if err != nil || len(insns) != 1 || insns[0].Len != len(exp) {
			t.Errorf("%s = % x: Decode gives %v, %v", c.call, got, insns, err)
		}
	}
}

// TestGNUAsGolden assembles every encoder call's source with
// s390x-linux-gnu-as (binutils-s390x-linux-gnu) and compares the bytes
// with the golden file; with -update it writes the file. It is skipped
// where the assembler is not installed.
func TestGNUAsGolden(t *testing.T) {
	as, err1 := exec.LookPath("s390x-linux-gnu-as")
	objcopy, err2 := exec.LookPath("s390x-linux-gnu-objcopy")
	if err1 != nil || err2 != nil {
		t.Skip("s390x-linux-gnu-as/objcopy not installed (binutils-s390x-linux-gnu)")
	}
	calls := encoderCalls()
	var src strings.Builder
	src.WriteString("\t.text\n")
	for _, c := range calls {
		fmt.Fprintf(&src, "\t%s\n", c.asm)
	}
	dir := t.TempDir()
	s, o, bin := filepath.Join(dir, "x.s"), filepath.Join(dir, "x.o"), filepath.Join(dir, "x.bin")
	if err := os.WriteFile(s, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(as, "-o", o, s).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", as, err, out)
	}
	if out, err := exec.Command(objcopy, "-O", "binary", "-j", ".text", o, bin).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", objcopy, err, out)
	}
	text, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	got.WriteString("# GNU as source\tbytes s390x-linux-gnu-as assembles it to (" + gnuAsRerun + " -update rewrites this file)\n")
	off := 0
	for _, c := range calls {
		if off >= len(text) || off+ilc(text[off]) > len(text) {
			t.Fatalf("the assembler's .text ends before %q", c.asm)
		}
		n := ilc(text[off])
		fmt.Fprintf(&got, "%s\t% x\n", c.asm, text[off:off+n])
		off += n
	}
	golden.Check(t, gnuAsGolden, got.String(), gnuAsRerun)
}
