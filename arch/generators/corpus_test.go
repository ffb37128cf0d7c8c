package generators

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/arm64"
	"github.com/bpftramp/tramp/arch/riscv64"
	"github.com/bpftramp/tramp/arch/s390x"
	"github.com/bpftramp/tramp/arch/x86"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// Every image generated for the corpus, on every profile of each arch and
// in each placeholder layout (arm64 also with the image 1 GiB away, so
// that helper calls are indirect), passes its arch's checker, has the
// size pass as its allocation and explains without error (riscv64 also
// with the programs' code beyond a jal's reach). s390x runs on jitArch;
// its generator refuses the plans of kernels it does not model (those
// without the skip NOPs), which are not counted.
func TestCorpusImagesPassChecker(t *testing.T) {
	corpus, err := cases.Corpus()
	require.NoError(t, err)
	layouts := map[string][]func(*trampoline.Plan) arch.Addrs{
		"x86_64":  {x86.PlaceholderAddrs},
		"arm64":   {arm64.PlaceholderAddrs, arm64.PlaceholderAddrsFar},
		"riscv64": {riscv64.PlaceholderAddrs, riscv64.PlaceholderAddrsFar},
		"s390x":   {s390x.PlaceholderAddrs},
	}
	for _, an := range []string{"x86_64", "arm64", "riscv64", "s390x"} {
		g, err := For(an)
		require.NoError(t, err)
		a := jitArch(t, an)
		n := 0
		for _, c := range corpus {
			for _, prof := range c.Profiles() {
				res, err := cases.Replay(c, prof, a, g.Size)
				if err != nil || !res.Final.HasImage() {
					continue
				}
				p := res.Final.Plan()
				if an == "s390x" && !p.SkipNOP {
					continue
				}
				size, err := g.Size(p)
				if err != nil {
					t.Errorf("%s %s/%s: size: %v", an, c.Name, prof.Name, err)
					continue
				}
				for _, layout := range layouts[an] {
					addrs := layout(p)
					im, err := g.Generate(p, addrs)
					if err != nil {
						t.Errorf("%s %s/%s: %v", an, c.Name, prof.Name, err)
						continue
					}
					if im.AllocSize != size || len(im.Code) > size {
						t.Errorf("%s %s/%s: code %d, alloc %d, size pass %d", an, c.Name, prof.Name, len(im.Code), im.AllocSize, size)
					}
					if err := g.Check(im, addrs.Image, p); err != nil {
						t.Errorf("%s %s/%s: %v", an, c.Name, prof.Name, err)
					}
					if _, err := g.Explain(im, addrs.Image); err != nil {
						t.Errorf("%s %s/%s: explain: %v", an, c.Name, prof.Name, err)
					}
					n++
				}
			}
		}
		if n < 40 {
			t.Fatalf("%s: only %d images checked", an, n)
		}
		t.Logf("%s: %d images pass (corpus x profiles x layouts)", an, n)
	}
}

// jitArch is the model's record of an architecture with a BPF JIT. The
// model's s390x is Debian's z10 build, which has none (Arch.NoJIT: every
// tracing program is refused at load, so no plan is ever made); the
// s390x generator models a z196 build of the same source, whose JIT also
// supports fsession.
func jitArch(t testing.TB, name string) *trampoline.Arch {
	t.Helper()
	a, err := trampoline.LookupArch(name)
	require.NoError(t, err)
	if a.Name != "s390x" {
		return a
	}
	c := *a
	c.NoJIT, c.FsessionJIT = false, true
	return &c
}
