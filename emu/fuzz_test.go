package emu

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

var argTypes = []string{"u8", "s16", "s32", "u64", "ptr", "struct4", "struct8", "struct12", "struct16", "u128"}

// randomCase writes a random valid-looking case: a prototype of up to 12
// arguments, up to 8 programs of random kinds and flags, attaches and
// detaches, and a run at the end.
func randomCase(r *rand.Rand) string {
	var b strings.Builder
	n := r.IntN(13)
	var args []string
	for range n {
		args = append(args, argTypes[r.IntN(len(argTypes))])
	}
	ret := []string{"s32", "u64", "u8", "void", "ptr"}[r.IntN(5)]
	fmt.Fprintf(&b, "target f(%s) -> %s fmodret\n", strings.Join(args, ", "), ret)
	np := 1 + r.IntN(8)
	for i := range np {
		kind := []string{"fentry", "fexit", "fmod_ret", "fsession"}[r.IntN(4)]
		fmt.Fprintf(&b, "prog p%d %s", i, kind)
		if kind == "fsession" && r.IntN(2) == 0 {
			b.WriteString(" cookie")
		}
		if r.IntN(4) == 0 {
			b.WriteString(" ip")
		}
		if r.IntN(3) == 0 {
			fmt.Fprintf(&b, " link-cookie=%d", r.Uint64()>>r.IntN(64))
		}
		if kind == "fmod_ret" && r.IntN(3) == 0 {
			fmt.Fprintf(&b, " returns=%d", r.IntN(5)-2)
		}
		b.WriteString("\n")
	}
	attached := map[int]bool{}
	for range 1 + r.IntN(12) {
		i := r.IntN(np)
		if attached[i] && r.IntN(2) == 0 {
			fmt.Fprintf(&b, "detach p%d\n", i)
			delete(attached, i)
		} else if !attached[i] {
			fmt.Fprintf(&b, "attach p%d\n", i)
			attached[i] = true
		}
		if r.IntN(4) == 0 {
			b.WriteString("run\n")
		}
	}
	b.WriteString("run\n")
	return b.String()
}

// knownWide counts runs that failed a check because of narrowWideArgs.
var knownWide int

// narrowWideArgs: an x86 profile that counts one argument slot for a
// non-struct argument wider than 8 bytes (before 7.2.8) while save_args
// stores all of its words; the extra word lands above the argument
// slots (over the saved rbp when no return slot sits there).
func narrowWideArgs(prof *trampoline.Profile, a *trampoline.Arch, p *trampoline.Plan) bool {
	if a.Name != "x86_64" || prof.X86WideArgSlots {
		return false
	}
	for i, size := range p.Func.ArgSize {
		if size > 8 && p.Func.ArgFlags[i]&trampoline.FmodelStructArg == 0 {
			return true
		}
	}
	return false
}

// checkRandom replays a random case on a profile and arch and runs every
// run step's image; it returns the violations of runs of unmodified
// images.
func checkRandom(t *testing.T, src string, prof *trampoline.Profile, a *trampoline.Arch, mutate func([]byte) []byte, skip map[string]bool) []string {
	c, err := cases.Parse("random.tramp", []byte(src))
	if err != nil {
		return nil
	}
	runs, err := RunSteps(c, prof, a)
	if err != nil {
		return nil
	}
	var out []string
	for _, cr := range runs {
		if cr.Plan == nil {
			continue
		}
		g, err := Generate(cr.Plan, nil, c.Progs)
		if err != nil {
			continue // refused by the generator (for example too many argument slots)
		}
		s := g.Setup
		if mutate != nil {
			s.Code = mutate(s.Code)
		}
		cr.Run.Skip = skip
		cr.Run.MaxInsns = 20000
		res, err := Check(s, cr.Plan, cr.Run)
		if err != nil {
			continue
		}
		if mutate == nil && res.Err() != nil {
			if narrowWideArgs(prof, a, cr.Plan) {
				knownWide++
				continue
			}
			out = append(out, fmt.Sprintf("%s %s line %d: %v", prof.Name, a.Name, cr.Line, res.Err()))
		}
	}
	return out
}

