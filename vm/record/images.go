package record

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/recording"
	"strings"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/arch/riscv64"
	"github.com/bpftramp/tramp/arch/s390x"
	"github.com/bpftramp/tramp/arch/x86"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
)

// ImageResult is how one captured image compares with the generator.
type ImageResult struct {
	Step int
	// Len is the generated code length; OK means the kernel's image has
	// exactly these bytes, followed by the predicted tail.
	Len  int
	OK   bool
	Diff string // instruction-level diff or the reason, when not OK
	// img is the generator's image with the kernel's addresses, once
	// rendered (its relocations locate those addresses in the real one).
	img *arch.Image
}

// CompareImages renders the model's plan for every image the recording
// captured, with the kernel's own addresses, and compares code and tail.
// prof is the model profile of the recorded kernel; nil means
// ProfileOf's.
func CompareImages(rec *recording.Recording, c *cases.Case, prof *trampoline.Profile) []ImageResult {
	var out []ImageResult
	for _, capt := range rec.Captures {
		out = append(out, compareImageWith(rec, c, capt, prof))
	}
	return out
}

func compareImage(rec *recording.Recording, c *cases.Case, capt guestapi.Capture) ImageResult {
	return compareImageWith(rec, c, capt, nil)
}

func compareImageWith(rec *recording.Recording, c *cases.Case, capt guestapi.Capture, prof *trampoline.Profile) ImageResult {
	r := ImageResult{Step: capt.Step}
	real, err := hex.DecodeString(capt.Bytes)
	if err != nil {
		r.Diff = fmt.Sprintf("bad image bytes: %v", err)
		return r
	}
	if len(real) == 0 {
		// The guest could not tell which image is live (or read it):
		// its reasons, not a diff against nothing.
		r.Diff = fmt.Sprintf("the guest captured no image of %s: %s", capt.Name, strings.Join(capt.Errors, "; "))
		if len(capt.Errors) == 0 {
			r.Diff = fmt.Sprintf("the guest captured no image of %s", capt.Name)
		}
		return r
	}
	if rec.Start == nil {
		r.Diff = "no start record (symbols unknown)"
		return r
	}
	plan, err := planAtWith(c, rec, capt.Step, captureFunc(c, capt), prof)
	if err != nil {
		r.Diff = err.Error()
		return r
	}
	img, err := render(rec, capt, plan, real)
	if err != nil {
		r.Diff = err.Error()
		return r
	}
	r.Len, r.img = len(img.Code), img
	if len(real) < len(img.Code) || !bytes.Equal(img.Code, real[:len(img.Code)]) {
		r.Diff = fmt.Sprintf("generated %d bytes differ from the kernel's image:\n%s", len(img.Code), diffImages(rec.Arch, img, real, capt.Addr))
		return r
	}
	if capt.NextAddr != 0 && capt.NextAddr-capt.Addr < uint64(img.AllocSize) {
		r.Diff = fmt.Sprintf("the next object starts %d bytes after the image, the predicted allocation is %d", capt.NextAddr-capt.Addr, img.AllocSize)
		return r
	}
	if err := checkTail(rec.Arch, img, real); err != nil {
		r.Diff = err.Error()
		return r
	}
	r.OK = true
	return r
}

// movWideValue reads the value an arm64 movz/movn/movk sequence starting
// at off builds (the forms emit_a64_mov_i64 and emit_addr_mov_i64 use).
func movWideValue(code []byte, off int) (uint64, bool) {
	if off+4 > len(code) {
		return 0, false
	}
	w := binary.LittleEndian.Uint32(code[off:])
	rd := w & 31
	sf := w >> 31
	opc := (w >> 29) & 3
	if (w>>23)&0x3f != 0x25 || opc == 1 {
		return 0, false
	}
	imm := uint64((w >> 5) & 0xffff)
	sh := 16 * uint64((w>>21)&3)
	var v uint64
	switch opc {
	case 2: // movz
		v = imm << sh
	case 0: // movn
		v = ^(imm << sh)
		if sf == 0 {
			v &= 0xffffffff
		}
	default:
		return 0, false
	}
	for o := off + 4; o+4 <= len(code); o += 4 {
		w := binary.LittleEndian.Uint32(code[o:])
		if (w>>23)&0x3f != 0x25 || (w>>29)&3 != 3 || w&31 != rd {
			break
		}
		imm := uint64((w >> 5) & 0xffff)
		sh := 16 * uint64((w>>21)&3)
		v = v&^(0xffff<<sh) | imm<<sh
	}
	return v, true
}

