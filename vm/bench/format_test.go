package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/kernels"
)

// fakeRun is a boot's results as the collector would assemble them.
func fakeRun() *ArchRun {
	res := func(cfg string, progs int, ns ...float64) guestapi.BenchResult {
		c, _ := guestapi.LookupBenchConfig(cfg)
		return guestapi.BenchResult{Config: cfg, Progs: c.Progs, Errno: "ok", NsPerCall: ns, Iters: 1000, RunsPerCall: float64(progs)}
	}
	return &ArchRun{
		Kernel: "debian-7.2.13", Arch: kernels.X86_64, Accel: "tcg", Elapsed: 30 * time.Second,
		Hello: &guestapi.Hello{Release: "7.2.13+deb14-cloud-amd64", CPUModel: "QEMU TCG CPU version 2.5+"},
		Start: &guestapi.BenchStart{Target: "__x64_sys_getpgid", Iters: 1000, Reps: 3},
		Results: []guestapi.BenchResult{
			res("none", 0, 100, 110, 105),
			res("fentry", 1, 120, 130, 125),
			res("fexit", 1, 140, 150, 145),
			res("fentry+fexit", 2, 160, 170, 165),
			res("fsession", 2, 150, 160, 155),
			res("fmod_ret", 1, 142, 152, 147),
			{Config: "fsession-cookie", Progs: []guestapi.Prog{{Name: "s", Kind: "fsession", Cookie: true}}, Errno: "EINVAL", Stage: "load", NsPerCall: []float64{}, RunsPerCall: -1},
		},
	}
}

func TestSummarise(t *testing.T) {
	ar := Summarise(fakeRun())
	if len(ar.Rows) != 7 || ar.Rows[0].Config != "none" {
		t.Fatalf("rows %+v", ar.Rows)
	}
	if o := ar.Rows[1].Overhead; o.Median != 20 || !o.Paired {
		t.Errorf("fentry overhead %+v, want 20 paired", o)
	}
	if v := ar.Rows[4].VsFentry; v != 2.5 {
		t.Errorf("fsession x fentry = %v, want 2.5", v)
	}
	var fs Num
	for _, r := range ar.Ratios {
		if r.A == "fsession" && r.B == "fentry+fexit" {
			fs = r.Value
		}
	}
	if fs != Num(50.0/60.0) {
		t.Errorf("fsession / fentry+fexit = %v, want %v", fs, 50.0/60.0)
	}
	if !strings.HasPrefix(ar.Ordering, "holds") {
		t.Errorf("ordering %q", ar.Ordering)
	}
	if ar.Rows[6].Overhead.Median.Known() {
		t.Errorf("a refused configuration has an overhead: %+v", ar.Rows[6])
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	st, err := Static()
	require.NoError(t, err)
	rep := NewReport([]*ArchRun{fakeRun()}, st)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err) // NaN would fail here
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, err := json.Marshal(&back)
	require.NoError(t, err)
	if !bytes.Equal(b, b2) {
		t.Errorf("JSON changed in a round trip:\n%s\n%s", b, b2)
	}
	if back.Live[0].Accel != "tcg" || back.Live[0].CPUModel == "" || back.Live[0].Release == "" {
		t.Errorf("labels lost: %+v", back.Live[0])
	}
}

func TestWriteText(t *testing.T) {
	st, err := Static()
	require.NoError(t, err)
	rep := NewReport([]*ArchRun{fakeRun()}, st)
	rep.Command = "tramp bench --reps 3"
	var b strings.Builder
	WriteText(&b, rep)
	out := b.String()
	for _, want := range []string{
		`debian-7.2.13 x86_64, Linux 7.2.13+deb14-cloud-amd64, accel TCG, CPU "QEMU TCG CPU version 2.5+"`,
		"fsession vs fentry+fexit: overhead 50.0 vs 60.0 ns/call, ratio 0.83",
		"EINVAL at load",
		"ordering fentry < fexit ≈ fmod_ret: holds",
		"only comparable as ratios within one run",
		"published x86 anchors",
		"static costs: emulator, debian-7.2.13",
		"(produced by: tramp bench --reps 3)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A row: name, progs, median, min, max, spread, overhead, lo, hi, x fentry, runs.
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "fentry" {
			if got := strings.Join(f, " "); got != "fentry 1 125.0 120.0 130.0 8.0% 20.0 20.0 20.0 1.00 1.00" {
				t.Errorf("fentry row %q", got)
			}
			break
		}
	}
	// A KVM-only report does not carry the TCG note.
	rep.Live[0].Accel = "kvm"
	b.Reset()
	WriteText(&b, rep)
	if strings.Contains(b.String(), "only comparable as ratios") {
		t.Error("TCG note on a KVM report")
	}
}

func TestWritePNG(t *testing.T) {
	st, err := Static()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "bench.png")
	if err := WritePNG(path, NewReport([]*ArchRun{fakeRun()}, st)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("not a PNG: % x", b[:min(8, len(b))])
	}
	if err := WritePNG(path, &Report{}); err == nil {
		t.Error("an empty report drew a chart")
	}
}

func TestArchRunErrorIsReported(t *testing.T) {
	r := fakeRun()
	r.Err = errors.New("qemu: timeout")
	ar := Summarise(r)
	if ar.Error != "qemu: timeout" {
		t.Errorf("error %q", ar.Error)
	}
}

// TestLiveLabelsNameRefusals: the 6.18.15 recording refuses fsession and
// fmod_ret; the chart says so instead of leaving bare gaps.
func TestLiveLabelsNameRefusals(t *testing.T) {
	b, err := os.ReadFile("results/debian-6.18.15.json")
	require.NoError(t, err)
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(liveLabels(&r), "\n")
	for _, want := range []string{
		"x86_64: no bar for fsession (EINVAL), fsession-cookie (EINVAL), fmod_ret (EINVAL)",
		"arm64: no bar for fsession (EINVAL), fsession-cookie (EINVAL), fmod_ret (EINVAL)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("labels lack %q:\n%s", want, got)
		}
	}
	fake := liveLabels(NewReport([]*ArchRun{fakeRun()}, nil))
	if len(fake) != 2 || !strings.HasSuffix(fake[1], ": no bar for fsession-cookie (EINVAL)") {
		t.Errorf("fake run (fsession-cookie refused): labels %q", fake)
	}
}
