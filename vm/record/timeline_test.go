package record

import (
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/vm/recording"
)

func loadRec(t *testing.T, build, arch, name string) *recording.Recording {
	t.Helper()
	rec, err := recording.Load(filepath.Join(testdata, build, arch, name+".json"))
	require.NoError(t, err)
	return rec
}

// The real fentry images of 6.18.15, 7.2.13 and 7.3.4: the last two are
// one era (the addresses in them differ, their code does not), and the step
// from 6.18.15 is the skip NOP, shown as the one changed instruction.
func TestTimelineRealImages(t *testing.T) {
	c := corpusByName(t)["fentry_only"]
	var recs []*recording.Recording
	for _, b := range []string{"debian-7.3.4", "debian-6.18.15", "debian-7.2.13"} {
		recs = append(recs, loadRec(t, b, "x86_64", "fentry_only"))
	}
	require.NotEqual(t, recs[0].Captures[0].Bytes, recs[2].Captures[0].Bytes, "the two boots' images differ in their bytes (the addresses they call)")
	eras, err := Timeline(recs, c)
	require.NoError(t, err)
	require.Len(t, eras, 2)
	require.Equal(t, []string{"debian-6.18.15"}, eras[0].Builds)
	require.Equal(t, []string{"debian-7.2.13", "debian-7.3.4"}, eras[1].Builds)
	for _, e := range eras {
		for _, im := range e.Images {
			require.True(t, im.Exact, "%v step %d: the generator reproduces every recorded image", e.Builds, im.Step)
		}
	}
	var sb strings.Builder
	WriteTimeline(&sb, c, "x86_64", eras, 1)
	out := sb.String()
	require.Contains(t, out, "1 instructions differ")
	require.Contains(t, out, "+        19  nop")

	// One flipped byte in 7.3.4's image is a third era, and its line
	// shows (the generator no longer reproduces that image).
	flipped := *recs[0]
	flipped.Captures = append(flipped.Captures[:0:0], recs[0].Captures...)
	b, err := hex.DecodeString(flipped.Captures[0].Bytes)
	require.NoError(t, err)
	b[0x1b] ^= 0x01
	flipped.Captures[0].Bytes = hex.EncodeToString(b)
	eras, err = Timeline([]*recording.Recording{recs[1], recs[2], &flipped}, c)
	require.NoError(t, err)
	require.Len(t, eras, 3)
	require.False(t, eras[2].Images[0].Exact)
	sb.Reset()
	WriteTimeline(&sb, c, "x86_64", eras, 0)
	require.Contains(t, sb.String(), "does not reproduce")

	_, err = Timeline([]*recording.Recording{recs[0], loadRec(t, "debian-7.2.13", "arm64", "fentry_only")}, c)
	require.ErrorContains(t, err, "another arch or boot variant")
}
