package trampoline

import (
	"fmt"
	"testing"
)

// The model's own speed: attach and detach on the link model, and the
// Plan the generators take. None of these time anything the kernel does.

// BenchmarkAttachDetach attaches one program of each kind to a
// trampoline that already holds one fentry and one fexit program, then
// detaches it again (each attach runs the load checks once, then the
// link checks and the list update).
func BenchmarkAttachDetach(b *testing.B) {
	for _, arch := range []string{"x86_64", "arm64"} {
		for _, k := range []Kind{KindFentry, KindFexit, KindFmodRet, KindFsession} {
			b.Run(arch+"/"+k.String(), func(b *testing.B) {
				tr := newTr(b, DefaultProfile, arch, "bpf_fentry_test1")
				for _, p := range []*Prog{{Name: "e0", Kind: KindFentry}, {Name: "x0", Kind: KindFexit}} {
					if _, err := tr.Attach(p); err != nil {
						b.Fatal(err)
					}
				}
				p := &Prog{Name: "p", Kind: k, Cookie: k == KindFsession}
				for b.Loop() {
					l, err := tr.Attach(p)
					if err != nil {
						b.Fatal(err)
					}
					if err := tr.Detach(l); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkFillSlots attaches fentry programs until the trampoline
// refuses one (E2BIG at the profile's slot limit), then detaches them
// all: the worst case of the list bookkeeping.
func BenchmarkFillSlots(b *testing.B) {
	progs := make([]*Prog, 64)
	for i := range progs {
		progs[i] = &Prog{Name: fmt.Sprintf("e%d", i), Kind: KindFentry}
	}
	for _, arch := range []string{"x86_64", "arm64"} {
		b.Run(arch, func(b *testing.B) {
			attached := 0
			for b.Loop() {
				tr := newTr(b, DefaultProfile, arch, "bpf_fentry_test1")
				var links []*Link
				for _, p := range progs {
					l, err := tr.Attach(p)
					if err != nil {
						break
					}
					links = append(links, l)
				}
				attached = len(links)
				for _, l := range links {
					if err := tr.Detach(l); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(attached), "links")
		})
	}
}

// BenchmarkPlan computes the generator input for a trampoline with an
// fentry, an fexit, an fmod_ret and a cookie-using fsession program.
func BenchmarkPlan(b *testing.B) {
	for _, arch := range []string{"x86_64", "arm64"} {
		b.Run(arch, func(b *testing.B) {
			tr := newTr(b, DefaultProfile, arch, "bpf_modify_return_test")
			for _, p := range []*Prog{{Name: "e", Kind: KindFentry}, {Name: "x", Kind: KindFexit},
				{Name: "m", Kind: KindFmodRet}, {Name: "s", Kind: KindFsession, Cookie: true}} {
				if _, err := tr.Attach(p); err != nil {
					b.Fatalf("attach %s: %v", p.Name, err)
				}
			}
			for b.Loop() {
				if tr.Plan() == nil {
					b.Fatal("no plan")
				}
			}
		})
	}
}
