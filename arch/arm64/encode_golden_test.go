package arm64

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/arch/arm64/arm64asm"

	"github.com/bpftramp/tramp/internal/golden"
)

// encodeGolden is testdata/encode.txt, in the spirit of x/arch's
// decode.txt: one line per encoder call as the generator makes it, with
// the word the encoder gives and x/arch's disassembly of that word. A
// change to an encoder shows as a change of its line, in both columns.
const encodeGolden = "testdata/encode.txt"

func mustWord(w uint32, err error) uint32 {
	if err != nil {
		panic(err)
	}
	return w
}

// encoderCalls are the encoder calls the trampoline sequence makes (and
// the boundaries of their ranges), named as in the Go source.
func encoderCalls() []struct {
	call string
	word uint32
} {
	return []struct {
		call string
		word uint32
	}{
		{"movewide(true, movZ, x10, 0x1234, 0)", movewide(true, movZ, x10, 0x1234, 0)},
		{"movewide(true, movK, x10, 0xffff, 48)", movewide(true, movK, x10, 0xffff, 48)},
		{"movewide(true, movN, x0, 0, 0)", movewide(true, movN, x0, 0, 0)},
		{"movewide(false, movZ, x1, 0x2, 16)", movewide(false, movZ, x1, 0x2, 16)},
		{"addSubImm(true, sp, sp, 0x40)", mustWord(addSubImm(true, sp, sp, 0x40))},
		{"addSubImm(false, x9, fp, 4095)", mustWord(addSubImm(false, x9, fp, 4095))},
		{"addSubImm(false, sp, sp, 0x1000)", mustWord(addSubImm(false, sp, sp, 0x1000))},
		{"ldstImm64(false, x0, sp, 8)", mustWord(ldstImm64(false, x0, sp, 8))},
		{"ldstImm64(true, x19, sp, 32760)", mustWord(ldstImm64(true, x19, sp, 32760))},
		{"stpPre(fp, lr, sp)", stpPre(fp, lr, sp)},
		{"ldpPost(x19, x20, sp)", ldpPost(x19, x20, sp)},
		{"movReg(x20, x0)", movReg(x20, x0)},
		{"movSP(fp, sp)", movSP(fp, sp)},
		{"blr(x10)", blr(x10)},
		{"ret(lr)", ret(lr)},
		{"ret(x9)", ret(x9)},
		{"bl(-4)", bl(-4)},
		{"bl(128<<20 - 4)", bl(128<<20 - 4)},
		{"adr(x10, 16)", adr(x10, 16)},
		{"cbz(x0, 3)", cbz(x0, 3)},
		{"cbnz(x0, -2)", cbnz(x0, -2)},
		{"lsl(x1, x1, 32)", lsl(x1, x1, 32)},
		{"lsr(x2, x2, 8)", lsr(x2, x2, 8)},
		{"insnNOP", insnNOP},
		{"insnBTIJC", insnBTIJC},
		{"insnBrk100", insnBrk100},
	}
}

func TestEncodeGolden(t *testing.T) {
	var got strings.Builder
	got.WriteString("# encoder call\tword\tx/arch arm64asm (GNU syntax)\n")
	for _, c := range encoderCalls() {
		in, err := arm64asm.Decode(binary.LittleEndian.AppendUint32(nil, c.word))
		text := "?"
		if err != nil {
			t.Errorf("%s = %08x: x/arch cannot decode it: %v", c.call, c.word, err)
		} else {
			text = strings.TrimSpace(arm64asm.GNUSyntax(in))
		}
		fmt.Fprintf(&got, "%s\t%08x\t%s\n", c.call, c.word, text)
	}
	golden.Check(t, encodeGolden, got.String(), "go test ./arch/arm64 -run TestEncodeGolden")
}
