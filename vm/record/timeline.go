package record

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/recording"
)

// An Era is a run of kernel builds, oldest first, whose real images of
// one case are the same code: every capture's instructions equal, a
// relocated field counting by the symbol it names (arch.DiffBoots), not
// by the boot's address.
type Era struct {
	// Builds are the recordings' build names, oldest first.
	Builds []string
	// Images are the first build's images, one per captured step.
	Images []BootImage
}

// BootImage is one real image with the listing DiffBoots compares.
type BootImage struct {
	Step  int
	Image *arch.Image
	Lines []arch.Line
	// Exact: the generator reproduced the image, so its relocations
	// locate the addresses in it; otherwise the listing has none and the
	// boot's addresses show as differences.
	Exact bool
}

// Timeline groups the recordings of one case on one arch (and one boot
// variant) into eras, in version order: real against real, as a reviewer
// asks "which build changed this image, and how". Each recording's model
// profile is ProfileOf's: only for locating the addresses.
func Timeline(recs []*recording.Recording, c *cases.Case) ([]Era, error) {
	type boot struct {
		rec    *recording.Recording
		v      trampoline.Version
		images []BootImage
		sig    string
	}
	var boots []boot
	for _, rec := range recs {
		if rec.Case != c.Name {
			return nil, fmt.Errorf("timeline of %s: a recording of %s (%s %s)", c.Name, rec.Case, rec.Profile, rec.Arch)
		}
		if rec.Arch != recs[0].Arch || rec.CPU != recs[0].CPU || rec.KASLR != recs[0].KASLR || !slices.Equal(rec.Append, recs[0].Append) {
			return nil, fmt.Errorf("timeline of %s: %s is another arch or boot variant than %s", c.Name, recording.PathOf("", rec), recording.PathOf("", recs[0]))
		}
		v, err := trampoline.ParseVersion(rec.Kernel.Release)
		if err != nil {
			if v, err = trampoline.ParseVersion(strings.TrimPrefix(rec.Profile, "debian-")); err != nil {
				return nil, fmt.Errorf("%s: no kernel version: %w", recording.PathOf("", rec), err)
			}
		}
		b := boot{rec: rec, v: v}
		for _, capt := range rec.Captures {
			bi, err := bootImage(rec, c, capt)
			if err != nil {
				return nil, fmt.Errorf("%s step %d: %w", recording.PathOf("", rec), capt.Step, err)
			}
			b.images = append(b.images, bi)
			b.sig += fmt.Sprintf("step %d\n%s", bi.Step, arch.Signature(bi.Image, bi.Lines))
		}
		boots = append(boots, b)
	}
	slices.SortStableFunc(boots, func(a, b boot) int { return a.v.Compare(b.v) })
	var eras []Era
	last := ""
	for i, b := range boots {
		if i == 0 || b.sig != last {
			eras = append(eras, Era{Images: b.images})
		}
		eras[len(eras)-1].Builds = append(eras[len(eras)-1].Builds, b.rec.Profile)
		last = b.sig
	}
	return eras, nil
}

// bootImage lists one captured image, with the relocations of the
// generator's image when it reproduces the kernel's (compareImageWith).
func bootImage(rec *recording.Recording, c *cases.Case, capt guestapi.Capture) (BootImage, error) {
	bi := BootImage{Step: capt.Step}
	real, err := hex.DecodeString(capt.Bytes)
	if err != nil {
		return bi, fmt.Errorf("bad image bytes: %w", err)
	}
	g, err := generators.For(rec.Arch)
	if err != nil {
		return bi, err
	}
	if r := compareImageWith(rec, c, capt, nil); r.OK {
		bi.Image = &arch.Image{Code: real[:r.Len], Frame: r.img.Frame, Relocs: r.img.Relocs, Labels: r.img.Labels}
		bi.Exact = true
	} else {
		// Without the model's length the tail (zeroes, brk) is listed too.
		bi.Image = &arch.Image{Code: trimTail(rec.Arch, real)}
	}
	if bi.Lines, err = g.Explain(bi.Image, capt.Addr); err != nil {
		return bi, err
	}
	return bi, nil
}

// trimTail drops what follows the code of an image the generator did not
// reproduce: x86's zero fill, arm64's brk #0x100 fill.
func trimTail(archName string, b []byte) []byte {
	switch archName {
	case "x86_64":
		return bytes.TrimRight(b, "\x00")
	case "arm64":
		brk := []byte{0x00, 0x20, 0x20, 0xd4}
		for len(b) >= 4 && bytes.Equal(b[len(b)-4:], brk) {
			b = b[:len(b)-4]
		}
	}
	return b
}

// WriteTimeline prints the eras: the first build of each, the builds it
// spans, and the instruction diff from the era before, per image.
func WriteTimeline(w io.Writer, c *cases.Case, archName string, eras []Era, context int) {
	n := 0
	for _, e := range eras {
		n += len(e.Builds)
	}
	fmt.Fprintf(w, "case %s on %s: %d builds, %d distinct image sets\n", c.Name, archName, n, len(eras))
	for i, e := range eras {
		span := e.Builds[0]
		if len(e.Builds) > 1 {
			span += " .. " + e.Builds[len(e.Builds)-1]
		}
		fmt.Fprintf(w, "\n== %s (%d builds: %s)\n", span, len(e.Builds), strings.Join(trimNames(e.Builds), " "))
		if i == 0 {
			for _, im := range e.Images {
				fmt.Fprintf(w, "   step %d: %d bytes%s\n", im.Step, len(im.Image.Code), exactNote(im))
			}
			continue
		}
		prev := eras[i-1]
		if len(prev.Images) != len(e.Images) {
			fmt.Fprintf(w, "   %d images, %d before\n", len(e.Images), len(prev.Images))
		}
		for k, im := range e.Images {
			if k >= len(prev.Images) {
				fmt.Fprintf(w, "   step %d: %d bytes, new%s\n", im.Step, len(im.Image.Code), exactNote(im))
				continue
			}
			p := prev.Images[k]
			d := arch.DiffBoots(p.Image, p.Lines, im.Image, im.Lines)
			var sb strings.Builder
			changed := arch.WriteDiff(&sb, d, context)
			if changed == 0 {
				fmt.Fprintf(w, "   step %d: %d bytes, unchanged\n", im.Step, len(im.Image.Code))
				continue
			}
			fmt.Fprintf(w, "   step %d: %d -> %d bytes, %d instructions differ%s\n", im.Step, len(p.Image.Code), len(im.Image.Code), changed, exactNote(im))
			fmt.Fprintf(w, "   --- %s  +++ %s\n", prev.Builds[len(prev.Builds)-1], e.Builds[0])
			for _, l := range strings.SplitAfter(sb.String(), "\n") {
				if l != "" {
					fmt.Fprint(w, "   "+l)
				}
			}
		}
	}
}

func exactNote(im BootImage) string {
	if im.Exact {
		return ""
	}
	return " (the generator does not reproduce this image: its addresses are raw)"
}

func trimNames(bs []string) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = strings.TrimPrefix(b, "debian-")
	}
	return out
}
