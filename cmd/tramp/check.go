package main

import (
	"fmt"
	"io"

	"github.com/bpftramp/tramp/cases"
)

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "[--kernel P,..] [--arch A,..] [CASE...]", stderr)
	kernels := fs.String("kernel", "", "only these profiles (comma-separated; default: each case's own)")
	arches := fs.String("arch", "", "only these architectures (comma-separated; default: each case's own)")
	pos, code, done := parseFlags(fs, args)
	if done {
		return code
	}
	var corpus []*cases.Case
	if len(pos) == 0 {
		var err error
		corpus, err = cases.Corpus()
		if err != nil {
			fmt.Fprintf(stderr, "tramp check: %v\n", err)
			return exitUsage
		}
	}
	for _, f := range pos {
		c, err := cases.ParseFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "tramp check: %v\n", err)
			return exitUsage
		}
		corpus = append(corpus, c)
	}
	onlyK, onlyA := splitList(*kernels), splitList(*arches)
	runs, failed := 0, 0
	fmt.Fprintf(stdout, "%-36s %-8s %s\n", "case", "replays", "result")
	for _, c := range corpus {
		n, bad := 0, []string{}
		for _, cb := range c.Combos() {
			p, a := cb.Profile, cb.Arch
			if len(onlyK) > 0 && !contains(onlyK, p.Name) || len(onlyA) > 0 && !contains(onlyA, a.Name) {
				continue
			}
			n++
			res, err := cases.Replay(c, p, a, sizeFunc(a.Name))
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s/%s: %v", p.Name, a.Name, err))
				continue
			}
			for _, o := range res.Disagreements() {
				bad = append(bad, fmt.Sprintf("%s/%s line %d %s %s: model %s, expected %s", p.Name, a.Name, o.Line, o.Op, o.Prog, o.Result, o.Expect))
			}
		}
		runs += n
		if len(bad) == 0 {
			fmt.Fprintf(stdout, "%-36s %-8d ok\n", c.Name, n)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "%-36s %-8d FAIL\n", c.Name, n)
		for _, b := range bad {
			fmt.Fprintf(stdout, "    %s\n", b)
		}
	}
	fmt.Fprintf(stdout, "\nmodel: %d cases (%d profile×arch replays): %d passed, %d failed\n", len(corpus), runs, len(corpus)-failed, failed)
	if failed > 0 {
		return exitCheck
	}
	return exitOK
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
