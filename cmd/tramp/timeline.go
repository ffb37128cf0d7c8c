package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/vm/record"
	"github.com/bpftramp/tramp/vm/recording"
)

// runTimeline shows, for a case, which kernel builds changed its real
// images and how: real against real, from recordings.
func runTimeline(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("timeline", "[--arch ARCH] [--recordings DIR,...] [--cpu MODEL] [--kaslr] CASE...", stderr)
	archName := fs.String("arch", "x86_64", "x86_64 or arm64")
	dirs := fs.String("recordings", "cases/testdata", "comma-separated recording trees (<build>/<arch>/<case>.json, as tramp vm record and vm check --out write); a build found in two keeps the first")
	cpu := fs.String("cpu", "", "the boot variant: recordings made with this QEMU -cpu model (default: the default boot)")
	kaslr := fs.Bool("kaslr", false, "the boot variant: recordings made with KASLR")
	context := fs.Int("context", 2, "unchanged instructions shown around each change")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprintln(stderr, "tramp timeline: want at least one CASE file")
		fs.Usage()
		return exitUsage
	}
	var all []*recording.Recording
	for _, d := range strings.Split(*dirs, ",") {
		recs, err := recording.LoadAll(d)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "tramp timeline: --recordings %s: %v\n", d, err)
			return exitUsage
		}
		all = append(all, recs...)
	}
	code = exitOK
	for i, p := range pos {
		c, err := cases.ParseFile(p)
		if err != nil {
			fmt.Fprintf(stderr, "tramp timeline: %v\n", err)
			return exitUsage
		}
		var recs []*recording.Recording
		seen := map[string]bool{}
		for _, rec := range all {
			if rec.Case != c.Name || rec.Arch != *archName || rec.CPU != *cpu || rec.KASLR != *kaslr || len(rec.Append) > 0 || rec.Source != "" || seen[rec.Profile] {
				continue
			}
			seen[rec.Profile] = true
			recs = append(recs, rec)
		}
		if len(recs) == 0 {
			fmt.Fprintf(stderr, "tramp timeline: no %s recording of %s under %s\n", *archName, c.Name, *dirs)
			code = exitCheck
			continue
		}
		eras, err := record.Timeline(recs, c)
		if err != nil {
			fmt.Fprintf(stderr, "tramp timeline: %v\n", err)
			return exitUsage
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		record.WriteTimeline(stdout, c, *archName, eras, *context)
	}
	return code
}