// TestRandomPlans: images of random valid cases, on every profile and
// arch, pass every check and agree with the model, also when programs
// are skipped by their enter helper (recursion).
func TestRandomPlans(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	runs := 0
	for i := 0; i < 300; i++ {
		src := randomCase(r)
		var skip map[string]bool
		if i%3 == 0 {
			skip = map[string]bool{fmt.Sprintf("p%d", r.IntN(8)): true}
		}
		for _, prof := range trampoline.Profiles() {
			for _, a := range trampoline.Arches() {
				if a.Name != "x86_64" && a.Name != "arm64" && a.Name != "riscv64" && a.Name != "s390x" {
					continue
				}
				prof := prof
				if a.Name == "s390x" {
					prof = s390xJIT(prof)
				}
				runs++
				for _, p := range checkRandom(t, src, prof, a, nil, skip) {
					t.Errorf("%s (skip %v)\n%s", p, skip, src)
				}
			}
		}
		if t.Failed() {
			break
		}
	}
	t.Logf("%d random case/profile/arch combinations; %d runs on pre-7.2.8 x86 profiles with a non-struct argument wider than 8 bytes failed a check (the extra argument word overwrites the frame, see narrowWideArgs)",
		runs, knownWide)
}

// FuzzEmu: random plans, random bytes as code and random corruptions of
// generated images never panic the emulator or the verifier.
func FuzzEmu(f *testing.F) {
	f.Add(uint64(1), uint8(0), []byte{0x55, 0xc3})
	f.Add(uint64(7), uint8(1), []byte{0xfd, 0x7b, 0xbf, 0xa9, 0xc0, 0x03, 0x5f, 0xd6})
	f.Add(uint64(42), uint8(2), []byte{0x00, 0x01, 0x02})
	f.Add(uint64(3), uint8(3), []byte{0xe8, 0, 0, 0, 0})
	f.Add(uint64(5), uint8(16), []byte{0x7d, 0x71, 0x06, 0xe4, 0xef, 0x00, 0x00, 0x00, 0x82, 0x80})
	f.Add(uint64(9), uint8(18), []byte{0x13, 0x05, 0x02, 0x82})
	for _, name := range []string{"frame", "origstack-EXPOLINE"} {
		if b, err := os.ReadFile(filepath.Join("testdata", "s390x", name+".bin")); err == nil {
			f.Add(uint64(11), uint8(32), b)
			f.Add(uint64(13), uint8(34), b[:16])
		}
	}
	f.Fuzz(func(t *testing.T, seed uint64, mode uint8, data []byte) {
		r := rand.New(rand.NewPCG(seed, uint64(mode)))
		// Bit 0 picks x86_64 or arm64, bit 4 riscv64, bit 5 s390x; bits
		// 1-2 the mode, bit 3 the skip.
		archName := []string{"x86_64", "arm64"}[mode&1]
		if mode&16 != 0 {
			archName = "riscv64"
		}
		if mode&32 != 0 {
			archName = "s390x"
		}
		switch mode >> 1 & 3 {
		case 0: // random bytes as the whole image
			s := Setup{Arch: archName, Code: data, Base: 0xffffffffa0000000, Func: 0xffffffff81a00000,
				Symbols: map[string]uint64{trampoline.HelperTrampEnter: 0xffffffff81200000, trampoline.HelperProgEnterRecur: 0xffffffff81200100,
					trampoline.HelperProgExitRecur: 0xffffffff81200200, trampoline.HelperTrampExit: 0xffffffff81200300},
				Progs: []Prog{{Name: "p", Kind: trampoline.Kind(r.IntN(4)), Cookie: true, IP: true, BPFFunc: 0xffffffffa0010000}},
				Model: trampoline.FuncModel{NrArgs: 2, ArgSize: []int{8, 16}, ArgFlags: []int{0, 1}, RetSize: 8}}
			s.OrigEntry = s.Func + 9
			e, err := New(s)
			if err != nil {
				return
			}
			res := e.Run(Run{Args: ArgsOf(s.Model, []uint64{1, 2}), MaxInsns: 5000})
			p := &trampoline.Plan{Arch: archName, Func: s.Model, ArgSlots: 3}
			Verify(res, p, &s, &Run{Args: ArgsOf(s.Model, []uint64{1, 2})})
		default: // a random plan, its image corrupted by data
			src := randomCase(r)
			profs := trampoline.Profiles()
			prof := profs[r.IntN(len(profs))]
			a, _ := trampoline.LookupArch(archName)
			if archName == "s390x" {
				prof = s390xJIT(prof)
			}
			mutate := func(code []byte) []byte {
				out := append([]byte(nil), code...)
				for i := 0; i+1 < len(data) && len(out) > 0; i += 2 {
					out[int(data[i])*7%len(out)] ^= data[i+1]
				}
				return out
			}
			checkRandom(t, src, prof, a, mutate, map[string]bool{"p0": mode&8 != 0})
		}
	})
}
