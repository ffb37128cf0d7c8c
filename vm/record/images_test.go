package record

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/bpftramp/tramp/cases"
)

// testdata is the recordings from real kernels: the corpus and the shapes.
var testdata = filepath.Join("..", "..", "cases", "testdata")

// TestRecordedImages renders the model's plan for every image captured
// from a real kernel, with that kernel's addresses, and compares the code
// byte for byte (and the tail after it). Corpus recordings are replayed
// from their case file, shape recordings (tramp vm shapes) from the case
// text they carry in Source.
func TestRecordedImages(t *testing.T) {
	if _, err := os.Stat(testdata); err != nil {
		t.Fatalf("no recordings at %s: %v", testdata, err)
	}
	recs, err := LoadAll(testdata)
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := cases.Corpus()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*cases.Case{}
	for _, c := range corpus {
		byName[c.Name] = c
	}
	// Per kernel/arch: byte-exact images of corpus cases and of shapes
	// (recordings with a Source, checked from that text).
	matched, shapes := map[string]int{}, map[string]int{}
	total := 0
	for _, rec := range recs {
		// Per boot variant: the KASLR and CPU-model recordings are counted
		// apart from the default ones.
		key := rec.Profile + "/" + rec.Arch
		if v := VariantOf(rec); v != "" {
			key += "/" + v
		}
		name := key + "/" + rec.Case
		c := byName[rec.Case]
		if rec.Source != "" {
			var err error
			if c, err = ShapeCase(rec); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
		}
		if c == nil {
			t.Errorf("%s: no such case in the corpus", name)
			continue
		}
		for _, r := range CompareImages(rec, c) {
			total++
			if !r.OK {
				t.Errorf("%s step %d: %s", name, r.Step, r.Diff)
				continue
			}
			if rec.Source != "" {
				shapes[key]++
			} else {
				matched[key]++
			}
		}
	}
	keys := make([]string, 0, len(matched))
	n := 0
	for k := range matched {
		keys = append(keys, k)
	}
	for k := range shapes {
		if _, ok := matched[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%s: %d images byte-exact (%d corpus, %d shapes)", k, matched[k]+shapes[k], matched[k], shapes[k])
		n += matched[k] + shapes[k]
	}
	t.Logf("%d of %d recorded images reproduced byte for byte", n, total)
	if total == 0 {
		t.Fatal("no recorded images")
	}
}
