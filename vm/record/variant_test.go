package record

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/arch/x86"
	"github.com/bpftramp/tramp/vm/guestapi"
	"github.com/bpftramp/tramp/vm/recording"
)

func TestPathOfVariants(t *testing.T) {
	tests := []struct {
		cpu    string
		append []string
		kaslr  bool
		kvm    string // the host CPU model of a KVM boot
		want   string
	}{
		{want: "r/k/x86_64/c.json"},
		{kaslr: true, want: "r/k/x86_64/c.kaslr.json"},
		{cpu: "EPYC-Rome", want: "r/k/x86_64/c.cpu-epyc-rome.json"},
		{cpu: "Cascadelake-Server", kaslr: true, want: "r/k/x86_64/c.cpu-cascadelake-server.kaslr.json"},
		{cpu: "Skylake-Client", append: []string{"retbleed=stuff"}, want: "r/k/x86_64/c.cpu-skylake-client-retbleed-stuff.json"},
		{cpu: "max,-rdrand", want: "r/k/x86_64/c.cpu-max--rdrand.json"},
		{append: []string{"mitigations=off"}, want: "r/k/x86_64/c.mitigations-off.json"},
		{kvm: "AMD EPYC 7B13 64-Core Processor", want: "r/k/x86_64/c.kvm-amd-epyc-7b13-64-core-processor.json"},
		{kvm: "AMD EPYC", cpu: "EPYC-Rome", kaslr: true, want: "r/k/x86_64/c.kvm-amd-epyc-cpu-epyc-rome.kaslr.json"},
	}
	for _, tc := range tests {
		r := &recording.Recording{Case: "c", Profile: "k", Arch: "x86_64", CPU: tc.cpu, Append: tc.append, KASLR: tc.kaslr}
		if tc.kvm != "" {
			r.Kernel = recording.KernelFacts{Accel: "kvm", CPUModel: tc.kvm}
		}
		if got := recording.PathOf("r", r); got != filepath.FromSlash(tc.want) {
			t.Errorf("cpu %q append %q kaslr %v: %s, want %s", tc.cpu, tc.append, tc.kaslr, got, tc.want)
		}
	}
}

// TestVariantRecordingsLoad: a CPU-model recording is written beside the
// default one without touching it, and both load back as written.
func TestVariantRecordingsLoad(t *testing.T) {
	root := t.TempDir()
	def := &recording.Recording{Schema: recording.Schema, Case: "c", Profile: "debian-7.2.13", Arch: "x86_64", Complete: true}
	rome := &recording.Recording{Schema: recording.Schema, Case: "c", Profile: "debian-7.2.13", Arch: "x86_64", CPU: "EPYC-Rome", Complete: true,
		Kernel: recording.KernelFacts{CPUFamily: 0x17, ReturnThunk: x86.ThunkRetbleed}}
	p1, err := recording.Write(root, def)
	require.NoError(t, err)
	before, _ := os.ReadFile(p1)
	p2, err := recording.Write(root, rome)
	require.NoError(t, err)
	if p1 == p2 {
		t.Fatalf("both written to %s", p1)
	}
	after, _ := os.ReadFile(p1)
	if string(before) != string(after) {
		t.Error("the default recording changed")
	}
	all, err := recording.LoadAll(root)
	require.NoError(t, err)
	if len(all) != 2 {
		t.Fatalf("%d recordings loaded", len(all))
	}
	for _, r := range all {
		if (r.CPU == "EPYC-Rome") != (r.Kernel.ReturnThunk == x86.ThunkRetbleed) {
			t.Errorf("%+v", r)
		}
	}
}

func TestX86Features(t *testing.T) {
	rome := map[string]string{"retbleed": "Mitigation: untrained return thunk; SMT disabled", "spec_rstack_overflow": "Mitigation: SMT disabled", "indirect_target_selection": "Not affected"}
	stuff := map[string]string{"retbleed": "Mitigation: Stuffing", "spec_rstack_overflow": "Not affected", "indirect_target_selection": "Mitigation: Retpolines, Stuffing RSB"}
	tests := []struct {
		name  string
		rec   recording.Recording
		thunk string
		err   string
	}{
		{name: "legacy shape recording, default TCG boot", rec: recording.Recording{Kernel: recording.KernelFacts{Accel: "tcg"}}},
		{name: "no vulnerabilities, other CPU", rec: recording.Recording{CPU: "EPYC-Rome", Kernel: recording.KernelFacts{Accel: "tcg"}}, err: "no vulnerability list"},
		{name: "no vulnerabilities, kvm host CPU", rec: recording.Recording{Kernel: recording.KernelFacts{Accel: "kvm"}}, err: "no vulnerability list"},
		{name: "EPYC-Rome", rec: recording.Recording{CPU: "EPYC-Rome", Kernel: recording.KernelFacts{Vulnerabilities: rome, CPUFamily: 0x17, ReturnThunk: x86.ThunkRetbleed}}, thunk: x86.ThunkRetbleed},
		{name: "EPYC-Rome before the log was read", rec: recording.Recording{CPU: "EPYC-Rome", Kernel: recording.KernelFacts{Vulnerabilities: rome}}, thunk: x86.ThunkRetbleed},
		{name: "log disagrees", rec: recording.Recording{Kernel: recording.KernelFacts{Vulnerabilities: rome, ReturnThunk: x86.ThunkITS}}, err: "kernel log says the active return thunk is its_return_thunk"},
		{name: "stuffing without the log's call depth tracking", rec: recording.Recording{Kernel: recording.KernelFacts{Vulnerabilities: stuff, ReturnThunk: x86.ThunkCallDepth}}, err: "call-depth tracking"},
		{name: "stuffing", rec: recording.Recording{Kernel: recording.KernelFacts{Vulnerabilities: stuff, ReturnThunk: x86.ThunkCallDepth, CallDepthTracking: true}}, thunk: x86.ThunkCallDepth},
	}
	for _, tc := range tests {
		tc.rec.Arch = "x86_64"
		f, err := X86Features(&tc.rec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if f.ReturnThunk != tc.thunk || f.Rethunk != (tc.thunk != "") || !f.SLS {
			t.Errorf("%s: %+v, want thunk %q", tc.name, f, tc.thunk)
		}
	}
}

// TestCallThunksNeedPadding: call-depth recordings without the helpers'
// padding bytes cannot be rendered, and say so.
func TestCallThunksNeedPadding(t *testing.T) {
	rec := &recording.Recording{Arch: "x86_64", Kernel: recording.KernelFacts{Vulnerabilities: map[string]string{"retbleed": "Mitigation: Stuffing"}}}
	rec.Start = nil
	if _, err := Generator(rec); err != nil {
		t.Fatalf("no start record: the generator is still known: %v", err)
	}
	if _, err := CallThunks(startWith(nil, nil)); err == nil || !strings.Contains(err.Error(), "padding") {
		t.Errorf("no padding: %v", err)
	}
	if _, err := CallThunks(startWith(map[string]string{"__bpf_tramp_enter": "90"}, nil)); err == nil || !strings.Contains(err.Error(), x86.CallDepthVar) {
		t.Errorf("no counter address: %v", err)
	}
	if _, err := CallThunks(startWith(map[string]string{"__bpf_tramp_enter": "zz"}, map[string]uint64{x86.CallDepthVar: 1})); err == nil || !strings.Contains(err.Error(), "__bpf_tramp_enter") {
		t.Errorf("bad hex: %v", err)
	}
}

func startWith(padding map[string]string, syms map[string]uint64) *guestapi.Start {
	return &guestapi.Start{Padding: padding, Symbols: syms}
}
