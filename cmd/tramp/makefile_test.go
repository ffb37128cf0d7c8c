package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)

// TestMakeFuzzRunsEveryTarget: every fuzz target in the tree is in the
// Makefile's FUZZ_TARGETS, so make fuzz cannot leave one out.
func TestMakeFuzzRunsEveryTarget(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	require.NoError(t, err)
	var listed string
	for _, l := range strings.Split(string(mk), "\n") {
		if v, ok := strings.CutPrefix(l, "FUZZ_TARGETS := "); ok {
			listed = " " + v + " "
		}
	}
	if listed == "" {
		t.Fatal("no FUZZ_TARGETS line in the Makefile")
	}
	n := 0
	err = filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != "../.." {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", filepath.Dir(p))
		for _, m := range fuzzFunc.FindAllStringSubmatch(string(b), -1) {
			n++
			if want := " " + m[1] + ":./" + filepath.ToSlash(rel) + "/ "; !strings.Contains(listed, want) {
				t.Errorf("%s: %s is not in the Makefile's FUZZ_TARGETS (want %q)", p, m[1], strings.TrimSpace(want))
			}
		}
		return nil
	})
	require.NoError(t, err)
	if n < 10 {
		t.Errorf("found %d fuzz targets; the walk is broken", n)
	}
}
