package record

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/bpftramp/tramp/vm/recording"
	"strings"
	"time"

	"github.com/bpftramp/tramp/arch/x86"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/channel"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/harness"
)

// ShapeBoot is one VM run of a shapes job (bpfobs.RunShapes) on one
// kernel and arch: trampolines of real kernel functions chosen by their
// BTF prototype.
type ShapeBoot struct {
	Machine
	Job guestapi.ShapeJob
	// OnRecording is called with each completed shape recording (Source
	// filled in), as soon as the guest finished it.
	OnRecording func(*recording.Recording)
}

// ShapeResult is what a shapes boot produced.
type ShapeResult struct {
	Result
	// Scan is the guest's account of the BTF walk (nil if it never came).
	Scan *guestapi.ShapeScan
	// Shapes describes every recording by case name.
	Shapes map[string]guestapi.Shape
}

// ShapeJobFor is the guest job of a shapes run.
func ShapeJobFor(j guestapi.ShapeJob) (guestapi.Job, error) {
	params, err := json.Marshal(j)
	if err != nil {
		return guestapi.Job{}, err
	}
	return guestapi.Job{Kind: guestapi.JobShapes, Params: params}, nil
}

// RunShapes boots the kernel once and runs the shapes job in it. Every
// recording it returns has its Source; the result holds what was
// completed also when err is set.
func RunShapes(ctx context.Context, b ShapeBoot) (*ShapeResult, error) {
	job, err := ShapeJobFor(b.Job)
	if err != nil {
		return nil, err
	}
	b.Profile = b.profile()
	out := &ShapeResult{Shapes: map[string]guestapi.Shape{}}
	var convErr error
	col := &collector{b: &Boot{Machine: b.Machine, OnRecording: func(r *recording.Recording) {
		sh, ok := out.Shapes[r.Case]
		if !ok {
			r.Errors = append(r.Errors, "no shape record for this case")
		} else if err := ShapeRecording(r, sh); err != nil && convErr == nil {
			convErr = fmt.Errorf("%s: %w", r.Case, err)
		}
		if b.OnRecording != nil {
			b.OnRecording(r)
		}
	}}}
	onRecord := func(r channel.Record) {
		switch r.Kind {
		case guestapi.KindShapeScan:
			var s guestapi.ShapeScan
			if err := r.Decode(&s); err == nil {
				out.Scan = &s
			} else if col.err == nil {
				col.err = fmt.Errorf("record %d (%s): %w", r.Seq, r.Kind, err)
			}
			return
		case guestapi.KindShape:
			var s guestapi.Shape
			if err := r.Decode(&s); err == nil {
				out.Shapes[s.Name] = s
			} else if col.err == nil {
				col.err = fmt.Errorf("record %d (%s): %w", r.Seq, r.Kind, err)
			}
			return
		}
		col.onRecord(r)
	}
	res, err := harness.Run(ctx, b.harnessBoot(job, 20*time.Minute, col, onRecord, nil))
	col.finish()
	out.Recordings = col.out
	if res != nil {
		out.fill(res)
		for _, r := range out.Recordings {
			r.Kernel.Accel = res.Accel
		}
	}
	if err == nil {
		err = col.err
	}
	if err == nil {
		err = convErr
	}
	return out, err
}

// ShapeRecording completes the recording of one shape: it writes the
// equivalent case text into Source (its steps are the ones the kernel
// ran, in order), points every step's Line at its line in that text, and
// drops what a shape does not need (the vulnerability list, the same in
// every recording of a boot, but for the states the x86 return thunk and
// call-depth accounting follow from: X86Features reads them).
func ShapeRecording(rec *recording.Recording, sh guestapi.Shape) error {
	src, first, err := ShapeSource(rec.Profile, rec.Arch, sh, rec.Steps)
	if err != nil {
		return err
	}
	for i := range rec.Steps {
		rec.Steps[i].Line = first + i
	}
	rec.Source = src
	keep := map[string]string{}
	for _, k := range x86.BootVulnerabilities {
		if v, ok := rec.Kernel.Vulnerabilities[k]; ok {
			keep[k] = v
		}
	}
	rec.Kernel.Vulnerabilities = nil
	if len(keep) > 0 {
		rec.Kernel.Vulnerabilities = keep
	}
	c, err := ShapeCase(rec)
	if err != nil {
		return err
	}
	trimShapeCaptures(rec, c)
	return nil
}

