package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --table judges the recorded 6.18.15 on both arches and prints its rows
// as builds.txt has them.
func TestBisectTableFromRecordings(t *testing.T) {
	var out, errOut strings.Builder
	code := bisectCmd(context.Background(), []string{"--table", "--recordings", "../../cases/testdata", "--kernel", "debian-6.18.15"}, &out, &errOut)
	require.Equal(t, ExitOK, code, errOut.String())
	assert.Contains(t, out.String(), "6.18.15    arm64   -         -           .            .                  -        -                        .\n")
	assert.Contains(t, out.String(), "6.18.15    x86_64  .         .           -            .                  -        -                        .\n")
	assert.Contains(t, errOut.String(), "[debian-6.18.15 x86_64] 24 recordings: func-meta undecided, x86-jmp-mode without")
}

func TestBisectUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--table"}, "give --recordings DIR"},
		{[]string{"--delta", "nosuch"}, "want one of func-meta"},
		{[]string{"--delta", "skip-nop", "--arch", "x86_64,arm64"}, "want one architecture"},
		{[]string{"--delta", "x86-wide-arg-slots"}, "has no probe case for x86_64"},
	} {
		var out, errOut strings.Builder
		code := bisectCmd(context.Background(), tc.args, &out, &errOut)
		assert.Equal(t, ExitUsage, code, "%v", tc.args)
		assert.Contains(t, errOut.String(), tc.want, "%v", tc.args)
	}
}

// Bisection over the recordings in cases/testdata (packs included)
// boots nothing: the syscall-wrapper fallback is in no 7.0 build and in
// every 7.1 one, on x86_64.
func TestBisectFromRecordings(t *testing.T) {
	var out, errOut strings.Builder
	code := bisectCmd(context.Background(), []string{"--delta", "syscall-wrapper-fallback", "--arch", "x86_64",
		"--recordings", "../../cases/testdata", "--kernel", "debian-7.0.4,debian-7.0.13,debian-7.1.3,debian-7.1.13,debian-7.2.13"}, &out, &errOut)
	require.Equal(t, ExitOK, code, errOut.String())
	assert.NotContains(t, errOut.String(), "booted")
	assert.Regexp(t, `7\.0 +2  debian-7\.0\.13 +- `, out.String())
	assert.Regexp(t, `7\.1 +2  - +debian-7\.1\.3 `, out.String())
}

// Two builds of one version contradict each other only where both judged
// a delta, differently; what only one judged is kept.
func TestContradiction(t *testing.T) {
	d, ok := contradiction(map[string]bool{"a": true, "b": false}, map[string]bool{"a": true, "c": true})
	assert.False(t, ok, d)
	d, ok = contradiction(map[string]bool{"a": true, "b": false}, map[string]bool{"b": true})
	assert.True(t, ok)
	assert.Equal(t, "b", d)
}

// Shape recordings of one name from different builds carry different
// cases (debian-7.2.13's fmod_ret shape attaches and detaches, the z196
// rebuild's is refused at its attach); the table judges each build with
// its own. Once the last one read replaced the other, and one of the two
// builds agreed with no assignment of the deltas.
func TestBisectTableShapesPerBuild(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{"debian-7.2.13/x86_64", "debian-7.2.13+z196/s390x"} {
		name := "shape-security_sctp_sk_clone-fmodret.json"
		data, err := os.ReadFile(filepath.Join("../../cases/testdata", b, name))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, b), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, b, name), data, 0o644))
	}
	var out, errOut strings.Builder
	code := bisectCmd(context.Background(), []string{"--table", "--recordings", dir}, &out, &errOut)
	require.Equal(t, ExitOK, code, errOut.String())
	assert.NotContains(t, errOut.String(), "no assignment")
	assert.Contains(t, errOut.String(), "[debian-7.2.13 x86_64] 1 recordings")
	assert.Contains(t, errOut.String(), "[debian-7.2.13+z196 s390x] 1 recordings")
}
