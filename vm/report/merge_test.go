package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shardsOf cuts a whole run into the shard results of n shards as tramp
// vm check makes them: each shard's pieces of the plan over the runs.
func shardsOf(t *testing.T, whole *Results, n int) []File {
	t.Helper()
	var gs []Group
	for _, r := range whole.Runs {
		gs = append(gs, Group{Build: r.Build, Arch: r.Arch, Cases: len(r.Cases)})
	}
	var files []File
	for i, pieces := range Plan(gs, n) {
		s := Shard{i + 1, n}
		r := &Results{Schema: SchemaVersion, Command: whole.Command, Shard: s.String(), Runs: []Run{}}
		for _, p := range pieces {
			run := whole.Runs[p.Group]
			run.Cases = append([]Case(nil), run.Cases[p.From:p.To]...)
			r.Runs = append(r.Runs, run)
		}
		// through the wire format, as merge sees them
		b, err := r.Marshal()
		require.NoError(t, err)
		back, err := Parse(b)
		require.NoError(t, err)
		files = append(files, File{Name: "shard-" + s.String() + ".json", Results: back})
	}
	// merge takes them in any order
	for i, j := 0, len(files)-1; i < j; i, j = i+1, j-1 {
		files[i], files[j] = files[j], files[i]
	}
	return files
}

func table(r *Results) string {
	var b strings.Builder
	WriteTable(&b, r)
	return b.String()
}

// TestMergeShardsIsTheWholeRun: the merged shards of a run give the
// whole run's table, totals and exit status, for every shard count;
// their JSON is the whole run's when no build × arch was split.
func TestMergeShardsIsTheWholeRun(t *testing.T) {
	whole := sample()
	for n := 1; n <= 9; n++ {
		m, err := Merge(shardsOf(t, whole, n))
		require.NoError(t, err, "%d shards", n)
		wt, mt := whole.Totals(), m.Totals()
		assert.Equal(t, [3]int{wt.Passed, wt.Failed, wt.Skipped}, [3]int{mt.Passed, mt.Failed, mt.Skipped}, "%d shards", n)
		// (each part of a split boot is a boot: here each has the error)
		assert.GreaterOrEqual(t, mt.VMErrors, wt.VMErrors)
		assert.False(t, m.OK())
		if n <= len(whole.Runs) {
			assert.Equal(t, table(whole), table(m), "%d shards", n)
			assert.Equal(t, whole, m, "%d shards", n)
			continue
		}
		// Split build × arch: the same case rows in the same order, a
		// boot line per part.
		rows := func(s string) string { a, _, _ := strings.Cut(s, "\n\n"); return a }
		assert.Equal(t, rows(table(whole)), rows(table(m)), "%d shards", n)
		var cases []string
		for _, r := range m.Runs {
			for _, c := range r.Cases {
				cases = append(cases, r.Build+" "+r.Arch+" "+c.Case)
			}
		}
		assert.Len(t, cases, 7)
	}
	ok := &Results{Schema: SchemaVersion, Command: "check", Runs: whole.Runs[:1]}
	m, err := Merge(shardsOf(t, ok, 3))
	require.NoError(t, err)
	assert.True(t, m.OK())
}

// TestMergeWholeRuns: whole runs of one command merge in the order given.
func TestMergeWholeRuns(t *testing.T) {
	s := sample()
	a := &Results{Schema: SchemaVersion, Command: "check", Runs: s.Runs[2:]}
	b := &Results{Schema: SchemaVersion, Command: "check", Runs: s.Runs[:2]}
	m, err := Merge([]File{{"a.json", a}, {"b.json", b}})
	require.NoError(t, err)
	require.Len(t, m.Runs, 3)
	assert.Equal(t, "debian-6.18.15", m.Runs[0].Build)
	assert.Equal(t, "arm64", m.Runs[2].Arch)
}

