package record

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch"
	"github.com/bpftramp/tramp/arch/generators"
	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/emu"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/recording"
)

// caseOf is the case a recording ran.
func caseOf(t *testing.T, rec *recording.Recording) *cases.Case {
	t.Helper()
	c, err := CaseOf(rec, filepath.Join("..", "..", "cases"))
	if err != nil {
		t.Fatalf("%s: %v", rec.Case, err)
	}
	return c
}

// captureBefore is the image in place at step: the last capture of an
// earlier step.
func captureBefore(rec *recording.Recording, c *cases.Case, step int, fn string) (guestapi.Capture, bool) {
	var out guestapi.Capture
	found := false
	for _, capt := range rec.Captures {
		if capt.Step < step && captureFunc(c, capt) == fn && (!found || capt.Step > out.Step) {
			out, found = capt, true
		}
	}
	return out, found
}

// addrsOf renders our image at the kernel's addresses: the image, the
// traced function, the helpers and each program's bpf_func; im and the
// struct bpf_prog pointers keep placeholder values.
func addrsOf(t *testing.T, p *trampoline.Plan, rec *recording.Recording, capt guestapi.Capture) arch.Addrs {
	t.Helper()
	a := bootGenerator(t, rec).Placeholder(p)
	a.Image, a.Func = capt.Addr, capt.TargetAddr
	a.Symbols = rec.Start.Symbols
	for _, pi := range capt.Progs {
		pa := a.Progs[pi.Name]
		pa.BPFFunc = pi.JitedKsym
		a.Progs[pi.Name] = pa
	}
	return a
}

// bootGenerator is the generator of the recording's boot (on x86_64 with
// its CPU features).
func bootGenerator(t *testing.T, rec *recording.Recording) *generators.Generator {
	t.Helper()
	g, err := Generator(rec)
	if err != nil {
		t.Fatalf("%s: %v", rec.Case, err)
	}
	return g
}

// captureGenerator is the generator of one capture's function.
func captureGenerator(t *testing.T, rec *recording.Recording, capt guestapi.Capture) *generators.Generator {
	t.Helper()
	g, err := CaptureGenerator(rec, capt)
	if err != nil {
		t.Fatalf("%s: %v", rec.Case, err)
	}
	return g
}

type tally struct {
	recordings, runs, invocations, fields, frameWords, unknownArgs, retvals int
}

// TestKernelRecordings runs, for every recorded run step, tramp's image
// (rendered at the kernel's addresses) and the kernel's own captured
// image in the emulator, and compares what the emulated programs saw
// with what the observer programs recorded in the real kernel; both runs
// must also pass every machine check and agree with the model.
func TestKernelRecordings(t *testing.T) {
	recs, err := recording.LoadAll(testdata)
	require.NoError(t, err)
	byKey := map[string]*tally{}
	negative := false
	for _, rec := range recs {
		hasRun := false
		for _, st := range rec.Steps {
			if st.Op == "run" {
				hasRun = true
			}
		}
		if !hasRun || rec.Start == nil {
			continue
		}
		key := rec.Profile + "/" + rec.Arch
		if v := recording.VariantOf(rec); v != "" {
			key += "/" + v
		}
		tl := byKey[key]
		if tl == nil {
			tl = &tally{}
			byKey[key] = tl
		}
		tl.recordings++
		name := rec.Case
		if rec.KASLR {
			name += ".kaslr"
		}
		c := caseOf(t, rec)
		prof, err := ProfileOf(rec)
		require.NoError(t, err)
		a, err := trampoline.LookupArch(rec.Arch)
		require.NoError(t, err)
		steps, err := emu.RunSteps(c, prof, a)
		require.NoError(t, err)
		obsByStep := map[int]guestapi.Observations{}
		for _, o := range rec.Observations {
			obsByStep[o.Step] = o
		}
		for _, cr := range steps {
			target, _ := c.LookupTarget(cr.Func)
			where := fmt.Sprintf("%s %s %s line %d", key, name, target.Name, cr.Line)
			if cr.Step >= len(rec.Steps) || rec.Steps[cr.Step].Errno != "ok" {
				t.Errorf("%s: the kernel's run step did not succeed", where)
				continue
			}
			got := obsByStep[cr.Step]
			if c.MultiTarget() {
				// The trigger ran every target: this function's records.
				if got, err = recordsOf(c, got, cr.Func); err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
			}
			obs := KernelCalls(got.Records)
			if cr.Plan == nil {
				if len(obs) != 0 {
					t.Errorf("%s: no image in the model, the kernel ran %d programs", where, len(obs))
				}
				continue
			}
			capt, ok := captureBefore(rec, c, cr.Step, cr.Func)
			if !ok {
				t.Errorf("%s: no captured image before the run", where)
				continue
			}
			tl.runs++
			tt, _ := emu.TestTargetOf(target)
			unknown := tt.UnknownArg
			// tramp's image at the kernel's addresses.
			addrs := addrsOf(t, cr.Plan, rec, capt)
			g, err := emu.GenerateWith(captureGenerator(t, rec, capt), cr.Plan, &addrs, c.Progs)
			if err != nil {
				t.Errorf("%s: generate: %v", where, err)
				continue
			}
			ours, err := emu.Check(g.Setup, cr.Plan, cr.Run)
			require.NoError(t, err)
			if err := ours.Err(); err != nil {
				t.Errorf("%s: tramp's image: %v", where, err)
			}
			kc := emu.CompareKernel(ours.Calls, obs, cr.Plan, &g.Setup, unknown)
			for _, p := range kc.Problems {
				t.Errorf("%s: tramp's image against the kernel: %s", where, p)
			}
			tl.invocations += kc.Invocations
			tl.fields += kc.Fields
			tl.frameWords += kc.FrameWords
			tl.unknownArgs += kc.UnknownArgs
			// The kernel's own image.
			rs, err := EmuSetup(rec, capt, cr.Plan.Func, c.Progs)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			real, err := emu.Check(rs, cr.Plan, cr.Run)
			require.NoError(t, err)
			if err := real.Err(); err != nil {
				t.Errorf("%s: the kernel's image: %v", where, err)
			}
			kr := emu.CompareKernel(real.Calls, obs, cr.Plan, &rs, unknown)
			for _, p := range kr.Problems {
				t.Errorf("%s: the kernel's image emulated against the kernel: %s", where, p)
			}
			for _, p := range emu.DiffCalls(ours.Calls, real.Calls) {
				t.Errorf("%s: tramp's image and the kernel's differ: %s", where, p)
			}
			// (Instruction counts may differ on arm64 and riscv64: tramp's
			// image loads a placeholder im, whose length differs from the
			// kernel's.)
			if real.Retval != ours.Retval {
				t.Errorf("%s: retval %#x (tramp) against %#x (kernel image)", where, ours.Retval, real.Retval)
			}
			if !negative && len(obs) > 0 && len(obs[0].Args) > 0 && !unknown(0) {
				// A negative control: a changed kernel value must be seen.
				mut := append([]emu.Call(nil), obs...)
				mut[0].Args = append([]uint64(nil), obs[0].Args...)
				mut[0].Args[0] ^= 0x100
				if len(emu.CompareKernel(real.Calls, mut, cr.Plan, &rs, unknown).Problems) == 0 {
					t.Errorf("%s: a changed argument in the kernel's record went unnoticed", where)
				}
				negative = true
			}
			st := rec.Steps[cr.Step]
			if st.Retval != nil {
				if p, ok := emu.KernelRetval(target, st.Trigger, *st.Retval, real); ok {
					tl.retvals++
					if p != "" {
						t.Errorf("%s: %s", where, p)
					}
				}
			}
		}
	}
	var keys []string
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		tl := byKey[k]
		t.Logf("%-22s %3d recordings, %3d runs, %4d invocations (%d fields, %d frame words) equal in tramp's image, the kernel's image and the kernel; %d stack-address arguments left out; %d test-run return values checked",
			k, tl.recordings, tl.runs, tl.invocations, tl.fields, tl.frameWords, tl.unknownArgs, tl.retvals)
	}
	for _, k := range []string{"debian-7.2.13/x86_64", "debian-7.2.13/arm64", "debian-7.2.13/riscv64"} {
		if tl := byKey[k]; tl == nil || tl.runs == 0 || tl.invocations == 0 {
			t.Errorf("no recorded runs compared for %s", k)
		}
	}
	if !negative {
		t.Error("the negative control never ran")
	}
}

