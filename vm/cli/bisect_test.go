package cli

import (
	"context"
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
