package emu

import (
	"testing"
	"time"
)

// benchRun runs a corpus case's image repeatedly.
func benchRun(b *testing.B, name, archName string) {
	t := &testing.T{}
	g, run := generated(t, name, archName)
	e, err := New(g.Setup)
	if err != nil {
		b.Fatal(err)
	}
	if res := e.Run(run); res.Err() != nil {
		b.Fatal(res.Err())
	}
	insns := 0
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		res := e.Run(run)
		insns += res.Insns
	}
	el := time.Since(start)
	b.ReportMetric(float64(insns)/el.Seconds()/1e6, "Minsns/s")
	b.ReportMetric(float64(insns)/float64(b.N), "insns/run")
}

// BenchmarkFsessionRun is one run of the fsession-with-cookie trampoline
// (both phases, the original function, every check).
func BenchmarkFsessionRun(b *testing.B) {
	for _, a := range []string{"x86_64", "arm64", "riscv64", "s390x"} {
		b.Run(a, func(b *testing.B) { benchRun(b, "fsession_cookie", a) })
	}
}

// BenchmarkInsns is instruction throughput on a long trampoline (13
// fentry, 12 fmod_ret and 13 fexit programs).
func BenchmarkInsns(b *testing.B) {
	for _, a := range []string{"x86_64", "arm64", "riscv64", "s390x"} {
		b.Run(a, func(b *testing.B) { benchRun(b, "slots_limit_mixed", a) })
	}
}

// coreLoop is an image that spins n times over trampoline instructions
// (a stack store and load, an address computation, a decrement and a
// conditional branch) and returns: it measures the interpreter without
// stubs.
func coreLoop(archName string, n uint32) Setup {
	s := Setup{Arch: archName, Base: 0xffffffffa0000000, Func: 0xffffffff81a00000}
	switch archName {
	case "x86_64":
		s.OrigEntry = s.Func + 9
		s.Code = []byte{0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x40,
			0xb9, byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24), // mov ecx, n
			0x48, 0x89, 0x45, 0xf8, // mov [rbp-8], rax
			0x48, 0x8b, 0x45, 0xf8, // mov rax, [rbp-8]
			0x48, 0x8d, 0x75, 0xc8, // lea rsi, [rbp-0x38]
			0x48, 0x83, 0xe9, 0x01, // sub rcx, 1
			0x75, 0xee, // jne loop
			0xc9, 0xc3} // leave; ret
	case "arm64":
		s.OrigEntry = s.Func + 8
		for _, w := range []uint32{0xa9bf7bfd, 0x910003fd, 0xd10103ff,
			0xd2800000 | (n&0xffff)<<5 | 10,                            // movz x10, #n
			0xf90007e0, 0xf94007e0, 0x910043e1, 0xd100054a, 0xb5ffff8a, // str, ldr, add, sub, cbnz
			0x910003bf, 0xa8c17bfd, 0xaa0903fe, 0xd65f0120} {
			s.Code = append(s.Code, word(w)...)
		}
	}
	return s
}

// BenchmarkCoreLoop is the interpreter's own speed: emulated
// instructions per second with every memory check on.
func BenchmarkCoreLoop(b *testing.B) {
	for _, a := range []string{"x86_64", "arm64"} {
		b.Run(a, func(b *testing.B) {
			e, err := New(coreLoop(a, 60000))
			if err != nil {
				b.Fatal(err)
			}
			run := Run{MaxInsns: 1 << 20}
			if res := e.Run(run); res.Err() != nil || !res.Completed {
				b.Fatalf("%v (completed %v)", res.Err(), res.Completed)
			}
			insns := 0
			start := time.Now()
			for b.Loop() {
				insns += e.Run(run).Insns
			}
			b.ReportMetric(float64(insns)/time.Since(start).Seconds()/1e6, "Minsns/s")
		})
	}
}
