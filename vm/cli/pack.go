package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bpftramp/tramp/vm/recording"
)

// packCmd packs the recordings of vm check --out trees into one gzipped
// file per build and arch under --testdata, for offline CI: every served
// build recorded without a per-case file each. Builds that have per-case
// recordings there already (tramp vm record's) are left to those.
func packCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("pack", "pack [--testdata DIR] TREE...", stderr)
	testdata := fs.String("testdata", DefaultTestdata, "where the packs go: <testdata>/<build>/<arch>.json.gz")
	trees, code, ok := parseArgs(fs, args, stdout)
	if !ok {
		return code
	}
	if len(trees) == 0 {
		fmt.Fprintln(stderr, "tramp vm pack: want at least one recording tree (tramp vm check --out DIR)")
		return ExitUsage
	}
	var recs []*recording.Recording
	skipped := map[string]int{}
	for _, dir := range trees {
		rs, err := recording.LoadAll(dir)
		if err != nil {
			fmt.Fprintf(stderr, "tramp vm pack: %v\n", err)
			return ExitUsage
		}
		if len(rs) == 0 {
			fmt.Fprintf(stderr, "tramp vm pack: no recordings under %s\n", dir)
			return ExitUsage
		}
		for _, r := range rs {
			if !r.Complete {
				fmt.Fprintf(stderr, "%s %s %s: incomplete (the boot died in it), left out\n", r.Profile, r.Arch, r.Case)
				continue
			}
			if st, err := os.Stat(filepath.Join(*testdata, r.Profile, r.Arch)); err == nil && st.IsDir() {
				skipped[r.Profile+" "+r.Arch]++
				continue
			}
			recs = append(recs, r)
		}
	}
	for k, n := range skipped {
		fmt.Fprintf(stderr, "%s: %d recordings left out, %s has its own files\n", k, n, *testdata)
	}
	written, err := recording.WritePack(*testdata, recs)
	if err != nil {
		fmt.Fprintf(stderr, "tramp vm pack: %v\n", err)
		return ExitCheck
	}
	total := 0
	for _, p := range written {
		total += p.Bytes
		fmt.Fprintf(stdout, "%-50s %4d recordings %8d bytes\n", p.Path, p.Recordings, p.Bytes)
	}
	fmt.Fprintf(stdout, "%d packs, %d bytes\n", len(written), total)
	return ExitOK
}