// extract reads the value of relocated field r from a real image.
func extract(archName string, code []byte, r arch.Reloc) (uint64, bool) {
	switch {
	case r.Kind == arch.Imm64 && r.Off+8 <= len(code):
		return binary.LittleEndian.Uint64(code[r.Off:]), true
	case r.Kind == arch.Imm32 && r.Off+4 <= len(code):
		v := uint64(binary.LittleEndian.Uint32(code[r.Off:]))
		if int64(r.Value) < 0 { // sign-extended form
			v = uint64(int64(int32(v)))
		}
		return v, true
	case r.Kind == arch.A64MovWide:
		return movWideValue(code, r.Off)
	case r.Kind == arch.RVImm:
		// The kernel's emit_imm sequence at the field's start, whatever
		// its length (it depends on the value).
		return riscv64.ImmValue(code, r.Off)
	case r.Kind == arch.S390Imm64Pair:
		return s390x.ImmValue(code, r.Off)
	}
	return 0, false
}

// LearnedSyms are the only values render takes from the kernel's own
// bytes: the image struct (im) and each program's struct bpf_prog, which
// the kernel exports nowhere. Everything else comes from the recording's
// symbols and the model, so any other differing byte is a mismatch.
var LearnedSyms = []string{"im", "prog:"}

// isLearned says whether render takes sym's value from the kernel's bytes
// (LearnedSyms: an entry ending in ':' is a prefix).
func isLearned(sym string) bool {
	for _, l := range LearnedSyms {
		if sym == l || strings.HasSuffix(l, ":") && strings.HasPrefix(sym, l) {
			return true
		}
	}
	return false
}

// plausibleHeapPointer says whether v can be a kernel heap pointer of
// arch, 8-byte aligned (kzalloc'd bpf_tramp_image, vmalloc'd bpf_prog): a
// learned value that is not one is left alone, so that the compare shows
// the differing bytes instead of adopting them.
func plausibleHeapPointer(archName string, v uint64) bool {
	if v%8 != 0 {
		return false
	}
	if archName == "arm64" {
		return v>>52 == 0xfff // TTBR1 half, 48- or 52-bit VA
	}
	if archName == "s390x" {
		// One address space from 0: the identity map (kzalloc'd im) low,
		// vmalloc below the kernel image near 4 TiB (bpf_prog).
		return v != 0 && v < 1<<53
	}
	// x86_64: the upper half, 4- or 5-level paging (vmalloc at 0xffa0...
	// with LA57); riscv64: Sv39/Sv48/Sv57 kernel space (Sv48's vmalloc at
	// 0xffff8f80..., linear map at 0xffffaf80...; Sv57's from 0xff1b...).
	return v>>56 == 0xff
}

