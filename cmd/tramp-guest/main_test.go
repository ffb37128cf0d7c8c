package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/vm/channel"
	"github.com/bpftramp/tramp/vm/guestapi"
)

func TestLockdown(t *testing.T) {
	for in, want := range map[string]string{
		"[none] integrity confidentiality": "none",
		"none [integrity] confidentiality": "integrity",
		"":                                 "unavailable",
		"odd":                              "odd",
	} {
		if got := lockdown(in); got != want {
			t.Errorf("lockdown(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCstr(t *testing.T) {
	if got := cstr([]int8{'a', 'b', 0, 'c'}); got != "ab" {
		t.Fatal(got)
	}
	if got := cstr([]uint8{'x'}); got != "x" {
		t.Fatal(got)
	}
}

func TestReadJob(t *testing.T) {
	dir := t.TempDir()
	if j, err := readJob(filepath.Join(dir, "none.json")); err != nil || j.Kind != guestapi.JobHello {
		t.Fatalf("missing job: %+v %v", j, err)
	}
	p := filepath.Join(dir, "job.json")
	os.WriteFile(p, []byte(`{"kind":"sleep","ticks":2,"params":{"x":1}}`), 0o644)
	if j, err := readJob(p); err != nil || j.Kind != "sleep" || j.Ticks != 2 || string(j.Params) != `{"x":1}` {
		t.Fatalf("%+v %v", j, err)
	}
	os.WriteFile(p, []byte(`{`), 0o644)
	if _, err := readJob(p); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

// TestRunOutsideVM runs the guest's main sequence in its debugging mode
// (not PID 1, records to a file) and decodes what it wrote.
func TestRunOutsideVM(t *testing.T) {
	out := filepath.Join(t.TempDir(), "results.bin")
	f, err := os.Create(out)
	require.NoError(t, err)
	g := &guest{port: f, enc: channel.NewEncoder(f)}
	if err := g.run(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	recs, err := channel.ReadAll(strings.NewReader(string(b)))
	require.NoError(t, err)
	if len(recs) != 2 || recs[0].Kind != guestapi.KindHello || recs[1].Kind != guestapi.KindDone {
		t.Fatalf("records %+v", recs)
	}
	var h guestapi.Hello
	if err := recs[0].Decode(&h); err != nil || h.Release == "" || h.JobKind != guestapi.JobHello {
		t.Fatalf("hello %+v %v", h, err)
	}
}

// The kernel log lines debian-7.2.13 printed under -cpu Skylake-Client
// with retbleed=stuff (the thunk is set twice; the last one counts).
func TestParseKernelLog(t *testing.T) {
	log := "<6>[    0.032489] Spectre V2 : Mitigation: Retpolines\n" +
		"<6>[    0.036256] active return thunk: call_depth_return_thunk\n" +
		"<6>[    0.038633] active return thunk: call_depth_return_thunk\n" +
		"<6>[    0.202504] callthunks: Setting up call depth tracking\n"
	if thunk, cd := parseKernelLog(log); thunk != "call_depth_return_thunk" || !cd {
		t.Errorf("stuffing: %q %v", thunk, cd)
	}
	rome := "<6>[    0.038170] RETBleed: Mitigation: untrained return thunk\n<6>[    0.040707] active return thunk: retbleed_return_thunk\n"
	if thunk, cd := parseKernelLog(rome); thunk != "retbleed_return_thunk" || cd {
		t.Errorf("EPYC-Rome: %q %v", thunk, cd)
	}
	if thunk, cd := parseKernelLog("<6>[    0.0] RETBleed: Not affected\n"); thunk != "" || cd {
		t.Errorf("cpu max: %q %v", thunk, cd)
	}
}
