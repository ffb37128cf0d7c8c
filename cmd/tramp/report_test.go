package main

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/vm/report"
)

func writeResults(t *testing.T, path string, r *report.Results) {
	t.Helper()
	b, err := r.Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// TestReportMerge: tramp report merge joins shard files into one table
// and the files asked for; its exit status is 1 when a case failed, 2
// for bad input, naming the file.
func TestReportMerge(t *testing.T) {
	dir := t.TempDir()
	mkRun := func(build, arch string, index int, statuses ...string) report.Run {
		r := report.Run{Build: build, Arch: arch, Index: index, Accel: "tcg", ElapsedMS: 60_000}
		for i, s := range statuses {
			res := map[string]string{report.Pass: "ok", report.Fail: "MISMATCH", report.Skip: "not in kernel"}[s]
			r.Cases = append(r.Cases, report.Case{Case: "case" + string(rune('a'+i)), Index: i, Status: s, Result: res})
		}
		return r
	}
	s1 := &report.Results{Schema: report.SchemaVersion, Command: "check", Shard: "1/2",
		Runs: []report.Run{mkRun("debian-7.2.13", "x86_64", 0, report.Pass, report.Skip), mkRun("debian-7.3.4", "arm64", 3, report.Pass)}}
	s2 := &report.Results{Schema: report.SchemaVersion, Command: "check", Shard: "2/2",
		Runs: []report.Run{mkRun("debian-7.2.13", "arm64", 1, report.Pass), mkRun("debian-7.3.4", "x86_64", 2, report.Pass)}}
	writeResults(t, filepath.Join(dir, "s1.json"), s1)
	writeResults(t, filepath.Join(dir, "s2.json"), s2)
	var stdout, stderr bytes.Buffer
	code := run([]string{"report", "merge", "--json", filepath.Join(dir, "m.json"), "--junit", filepath.Join(dir, "j.xml"), "--markdown", filepath.Join(dir, "s.md"),
		filepath.Join(dir, "s2.json"), filepath.Join(dir, "s1.json")}, &stdout, &stderr)
	require.Equal(t, exitOK, code, stderr.String())
	out := stdout.String()
	assert.Contains(t, out, "vm: 4 passed, 0 failed, 1 skipped")
	assert.Contains(t, out, "debian-7.2.13                  1/0/1 1m0s            1/0/0 1m0s")
	assert.Less(t, strings.Index(out, "debian-7.2.13   arm64"), strings.Index(out, "debian-7.3.4    x86_64"), "the whole run's order")
	m, err := report.ReadFile(filepath.Join(dir, "m.json"))
	require.NoError(t, err)
	assert.Empty(t, m.Shard)
	assert.Len(t, m.Runs, 4)
	x, err := os.ReadFile(filepath.Join(dir, "j.xml"))
	require.NoError(t, err)
	var doc struct {
		Tests int `xml:"tests,attr"`
	}
	require.NoError(t, xml.Unmarshal(x, &doc))
	assert.Equal(t, 5, doc.Tests)
	md, err := os.ReadFile(filepath.Join(dir, "s.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "### ✅ tramp vm check: 4 passed, 0 failed, 1 skipped")

	// A failed case: exit 1, the table still printed.
	s2.Runs[1] = mkRun("debian-7.3.4", "x86_64", 2, report.Fail)
	writeResults(t, filepath.Join(dir, "s2.json"), s2)
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"report", "merge", filepath.Join(dir, "s1.json"), filepath.Join(dir, "s2.json")}, &stdout, &stderr)
	assert.Equal(t, exitCheck, code)
	assert.Contains(t, stdout.String(), "MISMATCH")
	assert.Contains(t, stderr.String(), "1 failed")

	// Bad input: usage errors naming the file.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"schema": 9, "command": "check"}`), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "merge"}, "no results files"},
		{[]string{"report", "merge", filepath.Join(dir, "s1.json")}, "no results for shard 2/2"},
		{[]string{"report", "merge", filepath.Join(dir, "s1.json"), filepath.Join(dir, "bad.json")}, "bad.json: results schema 9"},
		{[]string{"report", "merge", filepath.Join(dir, "s1.json"), filepath.Join(dir, "s1.json")}, "both shard 1/2"},
		{[]string{"report", "merge", filepath.Join(dir, "nope.json")}, "nope.json"},
		{[]string{"report", "bogus"}, "unknown command"},
		{[]string{"report"}, "usage: tramp report merge"},
	} {
		stderr.Reset()
		assert.Equal(t, exitUsage, run(tc.args, &stdout, &stderr), "%v", tc.args)
		assert.Contains(t, stderr.String(), tc.want, "%v", tc.args)
	}
}
