package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/bpftramp/tramp/vm/report"
)

const reportUsage = `usage: tramp report merge [--json FILE] [--junit FILE] [--markdown FILE] RESULTS.json...

  merge   join the --json results of tramp vm check|record|shapes|fuzz shards (--shard i/n) or runs
          into one table, one JSON, one JUnit XML and one Markdown summary; exit 1 if any case
          failed or any boot had a VM error
`

// runReport is "tramp report": the results of VM runs, for CI.
func runReport(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, reportUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, reportUsage)
		return exitOK
	case "merge":
		return runMerge(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "tramp report: unknown command %q\n\n%s", args[0], reportUsage)
	return exitUsage
}

func runMerge(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("report merge", "[--json FILE] [--junit FILE] [--markdown FILE] RESULTS.json...", stderr)
	jsonOut := fs.String("json", "", "write the merged results JSON to this file (- for stdout)")
	junitOut := fs.String("junit", "", "write the merged JUnit XML to this file")
	mdOut := fs.String("markdown", "", "write the merged Markdown summary to this file (for a CI step summary)")
	quiet := fs.Bool("q", false, "do not print the table")
	files, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "tramp report merge: no results files given (the --json files of tramp vm check --shard i/n)\n")
		return exitUsage
	}
	var in []report.File
	for _, p := range files {
		r, err := report.ReadFile(p)
		if err != nil {
			fmt.Fprintf(stderr, "tramp report merge: %v\n", err)
			return exitUsage
		}
		in = append(in, report.File{Name: p, Results: r})
	}
	res, err := report.Merge(in)
	if err != nil {
		fmt.Fprintf(stderr, "tramp report merge: %v\n", err)
		return exitUsage
	}
	if !*quiet {
		report.WriteTable(stdout, res)
	}
	if err := res.WriteFiles(stdout, *jsonOut, *junitOut, *mdOut); err != nil {
		fmt.Fprintf(stderr, "tramp report merge: %v\n", err)
		return exitCheck
	}
	if !res.OK() {
		t := res.Totals()
		var why []string
		if t.Failed > 0 {
			why = append(why, fmt.Sprintf("%d failed", t.Failed))
		}
		if t.VMErrors > 0 {
			why = append(why, fmt.Sprintf("%d VM error(s)", t.VMErrors))
		}
		fmt.Fprintf(stderr, "tramp report merge: %s\n", strings.Join(why, ", "))
		return exitCheck
	}
	return exitOK
}
