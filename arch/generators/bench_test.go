package generators

import (
	"testing"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// benchPlans are the final plans of a few corpus cases: one fsession with a
// cookie, the two-cookie mix with fentry/fexit/ip, and fmod_ret with fexit.
func benchPlans(b *testing.B, archName string) []*trampoline.Plan {
	b.Helper()
	corpus, err := cases.Corpus()
	if err != nil {
		b.Fatal(err)
	}
	prof, _ := trampoline.LookupProfile(trampoline.DefaultProfile)
	a, _ := trampoline.LookupArch(archName)
	var out []*trampoline.Plan
	for _, c := range corpus {
		switch c.Name {
		case "fsession_reattach", "fsession_two_cookies_mixed", "fmod_ret_two_and_fexit":
			res, err := cases.Replay(c, prof, a, nil)
			if err != nil || !res.Final.HasImage() {
				b.Fatalf("%s: %v", c.Name, err)
			}
			out = append(out, res.Final.Plan())
		}
	}
	if len(out) != 3 {
		b.Fatal("benchmark cases missing from the corpus")
	}
	return out
}

// BenchmarkGenerateCheck: render a trampoline with addresses and run the
// structural checker on it, per arch (the goal: 100k/s per core).
func BenchmarkGenerateCheck(b *testing.B) {
	for _, an := range []string{"x86_64", "arm64"} {
		b.Run(an, func(b *testing.B) {
			g, _ := For(an)
			plans := benchPlans(b, an)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := plans[i%len(plans)]
				a := g.Placeholder(p)
				im, err := g.Generate(p, a)
				if err != nil {
					b.Fatal(err)
				}
				if err := g.Check(im, a.Image, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerate: rendering alone.
func BenchmarkGenerate(b *testing.B) {
	for _, an := range []string{"x86_64", "arm64"} {
		b.Run(an, func(b *testing.B) {
			g, _ := For(an)
			plans := benchPlans(b, an)
			a := g.Placeholder(plans[1])
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := g.Generate(plans[1], a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
