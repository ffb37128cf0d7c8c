package record

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/recording"
)

// stepsFor is what the guest emits for a mix when every attach works:
// attach in order, then detach newest first.
func stepsFor(progs []guestapi.Prog) []guestapi.Step {
	var out []guestapi.Step
	for _, p := range progs {
		out = append(out, guestapi.Step{Step: len(out), Op: "attach", Prog: p.Name, Line: len(out) + 1, Errno: "ok"})
	}
	for i := len(progs) - 1; i >= 0; i-- {
		out = append(out, guestapi.Step{Step: len(out), Op: "detach", Prog: progs[i].Name, Line: len(out) + 1, Errno: "ok"})
	}
	return out
}

func TestShapeSourceRoundTrip(t *testing.T) {
	protos := []string{
		"() -> void",
		"(u64, ptr) -> s32",
		"(struct16, u8) -> u64",
		"(u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64, u64) -> ptr",
		"(u128, s16) -> u128",
		"(ptr) -> struct8",
	}
	for _, proto := range protos {
		for mix, progs := range guestapi.ShapeMixes {
			sh := guestapi.Shape{Name: guestapi.ShapeName("some_func", mix), Func: "some_func", BTFID: 4242,
				Proto: proto, Bucket: "b", Mix: mix, ErrorInject: mix == "fmodret", Progs: progs}
			steps := stepsFor(progs)
			src, first, err := ShapeSource("debian-7.2.13", "arm64", sh, steps)
			if err != nil {
				t.Fatalf("%s %s: %v", proto, mix, err)
			}
			c, err := cases.Parse(sh.Name+".tramp", []byte(src))
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", proto, mix, err, src)
			}
			if c.Name != sh.Name || c.Target.Name != "some_func" || c.Target.BTFID != 4242 ||
				c.Target.Proto.String() != proto || c.Target.Attrs.ErrorInject != sh.ErrorInject {
				t.Errorf("%s %s: parsed %s %s%s btf-id=%d attrs %+v", proto, mix, c.Name, c.Target.Name, c.Target.Proto, c.Target.BTFID, c.Target.Attrs)
			}
			if len(c.Kernels) != 1 || c.Kernels[0] != "debian-7.2.13" || len(c.Arches) != 1 || c.Arches[0] != "arm64" {
				t.Errorf("%s %s: kernels %v arches %v", proto, mix, c.Kernels, c.Arches)
			}
			if len(c.Progs) != len(progs) {
				t.Fatalf("%s %s: %d progs, want %d", proto, mix, len(c.Progs), len(progs))
			}
			for i, p := range progs {
				cp := c.Progs[i]
				if cp.Name != p.Name || cp.Kind.String() != p.Kind || cp.Cookie != p.Cookie || cp.IP != p.IP || cp.Returns != p.Returns {
					t.Errorf("%s %s: prog %d is %+v, want %+v", proto, mix, i, cp, p)
				}
			}
			if len(c.Steps) != len(steps) {
				t.Fatalf("%s %s: %d steps, want %d", proto, mix, len(c.Steps), len(steps))
			}
			for i, st := range c.Steps {
				if string(st.Op) != steps[i].Op || st.Prog.Name != steps[i].Prog || st.Line != first+i {
					t.Errorf("%s %s: step %d is %s %s at line %d, want %s %s at %d", proto, mix, i, st.Op, st.Prog.Name, st.Line, steps[i].Op, steps[i].Prog, first+i)
				}
			}
			// What the recording's job would be is what the guest ran.
			j := JobFor(c)
			if j.Target != "some_func" || len(j.Ops) != len(steps) {
				t.Errorf("%s %s: job %+v", proto, mix, j)
			}
		}
	}
	if _, _, err := ShapeSource("debian-7.2.13", "x86_64", guestapi.Shape{Name: "x", Func: "f", Proto: "() -> void", Progs: guestapi.ShapeMixes["fentry"]},
		[]guestapi.Step{{Op: "run"}}); err == nil {
		t.Error("a run step was accepted")
	}
	if _, _, err := ShapeSource("debian-7.2.13", "x86_64", guestapi.Shape{Name: "x"}, nil); err == nil {
		t.Error("a shape without a function was accepted")
	}
}

