package cli

import (
	"github.com/bpftramp/tramp/vm/recording"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/record"
)

// TestWriteShapesPrunesOwnVariant: a full shapes run removes the stale
// shape recordings of its own kind of boot only; the default ones, the
// KASLR ones and other CPU models' stay.
func TestWriteShapesPrunesOwnVariant(t *testing.T) {
	root := t.TempDir()
	prof, _ := trampoline.LookupProfile("debian-7.2.13")
	rec := func(name, cpu string, kaslr bool) *recording.Recording {
		return &recording.Recording{Schema: recording.Schema, Case: name, Profile: prof.Name, Arch: "x86_64", CPU: cpu, KASLR: kaslr, Complete: true}
	}
	for _, r := range []*recording.Recording{
		rec("shape-old", "", false), rec("shape-old", "", true), rec("shape-old", "EPYC-Rome", false),
		rec("shape-old", "Cascadelake-Server", false), rec("shape-kept", "EPYC-Rome", false),
	} {
		if _, err := recording.Write(root, r); err != nil {
			t.Fatal(err)
		}
	}
	run := &shapeRun{profile: prof, arch: kernels.X86_64, res: &record.ShapeResult{}}
	run.res.Recordings = []*recording.Recording{rec("shape-kept", "EPYC-Rome", false), rec("shape-new", "EPYC-Rome", false)}
	if err := writeShapes(root, run, true); err != nil {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(root, prof.Name, "x86_64", "*.json"))
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	sort.Strings(got)
	want := []string{"shape-kept.cpu-epyc-rome.json", "shape-new.cpu-epyc-rome.json", "shape-old.cpu-cascadelake-server.json", "shape-old.json", "shape-old.kaslr.json"}
	if len(got) != len(want) {
		t.Fatalf("left %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("left %v, want %v", got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, prof.Name, "x86_64", "shape-old.cpu-epyc-rome.json")); !os.IsNotExist(err) {
		t.Error("the stale EPYC-Rome shape stayed")
	}
}