// TestKernelImages executes every image captured from a real kernel (the
// corpus cases and the BTF prototype shapes) with the model's plan at
// that step: every machine check must pass, the programs must see what
// the model predicts, and tramp's own image must behave the same.
func TestKernelImages(t *testing.T) {
	recs, err := recording.LoadAll(testdata)
	require.NoError(t, err)
	type count struct{ images, invocations, insns int }
	byKey := map[string]*count{}
	total := 0
	for _, rec := range recs {
		if rec.Start == nil || len(rec.Captures) == 0 {
			continue
		}
		c := caseOf(t, rec)
		prof, err := ProfileOf(rec)
		require.NoError(t, err)
		a, err := trampoline.LookupArch(rec.Arch)
		require.NoError(t, err)
		key := rec.Profile + "/" + rec.Arch
		if v := recording.VariantOf(rec); v != "" {
			key += "/" + v
		}
		if byKey[key] == nil {
			byKey[key] = &count{}
		}
		for _, capt := range rec.Captures {
			where := fmt.Sprintf("%s %s (kaslr %v) after step %d", key, rec.Case, rec.KASLR, capt.Step)
			fn := captureFunc(c, capt)
			p, err := emu.PlanAt(c, prof, a, capt.Step, fn)
			if err != nil || p == nil {
				t.Errorf("%s: no model image: %v", where, err)
				continue
			}
			target, _ := c.LookupTarget(fn)
			run := emu.RunFor(target, p.Func, nil)
			rs, err := EmuSetup(rec, capt, p.Func, c.Progs)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			real, err := emu.Check(rs, p, run)
			require.NoError(t, err)
			if err := real.Err(); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			addrs := addrsOf(t, p, rec, capt)
			g, err := emu.GenerateWith(captureGenerator(t, rec, capt), p, &addrs, c.Progs)
			if err != nil {
				t.Errorf("%s: generate: %v", where, err)
				continue
			}
			ours, err := emu.Check(g.Setup, p, run)
			require.NoError(t, err)
			if err := ours.Err(); err != nil {
				t.Errorf("%s: tramp's image: %v", where, err)
			}
			for _, d := range emu.DiffCalls(ours.Calls, real.Calls) {
				t.Errorf("%s: tramp's image and the kernel's differ: %s", where, d)
			}
			total++
			byKey[key].images++
			byKey[key].invocations += len(real.Calls)
			byKey[key].insns += real.Insns
		}
	}
	var keys []string
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n := byKey[k]
		t.Logf("%-22s %3d real images executed (%d instructions, %d program invocations) agree with the model and with tramp's image", k, n.images, n.insns, n.invocations)
	}
	t.Logf("%d real images in all", total)
	for _, k := range []string{"debian-7.2.13/x86_64", "debian-7.2.13/arm64", "debian-7.2.13/riscv64"} {
		if n := byKey[k]; n == nil || n.images == 0 {
			t.Errorf("no %s images executed", k)
		}
	}
}