func TestMergeRefuses(t *testing.T) {
	s := sample()
	shard := func(sh string, runs ...Run) *Results {
		return &Results{Schema: SchemaVersion, Command: "check", Shard: sh, Runs: runs}
	}
	for name, tc := range map[string]struct {
		files []File
		want  []string
	}{
		"nothing":         {nil, []string{"no results"}},
		"schema":          {[]File{{"a.json", shard("1/2", s.Runs[0])}, {"old.json", &Results{Schema: 2, Command: "check", Shard: "2/2"}}}, []string{"old.json", "schema 2"}},
		"command":         {[]File{{"a.json", shard("")}, {"b.json", &Results{Schema: SchemaVersion, Command: "fuzz"}}}, []string{"a.json", "b.json", "check", "fuzz"}},
		"duplicate case":  {[]File{{"a.json", shard("1/2", s.Runs[0])}, {"b.json", shard("2/2", s.Runs[0])}}, []string{"b.json", "debian-7.2.13 x86_64 attach_fentry", "also in a.json"}},
		"duplicate run":   {[]File{{"a.json", shard("", s.Runs[1])}, {"b.json", shard("", s.Runs[1])}}, []string{"b.json", "debian-7.2.13 arm64 attach_fentry", "a.json"}},
		"same shard":      {[]File{{"a.json", shard("1/2", s.Runs[0])}, {"b.json", shard("1/2", s.Runs[1])}}, []string{"a.json and b.json are both shard 1/2"}},
		"missing shard":   {[]File{{"a.json", shard("1/3", s.Runs[0])}, {"c.json", shard("3/3")}}, []string{"no results for shard 2/3"}},
		"shard counts":    {[]File{{"a.json", shard("1/2", s.Runs[0])}, {"b.json", shard("2/3", s.Runs[1])}}, []string{"b.json", "2/3", "of 2"}},
		"whole and shard": {[]File{{"a.json", shard("1/1", s.Runs[0])}, {"w.json", shard("", s.Runs[1])}}, []string{"w.json is a whole run"}},
	} {
		_, err := Merge(tc.files)
		if assert.Error(t, err, name) {
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w, name)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	good, err := sample().Marshal()
	require.NoError(t, err)
	r, err := Parse(good)
	require.NoError(t, err)
	assert.Equal(t, sample(), r)
	for name, tc := range map[string]struct{ data, want string }{
		"empty":      {"  \n", "empty"},
		"old format": {`[{"kernel":"debian-7.2.13"}]`, "before the results schema"},
		"syntax":     {"{\n  \"schema\": 1,\n  \"runs\": [}\n", "line 3, column"},
		"type":       {"{\"schema\": \"one\"}", "line 1, column"},
		"schema":     {`{"schema": 7, "command": "check"}`, "schema 7"},
		"no schema":  {`{"command": "check"}`, "schema 0"},
		"command":    {`{"schema": 1}`, "no command"},
		"shard":      {`{"schema": 1, "command": "check", "shard": "3/2"}`, `shard: "3/2"`},
		"run":        {`{"schema": 1, "command": "check", "runs": [{"arch": "x86_64"}]}`, "runs[0]: no build"},
		"case":       {`{"schema": 1, "command": "check", "runs": [{"build": "b", "arch": "a", "cases": [{"status": "pass"}]}]}`, "runs[0].cases[0] (b a): no case name"},
		"status":     {`{"schema": 1, "command": "check", "runs": [{"build": "b", "arch": "a", "cases": [{"case": "c", "status": "ok"}]}]}`, `status "ok"`},
		"index":      {`{"schema": 1, "command": "check", "runs": [{"build": "b", "arch": "a", "index": -1}]}`, "negative index"},
	} {
		_, err := Parse([]byte(tc.data))
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), tc.want, name)
		}
	}
}

// TestMatrix: the build × arch table of passed/failed/skipped and wall
// time, "-" where a build did not run on an arch; parts of a split build
// × arch add up.
func TestMatrix(t *testing.T) {
	runs := []Run{
		{Build: "debian-7.2.13", Arch: "x86_64", Cases: []Case{{Status: Pass}, {Status: Pass}, {Status: Skip}}},
		{Build: "debian-7.2.13", Arch: "arm64", ElapsedMS: 61_400, Cases: []Case{{Status: Pass}, {Status: Fail}}},
		{Build: "debian-6.18.15", Arch: "x86_64", ElapsedMS: 30_000, Error: "hung", Cases: []Case{{Status: Pass}}},
		{Build: "debian-7.2.13", Arch: "arm64", ElapsedMS: 20_000, Cases: []Case{{Status: Pass}}},
	}
	var b strings.Builder
	WriteMatrix(&b, runs)
	want := `
build (passed/failed/skipped)  x86_64                arm64               
debian-7.2.13                  2/0/1                 2/1/0 1m21s         
debian-6.18.15                 1/0/0 30s VM error    -                   

`
	assert.Equal(t, want, b.String())
}

// TestTable: the per-case rows, problems, boot lines with VM error and
// console tail, the matrix (several builds) and the totals.
func TestTable(t *testing.T) {
	got := table(sample())
	for _, want := range []string{
		"debian-7.2.13   arm64   slots_limit | mixed                     40    3     9      4  MISMATCH\n    line 12 attach p38: kernel E2BIG, model ok\n",
		"debian-6.18.15  x86_64  churn                                    -    -     -      -  NO RESULT\n",
		"debian-7.2.13 x86_64: 3 cases, boot→hello 21.34s, whole run 1m35.12s\n",
		"debian-6.18.15 x86_64: 2 cases, boot→hello 19s, whole run 10m0s\n  VM error: guest hung: no record for 120s\n  last console lines:\n    [  99.1] rcu",
		"debian-6.18.15                 1/1/0 10m0s VM error",
		"vm: 4 passed, 2 failed, 1 skipped\n",
	} {
		assert.Contains(t, got, want)
	}
	one := &Results{Schema: SchemaVersion, Command: "check", Runs: sample().Runs[:2]}
	assert.NotContains(t, table(one), "build (passed/failed/skipped)", "one build: no matrix")
}

func TestWriteFiles(t *testing.T) {
	var stdout bytes.Buffer
	dir := t.TempDir()
	require.NoError(t, sample().WriteFiles(&stdout, "-", dir+"/j.xml", dir+"/s.md"))
	var back Results
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &back))
	r, err := ReadFile(dir + "/j.xml")
	assert.Nil(t, r)
	assert.ErrorContains(t, err, dir+"/j.xml")
	err = sample().WriteFiles(&stdout, dir+"/no/such/dir/r.json", "", "")
	assert.ErrorContains(t, err, "--json")
}