// TestShapeRecording converts the guest's records of one shape, as the
// host receives them, into a recording and checks it against the model.
func TestShapeRecording(t *testing.T) {
	progs := guestapi.ShapeMixes["all"]
	sh := guestapi.Shape{Index: 3, Name: guestapi.ShapeName("get_next_ino", "all"), Func: "get_next_ino", BTFID: 777,
		Proto: "() -> u32", Bucket: "a0-plain-reg-ret", Mix: "all", Progs: progs}
	steps := stepsFor(progs)
	// The fsession attach failed: no detach for it.
	steps[2].Errno, steps[2].Stage = "EINVAL", "load"
	steps = append(steps[:3], steps[4:]...)
	for i := range steps {
		steps[i].Step, steps[i].Line = i, i+1
	}
	rec := &recording.Recording{Schema: recording.Schema, Case: sh.Name, Profile: "debian-6.18.15", Arch: "x86_64",
		Kernel: recording.KernelFacts{Release: "6.18.15", Vulnerabilities: map[string]string{"spectre_v2": "Mitigation"}},
		Start:  &guestapi.Start{Target: sh.Func, BTFIDs: map[string]uint32{sh.Func: sh.BTFID}},
		Steps:  steps, Complete: true}
	if err := ShapeRecording(rec, sh); err != nil {
		t.Fatal(err)
	}
	if rec.Kernel.Vulnerabilities != nil {
		t.Error("vulnerabilities kept")
	}
	c, err := ShapeCase(rec)
	require.NoError(t, err)
	lines := strings.Split(rec.Source, "\n")
	for i, s := range rec.Steps {
		if got := strings.TrimSpace(lines[s.Line-1]); got != s.Op+" "+s.Prog {
			t.Errorf("step %d points at line %d %q", i, s.Line, got)
		}
	}
	// 6.18 has no fsession: the model refuses it at load as the kernel
	// did, and agrees on the rest (there are no images to compare).
	prof, _ := trampoline.LookupProfile("debian-6.18.15")
	a, _ := trampoline.LookupArch("x86_64")
	cmp := Compare(rec, c, prof, a, nil)
	if cmp.Verdict != Agree {
		t.Errorf("verdict %s: %v\n%s", cmp.Verdict, cmp.Problems, rec.Source)
	}
	// A recording with its source survives Write and Load.
	dir := t.TempDir()
	p, err := recording.Write(dir, rec)
	require.NoError(t, err)
	if filepath.Base(p) != sh.Name+".json" {
		t.Errorf("written as %s", p)
	}
	back, err := recording.Load(p)
	if err != nil || back.Source != rec.Source {
		t.Errorf("load: %v, source %q", err, back.Source)
	}
	// Without a shape record the conversion reports it.
	if err := ShapeRecording(&recording.Recording{Case: "shape-x-fentry"}, guestapi.Shape{}); err == nil {
		t.Error("empty shape converted")
	}
}

func TestShapeJobFor(t *testing.T) {
	j, err := ShapeJobFor(guestapi.ShapeJob{PerBucket: 2, Seed: 9, Mixes: []string{"fentry"}})
	require.NoError(t, err)
	if j.Kind != guestapi.JobShapes {
		t.Errorf("kind %q", j.Kind)
	}
	var back guestapi.ShapeJob
	if err := json.Unmarshal(j.Params, &back); err != nil || back.PerBucket != 2 || back.Seed != 9 || len(back.Mixes) != 1 {
		t.Errorf("params %s: %v", j.Params, err)
	}
}

// TestTrimShapeCaptures pads recorded arm64 shape images with brk fill to
// a whole read, as the guest captures them, and checks that the trim
// gives back an image the generator still reproduces, cut shapeTailKeep
// bytes after the allocation.
func TestTrimShapeCaptures(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(testdata, "*", "arm64", "shape-*-all.json"))
	if len(paths) == 0 {
		t.Skip("no arm64 shape recordings")
	}
	brk := strings.Repeat("002020d4", 1024) // brk #0x100, little-endian
	n := 0
	for _, p := range paths[:min(len(paths), 12)] {
		rec, err := recording.Load(p)
		require.NoError(t, err)
		c, err := ShapeCase(rec)
		require.NoError(t, err)
		for i := range rec.Captures {
			stored := rec.Captures[i].Bytes
			full := stored + brk
			rec.Captures[i].Bytes = full[:min(len(full), 2*4096)]
			trimShapeCaptures(rec, c)
			got := rec.Captures[i].Bytes
			if len(got) >= 2*4096 || len(got) > len(stored) {
				t.Errorf("%s: capture %d not trimmed (%d hex digits, stored %d)", p, i, len(got), len(stored))
			}
			n++
		}
		for _, r := range CompareImages(rec, c, nil) {
			if !r.OK {
				t.Errorf("%s step %d after trimming: %s", p, r.Step, r.Diff)
			}
		}
	}
	t.Logf("%d captures trimmed", n)
}
