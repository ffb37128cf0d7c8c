package recording

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	require.NoError(t, w.Close())
	return b.Bytes()
}

func TestPackRoundTripAndMerge(t *testing.T) {
	root := t.TempDir()
	a := &Recording{Schema: Schema, Case: "a", Profile: "debian-7.1.8", Arch: "x86_64", Complete: true}
	b := &Recording{Schema: Schema, Case: "b", Profile: "debian-7.1.8", Arch: "x86_64"}
	c := &Recording{Schema: Schema, Case: "a", Profile: "debian-7.1.8", Arch: "arm64"}
	written, err := WritePack(root, []*Recording{b, a, c})
	require.NoError(t, err)
	require.Len(t, written, 2)
	require.Equal(t, 2, written[0].Recordings, "x86_64: a and b")
	first, err := os.ReadFile(PackPath(root, "debian-7.1.8", "x86_64"))
	require.NoError(t, err)
	require.Equal(t, len(first), written[0].Bytes)

	// A newer recording of a replaces the old one; b stays.
	a2 := *a
	a2.Complete = false
	_, err = WritePack(root, []*Recording{&a2})
	require.NoError(t, err)
	got, err := LoadAll(root)
	require.NoError(t, err)
	want := []*Recording{c, &a2, b}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("LoadAll after the merge (-want +got):\n%s", d)
	}
	// The same content is the same bytes.
	_, err = WritePack(root, []*Recording{a})
	require.NoError(t, err)
	again, err := os.ReadFile(PackPath(root, "debian-7.1.8", "x86_64"))
	require.NoError(t, err)
	require.Equal(t, first, again, "a pack's bytes depend on its content only")
}

func TestParsePackErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"not a gzip stream at all", "gzip: invalid header"},
		{"", "p.json.gz: EOF"},
		{string(gz(t, `{"schema": 2, "kernel": "k", "arch": "x86_64"}`)), "schema 2"},
		{string(gz(t, `{"schema": 1, "kernel": "k", "arch": "x86_64", "extra": 1}`)), "unknown field"},
		{string(gz(t, `{"schema": 1, "arch": "x86_64"}`)), "kernel and arch are required"},
		{string(gz(t, `{"schema": 1, "kernel": "k", "arch": "x86_64", "recordings": [{"schema": 1, "case": "c", "kernel": "other", "arch": "x86_64"}]}`)), "recording 0 (c) is of other x86_64, the pack of k x86_64"},
		{string(gz(t, `{"schema": 1, "kernel": "k", "arch": "x86_64", "recordings": [{"schema": 1, "case": "c", "kernel": "k", "arch": "x86_64"}, {"schema": 1, "case": "c", "kernel": "k", "arch": "x86_64"}]}`)), "c twice"},
		{string(gz(t, `{"schema": 1, "kernel": "k", "arch": "x86_64", "recordings": [{"schema": 1}]}`)), "p.json.gz: recording 0: case, kernel and arch are required"},
	} {
		_, err := ParsePack("p.json.gz", []byte(tc.in))
		require.ErrorContains(t, err, tc.want)
	}
}

// FuzzParsePack: what ParsePack accepts packs and parses back the same,
// and it never panics.
func FuzzParsePack(f *testing.F) {
	f.Add(gz(f, `{"schema": 1, "kernel": "k", "arch": "x86_64", "recordings": [{"schema": 1, "case": "c", "kernel": "k", "arch": "x86_64"}]}`))
	if b, err := os.ReadFile(filepath.Join(testdata, "debian-7.2.13", "x86_64", "fsession_basic.json")); err == nil {
		f.Add(gz(f, `{"schema": 1, "kernel": "debian-7.2.13", "arch": "x86_64", "recordings": [`+string(b)+`]}`))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ParsePack("fuzz.json.gz", b)
		if err != nil || len(recs) == 0 {
			return
		}
		root := t.TempDir()
		if _, err := WritePack(root, recs); err != nil {
			t.Fatalf("WritePack: %v", err)
		}
		back, err := LoadPack(PackPath(root, recs[0].Profile, recs[0].Arch))
		if err != nil {
			t.Fatalf("a written pack does not load: %v", err)
		}
		if len(back) != len(recs) {
			t.Fatalf("%d recordings back, %d in", len(back), len(recs))
		}
	})
}
