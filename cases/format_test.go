package cases

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
)

// sameCase compares two parses of one case, ignoring where things were
// (file, lines).
func sameCase(a, b *Case) string {
	return cmp.Diff(a, b, cmpopts.IgnoreFields(Case{}, "File", "TargetLine", "ExtraLines"), cmpopts.IgnoreFields(Step{}, "Line"))
}

// TestFormatRoundTrip: every corpus case formats to text that parses back
// to the same case, and formatting that again gives the same text.
func TestFormatRoundTrip(t *testing.T) {
	corpus, err := Corpus()
	require.NoError(t, err)
	for _, c := range corpus {
		text := Format(c)
		back, err := Parse(c.Name+".tramp", text)
		if err != nil {
			t.Errorf("%s: the formatted case does not parse: %v\n%s", c.Name, err, text)
			continue
		}
		if d := sameCase(c, back); d != "" {
			t.Errorf("%s: the round trip changed the case (-corpus +formatted):\n%s\n%s", c.Name, d, text)
		}
		if again := Format(back); string(again) != string(text) {
			t.Errorf("%s: Format is not stable:\n%s\nthen\n%s", c.Name, text, again)
		}
	}
}