// shapeTailKeep is how many bytes of an arm64 shape capture are kept
// after the end of the image's allocation.
const shapeTailKeep = 64

// trimShapeCaptures cuts arm64 captures that the generator reproduces
// byte for byte to the allocation the size pass predicts plus
// shapeTailKeep bytes. An arm64 image is followed by brk words up to the
// end of its allocation and free pack memory is brk-filled too, so
// trimCapture cannot see where the image ends and keeps the whole 4096
// byte read; most of a shape recording would be that fill. A capture the
// model does not reproduce keeps every byte, for diagnosis.
func trimShapeCaptures(rec *recording.Recording, c *cases.Case) {
	if rec.Arch != "arm64" || rec.Start == nil {
		return
	}
	for i := range rec.Captures {
		capt := &rec.Captures[i]
		real, err := hex.DecodeString(capt.Bytes)
		if err != nil {
			continue
		}
		plan, err := planAt(c, rec, capt.Step)
		if err != nil {
			continue
		}
		img, err := render(rec, *capt, plan, real)
		if err != nil || len(real) < len(img.Code) || !bytes.Equal(img.Code, real[:len(img.Code)]) || checkTail(rec.Arch, img, real) != nil {
			continue
		}
		if end := img.AllocSize + shapeTailKeep; end < len(real) {
			capt.Bytes = hex.EncodeToString(real[:end])
		}
	}
}

// ShapeSource writes the case text of a shape: a comment naming the
// bucket and mix, the kernel and arch, the target with its prototype and
// BTF id (and error-inject when the function is on the kernel's error
// injection list), one prog line per program of the mix, and one
// attach or detach line per step. It returns the text and the line
// number of the first step.
func ShapeSource(profile, arch string, sh guestapi.Shape, steps []guestapi.Step) (string, int, error) {
	if sh.Func == "" || sh.Proto == "" {
		return "", 0, fmt.Errorf("shape %q has no function or prototype", sh.Name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# shape %s, mix %s (tramp vm shapes)\n", sh.Bucket, sh.Mix)
	if _, err := trampoline.LookupProfile(profile); err == nil {
		fmt.Fprintf(&b, "kernel %s\n", profile)
	} else {
		// A kernel line names table profiles only; a served build or a
		// rebuild is modelled from the facts its recording carries.
		fmt.Fprintf(&b, "# recorded on %s, modelled from its facts\n", profile)
	}
	fmt.Fprintf(&b, "arch %s\n", arch)
	funcs := sh.Funcs
	if len(funcs) == 0 {
		funcs = []guestapi.ShapeFunc{{Func: sh.Func, BTFID: sh.BTFID, Proto: sh.Proto, ErrorInject: sh.ErrorInject}}
	}
	for _, f := range funcs {
		if f.Func == "" || f.Proto == "" {
			return "", 0, fmt.Errorf("shape %q has a function without a name or prototype", sh.Name)
		}
		fmt.Fprintf(&b, "target %s%s", f.Func, f.Proto)
		if f.BTFID != 0 {
			fmt.Fprintf(&b, " btf-id=%d", f.BTFID)
		}
		if f.ErrorInject {
			b.WriteString(" error-inject")
		}
		b.WriteString("\n")
	}
	for _, p := range sh.Progs {
		mp, err := p.Model()
		if err != nil {
			return "", 0, fmt.Errorf("shape %s: %w", sh.Name, err)
		}
		b.WriteString(cases.FormatProg(mp) + "\n")
	}
	first := 3 + len(funcs) + len(sh.Progs) + 1
	for _, s := range steps {
		if s.Op != "attach" && s.Op != "detach" {
			return "", 0, fmt.Errorf("shape %s: step %d is %q, shapes only attach and detach", sh.Name, s.Step, s.Op)
		}
		fmt.Fprintf(&b, "%s %s\n", s.Op, s.Prog)
	}
	return b.String(), first, nil
}

// ShapeCase parses a recording's Source into its case (named after the
// recording).
func ShapeCase(rec *recording.Recording) (*cases.Case, error) {
	if rec.Source == "" {
		return nil, fmt.Errorf("%s: no source", rec.Case)
	}
	return cases.Parse(rec.Case+".tramp", []byte(rec.Source))
}
