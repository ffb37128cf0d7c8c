package generators

import (
	"fmt"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/arm64"
	"github.com/bpftramp/tramp/arch/riscv64"
	"github.com/bpftramp/tramp/arch/s390x"
	"github.com/bpftramp/tramp/arch/x86"
	"github.com/bpftramp/tramp/trampoline"
)

// Generator renders, sizes, checks and explains one architecture's
// trampolines, with Debian's build features.
type Generator struct {
	Arch string
	// Generate renders a plan with concrete addresses.
	Generate func(*trampoline.Plan, arch.Addrs) (*arch.Image, error)
	// Size is arch_bpf_trampoline_size: the bytes the kernel allocates.
	Size func(*trampoline.Plan) (int, error)
	// Placeholder invents addresses shaped like a nokaslr boot.
	Placeholder func(*trampoline.Plan) arch.Addrs
	// Check verifies an image's structure for its plan.
	Check func(im *arch.Image, base uint64, p *trampoline.Plan) error
	// Explain annotates an image.
	Explain func(im *arch.Image, base uint64) ([]arch.Line, error)
	// FrameReg names the register frame offsets are relative to.
	FrameReg string
	// OrigEntry is where the traced function at fn goes on past its
	// patched entry: where the image's call of the original function,
	// and a return from a fentry-only image, land.
	OrigEntry func(fn uint64) uint64
}

// Boot is what one boot's trampolines depend on beyond the plan: the
// architecture and, on x86_64, the build and CPU features
// (x86.Features.ForBoot; EndbrAtFunc from the traced function's first
// bytes) and the helpers the boot gave a call thunk (call-depth
// tracking); on riscv64 the build's features (riscv64.Features); on
// s390x the build's and boot's (s390x.Features: expolines). The
// generator of a boot renders, sizes and checks with exactly these, so a
// size pass and the real pass cannot disagree.
type Boot struct {
	Arch       string
	X86        x86.Features
	CallThunks map[string]bool
	RISCV64    riscv64.Features
	S390X      s390x.Features
}

// DebianBoot is a boot of Debian's build under a CPU model that needs no
// return thunk (TCG's -cpu max): x86.Debian on x86_64, riscv64.Debian
// on riscv64, s390x.Debian (no expolines) on s390x.
func DebianBoot(archName string) Boot {
	b := Boot{Arch: archName}
	switch archName {
	case "x86_64":
		b.X86 = x86.Debian
	case "riscv64":
		b.RISCV64 = riscv64.Debian
	case "s390x":
		b.S390X = s390x.Debian
	}
	return b
}

// ForBoot is the generator of one boot: the one constructor every
// command, test and VM comparison uses.
func ForBoot(b Boot) (*Generator, error) {
	switch b.Arch {
	case "x86_64":
		return x86Generator(b.X86, b.CallThunks), nil
	case "arm64":
		return arm64Generator(), nil
	case "riscv64":
		return riscv64Generator(b.RISCV64), nil
	case "s390x":
		return s390xGenerator(b.S390X), nil
	}
	return nil, fmt.Errorf("no generator for %s (tramp generates x86_64, arm64, riscv64 and s390x)", b.Arch)
}

func x86Generator(feat x86.Features, thunks map[string]bool) *Generator {
	placeholder := func(p *trampoline.Plan) arch.Addrs {
		a := x86.PlaceholderAddrs(p)
		a.CallThunks = thunks
		return a
	}
	return &Generator{
		Arch:        "x86_64",
		Generate:    func(p *trampoline.Plan, a arch.Addrs) (*arch.Image, error) { return x86.Generate(p, feat, a) },
		Placeholder: placeholder,
		Check: func(im *arch.Image, base uint64, _ *trampoline.Plan) error {
			return x86.Check(im, base, feat)
		},
		Explain:   x86.Explain,
		FrameReg:  "rbp",
		OrigEntry: func(fn uint64) uint64 { return fn + uint64(x86.PatchSiteEnd(feat)) },
		// The x86 size pass renders with placeholder addresses (and the
		// boot's call thunks): every value-dependent field there has the
		// same length as in the real pass.
		Size: func(p *trampoline.Plan) (int, error) {
			im, err := x86.Generate(p, feat, placeholder(p))
			if err != nil {
				return 0, err
			}
			return im.AllocSize, nil
		},
	}
}

