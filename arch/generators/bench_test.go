package generators

import (
	"testing"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// benchItem is one trampoline to render: a plan and its addresses.
type benchItem struct {
	plan  *trampoline.Plan
	addrs arch.Addrs
	base  arch.Addrs // the placeholder addresses scramble starts from
}

// benchItems are the final plans of every corpus case that leaves an
// image on the default profile, with placeholder addresses.
func benchItems(b *testing.B, g *Generator) []*benchItem {
	b.Helper()
	corpus, err := cases.Corpus()
	if err != nil {
		b.Fatal(err)
	}
	prof, _ := trampoline.LookupProfile(trampoline.DefaultProfile)
	a, _ := trampoline.LookupArch(g.Arch)
	var out []*benchItem
	for _, c := range corpus {
		res, err := cases.Replay(c, prof, a, SizeFunc(g.Arch))
		if err != nil || res.Final == nil || !res.Final.HasImage() {
			continue
		}
		p := res.Final.Plan()
		out = append(out, &benchItem{plan: p, addrs: g.Placeholder(p), base: g.Placeholder(p)})
	}
	if len(out) < 20 {
		b.Fatalf("only %d corpus cases leave an image", len(out))
	}
	return out
}

// scramble gives the item fresh pointers, as a new attach in the same
// boot would have: another image page, im, traced function, struct
// bpf_prog and bpf_func per program (program code above the image, in the
// same BPF area); the helper symbols stay. One time in four the image and
// the programs' code lie 1 GiB further (on arm64 the helper calls are
// then indirect).
func (it *benchItem) scramble(x *uint64) {
	next := func() uint64 { // xorshift64
		*x ^= *x << 13
		*x ^= *x >> 7
		*x ^= *x << 17
		return *x
	}
	far := uint64(0)
	if next()%4 == 0 {
		far = 1 << 30
	}
	it.addrs.Image = it.base.Image + far + next()%(64<<20)&^0xfff
	it.addrs.Im = it.base.Im + next()%(1<<30)&^0x3f
	it.addrs.Func = it.base.Func + next()%(16<<20)&^0xf
	for n, pa := range it.base.Progs {
		it.addrs.Progs[n] = arch.ProgAddrs{
			Prog:    pa.Prog + next()%(1<<30)&^0xff,
			BPFFunc: it.addrs.Image + 0x2000 + next()%(32<<20)&^0x3f,
		}
	}
}

// BenchmarkGenerateCheck renders a trampoline with addresses and runs the
// structural checker on it (the goal: 100k/s per core).
//
//   - fresh-addrs: the corpus shapes in turn, each time with new pointers
//     (scramble), so no two images are alike; split into the everyday
//     trampolines (at most 8 links: 1-6 in the corpus, 100-600 bytes) and
//     the corpus's full ones (34-37 links, 2.4-3.5 KiB), which would
//     otherwise make up half the bytes;
//   - placeholder: every corpus shape with fixed placeholder addresses, as
//     `tramp gen` renders them.
func BenchmarkGenerateCheck(b *testing.B) {
	for _, an := range []string{"x86_64", "arm64"} {
		g, _ := For(an)
		for _, class := range []struct {
			name     string
			min, max int
		}{{"links<=8", 0, 8}, {"links>=34", 34, 1 << 30}} {
			b.Run(an+"/fresh-addrs/"+class.name, func(b *testing.B) {
				var items []*benchItem
				for _, it := range benchItems(b, g) {
					if n := links(it.plan); n >= class.min && n <= class.max {
						items = append(items, it)
					}
				}
				if len(items) == 0 {
					b.Fatalf("no corpus shape with %s", class.name)
				}
				x := uint64(0x9e3779b97f4a7c15)
				b.ReportAllocs()
				b.ResetTimer()
				code := 0
				for i := 0; i < b.N; i++ {
					it := items[i%len(items)]
					it.scramble(&x)
					im, err := g.Generate(it.plan, it.addrs)
					if err != nil {
						b.Fatal(err)
					}
					if err := g.Check(im, it.addrs.Image, it.plan); err != nil {
						b.Fatal(err)
					}
					code += len(im.Code)
				}
				report(b, code)
			})
		}
		b.Run(an+"/placeholder", func(b *testing.B) {
			items := benchItems(b, g)
			b.ReportAllocs()
			b.ResetTimer()
			code := 0
			for i := 0; i < b.N; i++ {
				it := items[i%len(items)]
				im, err := g.Generate(it.plan, it.base)
				if err != nil {
					b.Fatal(err)
				}
				if err := g.Check(im, it.base.Image, it.plan); err != nil {
					b.Fatal(err)
				}
				code += len(im.Code)
			}
			report(b, code)
		})
	}
}

// links counts a plan's list entries (an fsession counts twice).
func links(p *trampoline.Plan) int { return len(p.Fentry) + len(p.Fexit) + len(p.ModReturn) }

// BenchmarkGenerate: rendering alone, fresh addresses each time.
func BenchmarkGenerate(b *testing.B) {
	for _, an := range []string{"x86_64", "arm64"} {
		g, _ := For(an)
		b.Run(an, func(b *testing.B) {
			items := benchItems(b, g)
			x := uint64(0x9e3779b97f4a7c15)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				it := items[i%len(items)]
				it.scramble(&x)
				if _, err := g.Generate(it.plan, it.addrs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// report adds trampolines per second and the mean code size to a
// benchmark's line.
func report(b *testing.B, code int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "tramps/s")
	}
	b.ReportMetric(float64(code)/float64(b.N), "code-B/op")
}
