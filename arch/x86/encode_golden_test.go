package x86

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/bpftramp/tramp/internal/golden"
)

// encodeGolden is testdata/encode.txt, in the spirit of x/arch's
// decode.txt: one line per emitter call as the generator makes it, with
// the bytes it emits and x/arch's disassembly of them. A change to an
// emitter shows as a change of its line, in both columns.
const encodeGolden = "testdata/encode.txt"

// emitterCalls are the emitter calls the trampoline sequence makes (and
// the boundaries of their forms), named as in the Go source. The image
// sits at 0xffffffffa0000000; call targets are below it.
var emitterCalls = []struct {
	call string
	do   func(e *emitter)
}{
	{"movImm32(true, rax, 0x201)", func(e *emitter) { e.movImm32(true, rax, 0x201) }},
	{"movImm32(true, rax, 0)", func(e *emitter) { e.movImm32(true, rax, 0) }},
	{"movImm32(true, rdi, 0xffffffff)", func(e *emitter) { e.movImm32(true, rdi, 0xffffffff) }},
	{"movImm32(true, rax, 0x81a00000)", func(e *emitter) { e.movImm32(true, rax, 0x81a00000) }},
	{"movImm64(rdi, 0xffff888100100000, im)", func(e *emitter) { e.movImm64(rdi, 0xffff888100100000, "im") }},
	{"movImm64(rsi, 0x1234, -)", func(e *emitter) { e.movImm64(rsi, 0x1234, "") }},
	{"stx(rbx, -0x28)", func(e *emitter) { e.stx(rbx, -0x28) }},
	{"stx(r9, -0x100)", func(e *emitter) { e.stx(r9, -0x100) }},
	{"ldx(rax, -8)", func(e *emitter) { e.ldx(rax, -8) }},
	{"ldx(r8, -0x90)", func(e *emitter) { e.ldx(r8, -0x90) }},
	{"storeImm64(rax, -0x18, 0x201, -)", func(e *emitter) { e.storeImm64(rax, -0x18, 0x201, "") }},
	{"movReg(rbx, rax)", func(e *emitter) { e.movReg(rbx, rax) }},
	{"movReg(rdi, r8)", func(e *emitter) { e.movReg(rdi, r8) }},
	{"lea(rsi, -0x38)", func(e *emitter) { e.lea(rsi, -0x38) }},
	{"lea(rdi, -0x100)", func(e *emitter) { e.lea(rdi, -0x100) }},
	{"call(0xffffffff81200000, __bpf_tramp_enter)", func(e *emitter) { e.call(0xffffffff81200000, "__bpf_tramp_enter") }},
	{"nopsN(5)", func(e *emitter) { e.nopsN(5) }},
	{"nopsN(11)", func(e *emitter) { e.nopsN(11) }},
	{"subRsp(0x48)", func(e *emitter) { e.subRsp(0x48) }},
	{"subRsp(0x100)", func(e *emitter) { e.subRsp(0x100) }},
	{"movStackImm32(-0x10, 0)", func(e *emitter) { e.movStackImm32(-0x10, 0) }},
	{"movStackImm32(-0x100, 0)", func(e *emitter) { e.movStackImm32(-0x100, 0) }},
	{"nopsN(2); nopsN(3); patchJE8(0)", func(e *emitter) { e.nopsN(2); e.nopsN(3); e.patchJE8(0) }},
	{"nopsN(6); nopsN(5); patchJNE32(0, 11)", func(e *emitter) { e.nopsN(6); e.nopsN(5); e.patchJNE32(0, 11) }},
	{"nopsN(3); align(16)", func(e *emitter) { e.nopsN(3); e.align(16) }},
	{"ret(false, -, 0, false)", func(e *emitter) { e.ret(false, "", 0, false) }},
	{"ret(false, -, 0, true)", func(e *emitter) { e.ret(false, "", 0, true) }},
	{"ret(true, __x86_return_thunk, 0xffffffff81e00000, false)", func(e *emitter) {
		e.ret(true, "__x86_return_thunk", 0xffffffff81e00000, false)
	}},
	{"callDepthAccounting() (callDepth on)", func(e *emitter) {
		e.callDepth, e.callDepthVar = true, 0xffffffff82000000
		e.callDepthAccounting()
	}},
}

func TestEncodeGolden(t *testing.T) {
	var got strings.Builder
	got.WriteString("# emitter call\tbytes\tx/arch x86asm (Intel syntax)\n")
	for _, c := range emitterCalls {
		e := &emitter{base: 0xffffffffa0000000}
		c.do(e)
		if e.err != nil {
			t.Errorf("%s: %v", c.call, e.err)
		}
		var asm []string
		for off := 0; off < len(e.code); {
			in, err := x86asm.Decode(e.code[off:], 64)
			if err != nil {
				t.Errorf("%s: x/arch cannot decode % x at +%d: %v", c.call, e.code, off, err)
				break
			}
			asm = append(asm, x86asm.IntelSyntax(in, e.base+uint64(off), nil))
			off += in.Len
		}
		fmt.Fprintf(&got, "%s\t% x\t%s\n", c.call, e.code, strings.Join(asm, "; "))
	}
	golden.Check(t, encodeGolden, got.String(), "go test ./arch/x86 -run TestEncodeGolden")
}
