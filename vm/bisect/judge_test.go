package bisect

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/recording"
)

func corpusByName(t *testing.T) map[string]*cases.Case {
	t.Helper()
	m, err := cases.CorpusByName()
	require.NoError(t, err)
	return m
}

func load(t *testing.T, build, arch, name string) *recording.Recording {
	t.Helper()
	rec, err := recording.Load(filepath.Join("..", "..", "cases", "testdata", build, arch, name+".json"))
	require.NoError(t, err)
	return rec
}

func delta(t *testing.T, name string) *trampoline.Delta {
	t.Helper()
	for i := range trampoline.Deltas {
		if trampoline.Deltas[i].Name == name {
			return &trampoline.Deltas[i]
		}
	}
	t.Fatalf("no delta %s", name)
	return nil
}

// The real recordings judge the deltas they exercise, and say so when
// they cannot tell.
func TestJudgeRealRecordings(t *testing.T) {
	corpus := corpusByName(t)
	for _, tc := range []struct {
		build, arch, delta string
		recs               []string
		want               State
	}{
		{"debian-7.2.13", "x86_64", "skip-nop", []string{"fentry_only"}, With},
		{"debian-6.18.15", "x86_64", "skip-nop", []string{"fentry_only"}, Without},
		{"debian-7.2.13", "x86_64", "x86-jmp-mode", []string{"fexit_six_args"}, With},
		{"debian-6.18.15", "x86_64", "x86-jmp-mode", []string{"fexit_six_args"}, Without},
		{"debian-7.2.13", "x86_64", "syscall-wrapper-fallback", []string{"syscall_wrapper_x86"}, With},
		{"debian-6.18.15", "x86_64", "syscall-wrapper-fallback", []string{"syscall_wrapper_x86"}, Without},
		{"debian-6.18.15", "arm64", "syscall-wrapper-fallback", []string{"syscall_wrapper_arm64"}, Without},
		{"debian-7.3.4", "arm64", "a64-mov-orr", []string{"fentry_only"}, With},
		{"debian-6.18.15", "arm64", "a64-mov-orr", []string{"fentry_only"}, Without},
		// fentry_only never reaches a syscall wrapper's rules.
		{"debian-7.2.13", "x86_64", "syscall-wrapper-fallback", []string{"fentry_only"}, Undecided},
	} {
		t.Run(tc.build+"/"+tc.arch+"/"+tc.delta, func(t *testing.T) {
			prof, err := trampoline.LookupProfile(tc.build)
			require.NoError(t, err)
			var recs []*recording.Recording
			for _, n := range tc.recs {
				recs = append(recs, load(t, tc.build, tc.arch, n))
			}
			j, err := Judge(recs, corpus, prof, delta(t, tc.delta))
			require.NoError(t, err)
			if j.State != tc.want {
				t.Errorf("judged %s, want %s", j, tc.want)
			}
			if tc.want != Undecided && j.Telling == 0 {
				t.Errorf("%s with no telling recording", j)
			}
		})
	}
}

// A recording whose kernel differs from the model in something besides
// the delta is Neither, with the closer model's problems.
func TestJudgeNeither(t *testing.T) {
	corpus := corpusByName(t)
	prof, err := trampoline.LookupProfile("debian-6.18.15")
	require.NoError(t, err)
	// 7.2.13's fentry image has skip NOPs: judging the jmp mode (which
	// it does not exercise) on 6.18.15's model leaves the NOPs
	// disagreeing either way.
	rec := load(t, "debian-7.2.13", "x86_64", "fentry_only")
	j, err := Judge([]*recording.Recording{rec}, corpus, prof, delta(t, "x86-jmp-mode"))
	require.NoError(t, err)
	if j.State != Neither || len(j.Problems) == 0 {
		t.Errorf("judged %s, want neither with problems", j)
	}
	_, err = Judge([]*recording.Recording{{Case: "no_such_case", Profile: "x", Arch: "x86_64"}}, corpus, prof, delta(t, "skip-nop"))
	require.ErrorContains(t, err, "no_such_case on x/x86_64: no such case")
}
