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
	assert.Contains(t, out.String(), "6.18.15    arm64   -         -           .            .                  -        -\n")
	assert.Contains(t, out.String(), "6.18.15    x86_64  .         .           -            .                  -        -\n")
	assert.Contains(t, errOut.String(), "[debian-6.18.15 x86_64] 23 recordings: func-meta undecided, x86-jmp-mode without")
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
