package generators

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/x86"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/cmd/tramp-guest/bpfobs"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/record"
)

// testdata is the corpus's recordings from real kernels.
var testdata = filepath.Join("..", "..", "cases", "testdata")

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
	}
	return 0, false
}

// render generates the plan with the recording's addresses. The values the
// kernel does not export (struct bpf_tramp_image *im, each struct
// bpf_prog *) are read from the real image at the fields where our image
// puts them, and the image rendered again, until nothing changes.
func render(t *testing.T, rec *record.Recording, c bpfobs.Capture, plan *trampoline.Plan, real []byte) (*arch.Image, error) {
	g, err := For(rec.Arch)
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
	head, _ := hex.DecodeString(c.TargetHead)
	gen := g.Generate
	if rec.Arch == "x86_64" {
		feat := x86.Debian
		feat.EndbrAtFunc = bytes.HasPrefix(head, []byte{0xf3, 0x0f, 0x1e, 0xfa}) || bytes.HasPrefix(head, []byte{0x0f, 0x1f, 0x40, 0xd6})
		gen = func(p *trampoline.Plan, a arch.Addrs) (*arch.Image, error) { return x86.Generate(p, feat, a) }
	}
	var img *arch.Image
	for range 4 {
		img, err = gen(plan, addrs)
		if err != nil {
			return nil, err
		}
		changed := false
		for _, r := range img.Relocs {
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
			if v, ok := extract(rec.Arch, real, r); ok && v != r.Value {
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

// planAt replays the case up to and including step, as the kernel did.
func planAt(t *testing.T, c *cases.Case, rec *record.Recording, step int) (*trampoline.Plan, error) {
	prof, err := trampoline.LookupProfile(rec.Profile)
	if err != nil {
		return nil, err
	}
	a, err := trampoline.LookupArch(rec.Arch)
	if err != nil {
		return nil, err
	}
	target := c.Target
	target.BTFID = rec.Start.BTFIDs[c.Target.Name]
	tr := trampoline.New(prof, a, target)
	tr.SizeFunc = SizeFunc(a.Name)
	links := map[*trampoline.Prog]*trampoline.Link{}
	for i := 0; i <= step && i < len(c.Steps); i++ {
		st := c.Steps[i]
		switch st.Op {
		case cases.OpAttach:
			if l, err := tr.Attach(st.Prog); err == nil {
				links[st.Prog] = l
			}
		case cases.OpDetach:
			if l := links[st.Prog]; l != nil {
				if err := tr.Detach(l); err != nil {
					return nil, err
				}
				delete(links, st.Prog)
			}
		}
	}
	if !tr.HasImage() {
		return nil, fmt.Errorf("the model has no image after step %d", step)
	}
	return tr.Plan(), nil
}

// TestRecordedImages renders the model's plan for every image captured
// from a real kernel, with that kernel's addresses, and compares the code
// byte for byte.
func TestRecordedImages(t *testing.T) {
	if _, err := os.Stat(testdata); err != nil {
		t.Fatalf("no recordings at %s: %v", testdata, err)
	}
	recs, err := record.LoadAll(testdata)
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := cases.Corpus()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*cases.Case{}
	for _, c := range corpus {
		byName[c.Name] = c
	}
	matched := map[string]int{}
	total := 0
	for _, rec := range recs {
		c := byName[rec.Case]
		if c == nil {
			t.Errorf("%s/%s/%s: no such case in the corpus", rec.Profile, rec.Arch, rec.Case)
			continue
		}
		for _, capt := range rec.Captures {
			total++
			name := fmt.Sprintf("%s/%s/%s step %d", rec.Profile, rec.Arch, rec.Case, capt.Step)
			real, err := hex.DecodeString(capt.Bytes)
			if err != nil {
				t.Errorf("%s: bad bytes: %v", name, err)
				continue
			}
			plan, err := planAt(t, c, rec, capt.Step)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			img, err := render(t, rec, capt, plan, real)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if len(real) < len(img.Code) || !bytes.Equal(img.Code, real[:len(img.Code)]) {
				t.Errorf("%s: generated %d bytes differ from the kernel's image:\n%s", name, len(img.Code), diffImages(rec.Arch, img, real, capt.Addr))
				continue
			}
			if capt.NextAddr != 0 && capt.NextAddr-capt.Addr < uint64(img.AllocSize) {
				t.Errorf("%s: the next object starts %d bytes after the image, the predicted allocation is %d", name, capt.NextAddr-capt.Addr, img.AllocSize)
				continue
			}
			if err := checkTail(rec.Arch, img, real); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			matched[rec.Profile+"/"+rec.Arch]++
		}
	}
	n := 0
	keys := make([]string, 0, len(matched))
	for k := range matched {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%s: %d images byte-exact", k, matched[k])
		n += matched[k]
	}
	t.Logf("%d of %d recorded images reproduced byte for byte", n, total)
	if total == 0 {
		t.Fatal("no recorded images")
	}
}

// checkTail confirms what follows the code: on x86 the 64 bytes of
// BPF_INSN_SAFETY (zero under init_on_alloc), on arm64 brk #0x100 up to the
// size-pass length.
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
	}
	return nil
}

func diffImages(archName string, img *arch.Image, real []byte, base uint64) string {
	g, _ := For(archName)
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