func arm64Generator() *Generator {
	return &Generator{
		Arch:        "arm64",
		Generate:    func(p *trampoline.Plan, a arch.Addrs) (*arch.Image, error) { return arm64.Generate(p, arm64.Debian, a) },
		Size:        arm64.Size,
		Placeholder: arm64.PlaceholderAddrs,
		Check: func(im *arch.Image, base uint64, p *trampoline.Plan) error {
			return arm64.Check(im, base, arm64.ReturnOf(p.Flags&trampoline.FlagSkipFrame != 0))
		},
		Explain:   arm64.Explain,
		FrameReg:  "sp",
		OrigEntry: func(fn uint64) uint64 { return fn + arm64.PatchSiteEnd },
	}
}

// riscv64Generator is the riscv64 generator for a build's features. Its
// frame offsets are relative to s0, the trampoline's frame pointer, and
// the traced function goes on at func+8, past "auipc t0; jalr t0".
func riscv64Generator(feat riscv64.Features) *Generator {
	return &Generator{
		Arch:        "riscv64",
		Generate:    func(p *trampoline.Plan, a arch.Addrs) (*arch.Image, error) { return riscv64.Generate(p, feat, a) },
		Placeholder: riscv64.PlaceholderAddrs,
		// The size pass loads the real struct bpf_prog pointers (emit_imm
		// is variable-length): with placeholder addresses here; Generate's
		// AllocSize is the size pass with the image's own addresses.
		Size: func(p *trampoline.Plan) (int, error) {
			return riscv64.SizeWith(p, feat, riscv64.PlaceholderAddrs(p))
		},
		Check: func(im *arch.Image, base uint64, p *trampoline.Plan) error {
			return riscv64.Check(im, base, riscv64.ReturnOf(p.Flags&trampoline.FlagSkipFrame != 0))
		},
		Explain:   riscv64.Explain,
		FrameReg:  "s0",
		OrigEntry: func(fn uint64) uint64 { return fn + riscv64.PatchSiteEnd },
	}
}

// s390xGenerator is the s390x generator for a build's features. Its
// frame offsets are relative to %r15, the trampoline's stack pointer, and
// the traced function goes on at func+6, past its 6-byte -mfentry site.
// Every s390x instruction has a fixed length, so the size pass needs no
// address.
func s390xGenerator(feat s390x.Features) *Generator {
	return &Generator{
		Arch:        "s390x",
		Generate:    func(p *trampoline.Plan, a arch.Addrs) (*arch.Image, error) { return s390x.Generate(p, feat, a) },
		Placeholder: s390x.PlaceholderAddrs,
		Size:        func(p *trampoline.Plan) (int, error) { return s390x.SizeWith(p, feat) },
		Check:       s390x.Check,
		Explain:     s390x.Explain,
		FrameReg:    "%r15",
		OrigEntry:   func(fn uint64) uint64 { return fn + s390x.PatchSiteEnd },
	}
}

var (
	x86Gen     = x86Generator(x86.Debian, nil)
	arm64Gen   = arm64Generator()
	riscv64Gen = riscv64Generator(riscv64.Debian)
	s390xGen   = s390xGenerator(s390x.Debian)
)

// For returns the generator of an architecture for DebianBoot.
func For(archName string) (*Generator, error) {
	switch archName {
	case "x86_64":
		return x86Gen, nil
	case "arm64":
		return arm64Gen, nil
	case "riscv64":
		return riscv64Gen, nil
	case "s390x":
		return s390xGen, nil
	}
	return nil, fmt.Errorf("no generator for %s (tramp generates x86_64, arm64, riscv64 and s390x)", archName)
}

// SizeFunc is the link model's image sizer for an architecture, or nil
// when tramp has no generator for it (then the model cannot predict the
// page-size E2BIG).
func SizeFunc(archName string) func(*trampoline.Plan) (int, error) {
	g, err := For(archName)
	if err != nil {
		return nil
	}
	return g.Size
}
