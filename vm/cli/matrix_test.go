package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/record"
	"github.com/bpftramp/tramp/vm/report"
)

// TestSuiteReportResults: runs without recordings give "no result"
// cases that fail, at their places in the whole run, with the boot's
// accel, CPU, VM error, console tail and splats; the table says so.
func TestSuiteReportResults(t *testing.T) {
	p72, err := trampoline.LookupProfile("debian-7.2.13")
	require.NoError(t, err)
	corpus, err := cases.Corpus()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(corpus), 3)
	runs := []*suiteRun{
		{profile: p72, arch: kernels.X86_64, index: 3, cases: corpus[:2], caseIndex: []int{4, 7},
			res: &record.Result{Accel: "tcg", CPU: "max", Elapsed: 1500_000_000, Console: []string{"a", "b"}}, err: errors.New("guest hung")},
		{profile: p72, arch: kernels.ARM64, index: 4, cases: corpus[2:3]},
		{profile: p72, arch: kernels.ARM64, index: 5}, // no cases: not a run
	}
	var out bytes.Buffer
	res := suiteReport("check", report.Shard{Index: 2, Count: 3}, runs, &out, false, "", "")
	assert.Equal(t, "2/3", res.Shard)
	assert.Equal(t, "check", res.Command)
	require.Len(t, res.Runs, 2)
	r0 := res.Runs[0]
	assert.Equal(t, []string{"debian-7.2.13", "x86_64", "tcg", "max", "guest hung"}, []string{r0.Build, r0.Arch, r0.Accel, r0.CPU, r0.Error})
	assert.Equal(t, 3, r0.Index)
	assert.Equal(t, []string{"a", "b"}, r0.ConsoleTail)
	require.Len(t, r0.Cases, 2)
	assert.Equal(t, report.Case{Case: corpus[1].Name, Index: 7, Status: report.Fail, Result: report.NoResult}, r0.Cases[1])
	assert.Equal(t, 0, res.Runs[1].Cases[0].Index)
	assert.False(t, res.OK())
	assert.Equal(t, report.Totals{Failed: 3, VMErrors: 1}, res.Totals())
	assert.Contains(t, out.String(), "NO RESULT")
	assert.Contains(t, out.String(), "VM error: guest hung")
	assert.Contains(t, out.String(), "vm: 0 passed, 3 failed, 0 skipped")
}

// TestShardFlagUsage: a bad --shard is a usage error that names it,
// before anything is fetched or booted.
func TestShardFlagUsage(t *testing.T) {
	for _, cmd := range []string{"check", "record", "shapes", "fuzz"} {
		for _, v := range []string{"0/2", "3/2", "x/y", "1", "1/0", "-1/2"} {
			var stdout, stderr bytes.Buffer
			code := Main([]string{cmd, "--shard", v, "--cache", t.TempDir()}, &stdout, &stderr)
			assert.Equal(t, ExitUsage, code, "%s --shard %s", cmd, v)
			assert.True(t, strings.Contains(stderr.String(), "--shard") && strings.Contains(stderr.String(), v), "%s --shard %s: %q", cmd, v, stderr.String())
		}
	}
}
