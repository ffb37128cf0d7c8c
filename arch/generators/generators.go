// Package generators gives one view of every architecture generator, so
// that commands, the VM suite and the link model's size check can pick
// one by name.
package generators

import (
	"fmt"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/arm64"
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
}

var x86Gen = X86(x86.Debian)

// X86 is the x86_64 generator for a set of build and CPU features (the
// ones of a recorded boot: x86.Features.ForBoot).
func X86(feat x86.Features) *Generator {
	return &Generator{
		Arch:        "x86_64",
		Generate:    func(p *trampoline.Plan, a arch.Addrs) (*arch.Image, error) { return x86.Generate(p, feat, a) },
		Placeholder: arch.PlaceholderAddrs,
		Check: func(im *arch.Image, base uint64, _ *trampoline.Plan) error {
			return x86.Check(im, base, feat)
		},
		Explain:  x86.Explain,
		FrameReg: "rbp",
		// The x86 size pass renders with placeholder addresses: every
		// value-dependent field there has the same length as in the real
		// pass.
		Size: func(p *trampoline.Plan) (int, error) {
			im, err := x86.Generate(p, feat, arch.PlaceholderAddrs(p))
			if err != nil {
				return 0, err
			}
			return im.AllocSize, nil
		},
	}
}

var arm64Gen = &Generator{
	Arch:        "arm64",
	Generate:    func(p *trampoline.Plan, a arch.Addrs) (*arch.Image, error) { return arm64.Generate(p, arm64.Debian, a) },
	Size:        arm64.Size,
	Placeholder: arm64.PlaceholderAddrs,
	Check: func(im *arch.Image, base uint64, p *trampoline.Plan) error {
		return arm64.Check(im, base, arm64.ReturnOf(p.Flags&trampoline.FlagSkipFrame != 0))
	},
	Explain:  arm64.Explain,
	FrameReg: "sp",
}

// For returns the generator of an architecture.
func For(archName string) (*Generator, error) {
	switch archName {
	case "x86_64":
		return x86Gen, nil
	case "arm64":
		return arm64Gen, nil
	}
	return nil, fmt.Errorf("no generator for %s (tramp generates x86_64 and arm64)", archName)
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
