package recording

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

var testdata = filepath.Join("..", "..", "cases", "testdata")

// Every stored recording loads, is filed where PathOf says, and writes
// back to the same value.
func TestLoadAllStored(t *testing.T) {
	recs, err := LoadAll(testdata)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	dir := t.TempDir()
	for i, r := range recs {
		p, err := Write(dir, r)
		require.NoError(t, err)
		back, err := Load(p)
		require.NoError(t, err)
		if d := cmp.Diff(r, back); d != "" {
			t.Fatalf("%s: write and load changed it (-stored +back):\n%s", PathOf(testdata, r), d)
		}
		if i > 50 {
			break // the format round trip; the paths below check every file
		}
	}
	for _, r := range recs {
		if packed(r) {
			continue // ParsePack checks a packed one's build and arch
		}
		if _, err := os.Stat(PathOf(testdata, r)); err != nil {
			t.Errorf("%s/%s/%s (variant %q, kaslr %v) is not filed where PathOf says: %v", r.Profile, r.Arch, r.Case, VariantOf(r), r.KASLR, err)
		}
	}
}

// packed says whether a testdata recording came from a pack.
func packed(r *Recording) bool {
	_, err := os.Stat(PackPath(testdata, r.Profile, r.Arch))
	return err == nil
}

// arch/internal/recorded sits below vm and reads only "captures", "addr"
// and "bytes" of a recording; this pins that those keys still carry what
// the format's Capture holds.
func TestArchReaderKeys(t *testing.T) {
	recs, err := LoadAll(testdata)
	require.NoError(t, err)
	n := 0
	for _, r := range recs {
		if len(r.Captures) == 0 || packed(r) {
			continue // arch/internal/recorded reads the per-case files only
		}
		raw, err := os.ReadFile(PathOf(testdata, r))
		require.NoError(t, err)
		var lite struct {
			Captures []struct {
				Addr  uint64 `json:"addr"`
				Bytes string `json:"bytes"`
			} `json:"captures"`
		}
		require.NoError(t, json.Unmarshal(raw, &lite))
		require.Len(t, lite.Captures, len(r.Captures))
		for i, c := range r.Captures {
			require.Equal(t, c.Addr, lite.Captures[i].Addr)
			require.Equal(t, c.Bytes, lite.Captures[i].Bytes)
			_, err := hex.DecodeString(c.Bytes)
			require.NoError(t, err)
			n++
		}
	}
	require.Greater(t, n, 1000, "captures compared")
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"schema": 2, "case": "c", "kernel": "k", "arch": "x86_64"}`, "x.json: schema 2, this tramp reads 1"},
		{`{"schema": 1, "case": "c", "arch": "x86_64"}`, "x.json: case, kernel and arch are required"},
		{`{"schema": 1, "case": "c", "kernel": "k", "arch": "x86_64", "surprise": 1}`, `x.json: json: unknown field "surprise"`},
		{`{"schema": 1, "case": "c", "kernel": "k", "arch": "x86_64"} {}`, "x.json: more after the recording"},
		{`{"schema": 1, "steps": [{"step": "one"}]}`, "x.json: json: cannot unmarshal string"},
	} {
		_, err := Parse("x.json", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParse: what Parse accepts marshals and parses back to the same
// recording, and it never panics.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(testdata, "debian-7.2.13", "*", "fsession_basic*.json"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"schema": 1, "case": "c", "kernel": "k", "arch": "x86_64"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse("fuzz.json", b)
		if err != nil {
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := Parse("again.json", out)
		if err != nil {
			t.Fatalf("a parsed recording does not parse again: %v\n%s", err, out)
		}
		if d := cmp.Diff(r, back); d != "" {
			t.Fatalf("round trip changed it:\n%s", d)
		}
	})
}