// render generates the plan with the recording's addresses. The values the
// kernel does not export (struct bpf_tramp_image *im, each struct
// bpf_prog *) are read from the real image at the fields where our image
// puts them, and the image rendered again, until nothing changes.
func render(rec *recording.Recording, c guestapi.Capture, plan *trampoline.Plan, real []byte) (*arch.Image, error) {
	g, err := CaptureGenerator(rec, c)
	if err != nil {
		return nil, err
	}
	addrs := g.Placeholder(plan)
	addrs.Image, addrs.Func = c.Addr, c.TargetAddr
	addrs.Symbols = map[string]uint64{}
	for k, v := range rec.Start.Symbols {
		addrs.Symbols[k] = v
	}
	for _, p := range c.Progs {
		pa := addrs.Progs[p.Name]
		pa.BPFFunc = p.JitedKsym
		addrs.Progs[p.Name] = pa
	}
	gen := g.Generate
	var img *arch.Image
	// riscv64's emit_imm is variable-length: a learned value can move
	// the fields after it, so each round may fix one more of them.
	for range 4 + len(c.Progs) {
		img, err = gen(plan, addrs)
		if err != nil {
			return nil, err
		}
		changed := false
		for _, r := range img.Relocs {
			if !isLearned(r.Sym) {
				continue
			}
			var set func(uint64)
			switch {
			case r.Sym == "im":
				set = func(v uint64) { addrs.Im = v }
			case strings.HasPrefix(r.Sym, "prog:"):
				name := strings.TrimPrefix(r.Sym, "prog:")
				set = func(v uint64) { pa := addrs.Progs[name]; pa.Prog = v; addrs.Progs[name] = pa }
			default:
				continue
			}
			if v, ok := extract(rec.Arch, real, r); ok && v != r.Value && plausibleHeapPointer(rec.Arch, v) {
				set(v)
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	return img, nil
}

// X86Features are the x86 features of the boot a recording comes from:
// Debian's build features with the return thunk and call-depth
// accounting the boot's CPU state implies (x86.Features.ForBoot). Where
// the kernel log named the active return thunk, the two must agree.
// Recordings without the vulnerability list (shape recordings made before
// tramp kept it) are taken as what they are: default boots under TCG,
// whose -cpu max is not affected by any return-thunk mitigation; any other
// boot without it is an error.
func X86Features(rec *recording.Recording) (x86.Features, error) {
	k := rec.Kernel
	if len(k.Vulnerabilities) == 0 {
		if rec.CPU == "" && len(rec.Append) == 0 && k.Accel != "kvm" {
			return x86.Debian, nil
		}
		return x86.Features{}, fmt.Errorf("the recording has no vulnerability list: its CPU features are unknown")
	}
	feat, err := x86.Debian.ForBoot(x86.Boot{Vulnerabilities: k.Vulnerabilities, CPUFamily: k.CPUFamily})
	if err != nil {
		return x86.Features{}, err
	}
	if k.ReturnThunk != "" && feat.Rethunk && feat.ReturnThunk != k.ReturnThunk {
		return x86.Features{}, fmt.Errorf("the kernel log says the active return thunk is %s, the vulnerabilities imply %s", k.ReturnThunk, feat.ReturnThunk)
	}
	if k.ReturnThunk != "" && feat.CallDepth != k.CallDepthTracking {
		return x86.Features{}, fmt.Errorf("the vulnerabilities imply call-depth tracking %v, the kernel log says %v", feat.CallDepth, k.CallDepthTracking)
	}
	return feat, nil
}

// CallThunks are the helpers whose padding the boot filled with a call
// thunk (x86.IsCallThunk), from the padding bytes the guest read. Without
// them the accounting before each call cannot be predicted.
func CallThunks(st *guestapi.Start) (map[string]bool, error) {
	if len(st.Padding) == 0 {
		return nil, fmt.Errorf("call-depth tracking is on but the recording has no padding bytes of the helpers")
	}
	v, ok := st.Symbols[x86.CallDepthVar]
	if !ok {
		return nil, fmt.Errorf("call-depth tracking is on but the recording has no address of %s", x86.CallDepthVar)
	}
	out := map[string]bool{}
	for name, h := range st.Padding {
		pad, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("padding of %s: %v", name, err)
		}
		if x86.IsCallThunk(pad, st.Symbols[name], v) {
			out[name] = true
		}
	}
	return out, nil
}

// BootOf is what the generator must know of a recording's boot: on
// x86_64 its features (X86Features), EndbrAtFunc from the traced
// function's first bytes as captured, and with call-depth tracking the
// helpers the boot gave a call thunk (CallThunks).
func BootOf(rec *recording.Recording) (generators.Boot, error) {
	return bootOf(rec, nil)
}

// bootOf is BootOf with EndbrAtFunc from capt's function when given
// (a case with several targets traces functions of either kind), else
// from the first capture's.
func bootOf(rec *recording.Recording, capt *guestapi.Capture) (generators.Boot, error) {
	b := generators.DebianBoot(rec.Arch)
	if rec.Arch == "riscv64" {
		// The guest records the CPU's ISA string as "isa=..."; nothing a
		// trampoline emits depends on it (riscv64.Features.ForISA).
		if m := rec.Kernel.CPUModel; strings.HasPrefix(m, "isa=") {
			feat, err := b.RISCV64.ForISA(m)
			if err != nil {
				return b, err
			}
			b.RISCV64 = feat
		}
		return b, nil
	}
	if rec.Arch == "s390x" {
		// nospec_uses_trampoline() needs CONFIG_EXPOLINE, and then also
		// depends on the boot (nospectre_v2, the CPU's facilities): no
		// build with it has been measured.
		if st := rec.Kernel.Stated; st != nil && (st.Config["CONFIG_EXPOLINE"] == "y") {
			return b, fmt.Errorf("%s s390x: CONFIG_EXPOLINE=y; whether this boot's trampolines use expolines depends on the boot too, and is not modelled", rec.Profile)
		}
		return b, nil
	}
	if rec.Arch != "x86_64" {
		return b, nil
	}
	feat, err := X86Features(rec)
	if err != nil {
		return b, err
	}
	caps := rec.Captures
	if capt != nil {
		caps = []guestapi.Capture{*capt}
	}
	for _, c := range caps {
		if head, err := hex.DecodeString(c.TargetHead); err == nil && len(head) >= 4 {
			feat.EndbrAtFunc = x86.StartsWithEndbr(head)
			break
		}
	}
	b.X86 = feat
	if feat.CallDepth && rec.Start != nil {
		if b.CallThunks, err = CallThunks(rec.Start); err != nil {
			return b, err
		}
	}
	return b, nil
}

// Generator is the generator for a recording's boot (BootOf): the one
// that renders, sizes and compares its images.
func Generator(rec *recording.Recording) (*generators.Generator, error) {
	b, err := BootOf(rec)
	if err != nil {
		return nil, err
	}
	return generators.ForBoot(b)
}

// CaptureGenerator is Generator for the function of one capture (its
// ENDBR, where the boot's functions differ).
func CaptureGenerator(rec *recording.Recording, capt guestapi.Capture) (*generators.Generator, error) {
	b, err := bootOf(rec, &capt)
	if err != nil {
		return nil, err
	}
	return generators.ForBoot(b)
}

// SizeFunc is the size pass of a recording's boot, for the link model's
// page-size E2BIG (nil when tramp has no generator for the arch).
func SizeFunc(rec *recording.Recording) (func(*trampoline.Plan) (int, error), error) {
	g, err := Generator(rec)
	if err != nil {
		if rec.Arch != "x86_64" {
			return nil, nil
		}
		return nil, err
	}
	return g.Size, nil
}

// captureFunc is the function whose trampoline a capture holds: the
// capture's target where it is one of the case's (recordings of
// single-target cases may name a BPF-program target otherwise), else the
// case's target.
func captureFunc(c *cases.Case, capt guestapi.Capture) string {
	if _, ok := c.LookupTarget(capt.Target); ok {
		return capt.Target
	}
	return c.Target.Name
}

// planAt replays the case up to and including step, as the kernel did,
// and gives the plan of the case's (first) target.
func planAt(c *cases.Case, rec *recording.Recording, step int) (*trampoline.Plan, error) {
	return planAtWith(c, rec, step, c.Target.Name, nil)
}

// planAtWith is planAt for function fn with the model profile given
// (nil: rec.Profile's).
func planAtWith(c *cases.Case, rec *recording.Recording, step int, fn string, prof *trampoline.Profile) (*trampoline.Plan, error) {
	if prof == nil {
		var err error
		if prof, err = ProfileOf(rec); err != nil {
			return nil, err
		}
	}
	a, err := trampoline.LookupArch(rec.Arch)
	if err != nil {
		return nil, err
	}
	sf, err := SizeFunc(rec)
	if err != nil {
		return nil, err
	}
	opt := bootOptions(rec, c)
	opt.SizeFunc, opt.Through = sf, step
	res, err := cases.ReplayWith(c, prof, a, opt)
	if err != nil {
		return nil, err
	}
	tr := res.Model.Trampoline(fn)
	if tr == nil || !tr.HasImage() {
		return nil, fmt.Errorf("the model has no image of %s after step %d", fn, step)
	}
	return tr.Plan(), nil
}

// checkTail confirms what follows the code: on x86 the 64 bytes of
// BPF_INSN_SAFETY (zero under init_on_alloc), on arm64 brk #0x100 up to the
// size-pass length, on riscv64 zero bytes up to the size-pass length
// (bpf_fill_ill_insns: the all-zero parcel is an illegal instruction).
func checkTail(archName string, img *arch.Image, real []byte) error {
	tail := real[len(img.Code):]
	switch archName {
	case "x86_64":
		if len(tail) < 64 || !bytes.Equal(tail[:64], make([]byte, 64)) {
			return fmt.Errorf("the 64 bytes after the code are not zero: % x", tail[:min(len(tail), 64)])
		}
	case "arm64":
		want := (img.AllocSize - len(img.Code)) / 4
		for i := 0; i < want; i++ {
			if len(tail) < 4*i+4 || binary.LittleEndian.Uint32(tail[4*i:]) != 0xd4202000 {
				return fmt.Errorf("word %d after the code is not brk #0x100 (size pass %d, code %d)", i, img.AllocSize, len(img.Code))
			}
		}
		// Free pack memory after the allocation is brk-filled too, so the
		// end of the allocation shows only where the next object starts.
	case "riscv64":
		n := img.AllocSize - len(img.Code)
		if len(tail) < n {
			return fmt.Errorf("the kernel's image ends %d bytes after the code, the size pass is %d bytes longer", len(tail), n)
		}
		for i, b := range tail[:n] {
			if b != 0 {
				return fmt.Errorf("byte %d after the code is %#02x, not the zero fill (size pass %d, code %d)", i, b, img.AllocSize, len(img.Code))
			}
		}
		// Free pack memory is zero-filled too.
	}
	return nil
}

func diffImages(archName string, img *arch.Image, real []byte, base uint64) string {
	g, _ := generators.For(archName)
	n := len(img.Code)
	if len(real) < n {
		n = len(real)
	}
	realImg := &arch.Image{Code: real[:n], Frame: img.Frame, Relocs: img.Relocs, Labels: img.Labels}
	a, _ := g.Explain(realImg, base)
	b, _ := g.Explain(img, base)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- kernel  +++ tramp\n")
	arch.WriteDiff(&sb, arch.Diff(realImg, a, img, b), 2)
	return sb.String()
}
