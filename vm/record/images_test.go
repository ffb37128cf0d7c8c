package record

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/internal/golden"
	"github.com/bpftramp/tramp/vm/recording"
)

// countsGolden holds, per kernel/arch/variant, how many recorded images
// are byte-exact: a recording lost, or a variant gone, changes it.
const countsGolden = "testdata/recorded_images.txt"

// testdata is the recordings from real kernels: the corpus and the shapes.
var testdata = filepath.Join("..", "..", "cases", "testdata")

// corpusByName is the case corpus by case name.
func corpusByName(t *testing.T) map[string]*cases.Case {
	t.Helper()
	byName, err := cases.CorpusByName()
	require.NoError(t, err)
	return byName
}

// TestRecordedImages renders the model's plan for every image captured
// from a real kernel, with that kernel's addresses, and compares the code
// byte for byte (and the tail after it). Corpus recordings are replayed
// from their case file, shape recordings (tramp vm shapes) from the case
// text they carry in Source.
func TestRecordedImages(t *testing.T) {
	if _, err := os.Stat(testdata); err != nil {
		t.Fatalf("no recordings at %s: %v", testdata, err)
	}
	recs, err := recording.LoadAll(testdata)
	require.NoError(t, err)
	byName := corpusByName(t)
	// Per kernel/arch: byte-exact images of corpus cases and of shapes
	// (recordings with a Source, checked from that text).
	matched, shapes, nrec := map[string]int{}, map[string]int{}, map[string]int{}
	total := 0
	for _, rec := range recs {
		// Per boot variant: the KASLR and CPU-model recordings are counted
		// apart from the default ones.
		key := rec.Profile + "/" + rec.Arch
		if v := recording.VariantOf(rec); v != "" {
			key += "/" + v
		}
		if rec.KASLR {
			key += "/kaslr"
		}
		nrec[key]++
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
		for _, r := range CompareImages(rec, c, nil) {
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
	keys := make([]string, 0, len(nrec))
	n := 0
	for k := range nrec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var counts strings.Builder
	counts.WriteString("# kernel/arch[/variant]: recordings, and byte-exact recorded images of corpus cases and shapes; go test ./vm/record -run TestRecordedImages -update rewrites it\n")
	for _, k := range keys {
		fmt.Fprintf(&counts, "%s recordings %d corpus %d shapes %d\n", k, nrec[k], matched[k], shapes[k])
		n += matched[k] + shapes[k]
	}
	t.Logf("%d of %d recorded images reproduced byte for byte", n, total)
	if total == 0 {
		t.Fatal("no recorded images")
	}
	golden.Check(t, countsGolden, counts.String(), "go test ./vm/record -run TestRecordedImages")
}

// TestFlippedByteIsCaught flips, one at a time, every byte of real
// images (x86_64, arm64 and riscv64, a few recordings each) and requires the
// compare to catch each flip, except inside the fields whose values are
// learned from the kernel's bytes (LearnedSyms, pinned here), and there
// the flips that make the value no plausible heap pointer.
func TestFlippedByteIsCaught(t *testing.T) {
	if got := strings.Join(LearnedSyms, ","); got != "im,prog:" {
		t.Fatalf("learned values are %s; widening them lets more wrong bytes pass: review, then update this test", got)
	}
	byName := corpusByName(t)
	for _, path := range []string{
		"debian-7.2.13/x86_64/fsession_cookie.json",
		"debian-7.2.13/x86_64/fmod_ret_two_and_fexit.json",
		"debian-7.2.13/arm64/fsession_cookie.json",
		"debian-7.2.13/arm64/fsession_fmod_ret.json",
		"debian-7.2.13/riscv64/fsession_cookie.json",
		"debian-7.2.13/riscv64/fsession_fmod_ret.json",
	} {
		rec, err := recording.Load(filepath.Join(testdata, path))
		require.NoError(t, err)
		c := byName[rec.Case]
		if c == nil || len(rec.Captures) == 0 {
			t.Fatalf("%s: no case or no capture", path)
		}
		capt := rec.Captures[0]
		if r := compareImage(rec, c, capt); !r.OK {
			t.Fatalf("%s: the unflipped image does not compare: %s", path, r.Diff)
		}
		plan, err := planAt(c, rec, capt.Step)
		require.NoError(t, err)
		real, _ := hex.DecodeString(capt.Bytes)
		img, err := render(rec, capt, plan, real)
		require.NoError(t, err)
		learned := map[int]bool{}
		for _, r := range img.Relocs {
			if isLearned(r.Sym) {
				for i := r.Off; i < r.Off+max(r.Len, 4); i++ {
					learned[i] = true
				}
			}
		}
		caught, passed := 0, 0
		for i := range img.Code {
			flipped := capt
			b := append([]byte(nil), real...)
			b[i] ^= 0x01
			flipped.Bytes = hex.EncodeToString(b)
			if r := compareImage(rec, c, flipped); !r.OK {
				// The difference is shown: a changed instruction line
				// in the listing diff, or the tail's own message.
				if !regexp.MustCompile(`(?m)^[-+] |after the code`).MatchString(r.Diff) {
					t.Errorf("%s: a flipped byte at +%#x fails the compare but the diff shows no changed line:\n%s", path, i, r.Diff)
				}
				caught++
			} else {
				if !learned[i] {
					t.Errorf("%s: a flipped byte at +%#x (outside any learned field) passes the compare", path, i)
				}
				passed++
			}
		}
		t.Logf("%s: %d of %d flips caught, %d inside learned fields accepted", path, caught, len(img.Code), passed)
	}
}
