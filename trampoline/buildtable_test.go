package trampoline

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleTable = `# sample
build arch skip-nop x86-jmp-mode
7.2.9    x86_64 - +
7.2.11   x86_64 + +
7.1.7    x86_64 - .
7.1.12   x86_64 + +
7.3.4    x86_64 + +
6.18.15  x86_64 - -
7.2.9    arm64  - .
`

func TestBuildTableDecides(t *testing.T) {
	tb, err := ParseBuildTable(sampleTable)
	require.NoError(t, err)
	skip, jmp := LookupDelta("skip-nop"), LookupDelta("x86-jmp-mode")
	for _, tc := range []struct {
		v, arch string
		d       *Delta
		on      bool
		pinned  bool
		note    string
	}{
		{"7.2.9", "x86_64", skip, false, true, "live: 7.2.9 x86_64 lacks it"},
		{"7.2.11+deb13-cloud-amd64", "x86_64", skip, true, true, "live"},
		{"7.2.10", "x86_64", skip, true, false, "between 7.2.9 (lacks it) and 7.2.11 (has it)"},
		{"7.2.13", "x86_64", skip, true, false, "newer than 7.2.11, the newest judged 7.2 build"},
		{"7.1.8", "x86_64", skip, true, false, "between 7.1.7"},
		{"7.1.13", "x86_64", skip, true, false, "newer than 7.1.12"},
		{"7.1.3", "x86_64", skip, false, false, "older than 7.1.7"},
		{"7.4.1", "x86_64", skip, true, false, "no 7.4 build judged on x86_64; the newest older one, 7.3.4, has it"},
		{"6.12.117", "x86_64", skip, false, false, "the oldest newer one, 6.18.15, lacks it"},
		{"7.1.8", "x86_64", jmp, true, false, "older than 7.1.12"},
		{"7.2.10", "x86_64", jmp, true, true, "between live 7.2.9 and 7.2.11 (7.2 x86_64), both has it"},
	} {
		a, ok := tb.decide(tc.d, MustVersion(tc.v), tc.arch)
		require.True(t, ok, tc.v)
		assert.Equal(t, tc.on, a.On, "%s %s %s: %s", tc.v, tc.arch, tc.d.Name, a.Note)
		assert.Equal(t, tc.pinned, a.Pinned, "%s %s %s: %s", tc.v, tc.arch, tc.d.Name, a.Note)
		assert.Contains(t, a.Note, tc.note, "%s %s %s", tc.v, tc.arch, tc.d.Name)
	}
	_, ok := tb.decide(jmp, MustVersion("7.2.9"), "arm64")
	assert.False(t, ok, "no arm64 build judged for jmp mode: the table does not decide")
}

func TestBuildTableErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "no header line"},
		{"build arch nosuch\n", "line 1: unknown delta \"nosuch\""},
		{"build arch skip-nop skip-nop\n", "named twice"},
		{"arch build skip-nop\n", "want the header"},
		{"build arch skip-nop\n7.2.9 x86_64\n", "line 2: 2 fields, the header has 3"},
		{"build arch skip-nop\n7.2.9 mips +\n", "line 2: unknown arch"},
		{"build arch skip-nop\nseven x86_64 +\n", "line 2: kernel release"},
		{"build arch skip-nop\n7.2.9 x86_64 y\n", "want +, - or ., got \"y\""},
		{"build arch skip-nop\n7.2.9 x86_64 +\n7.2.9 x86_64 -\n", "line 3: 7.2.9 x86_64 listed twice"},
	} {
		_, err := ParseBuildTable(tc.in)
		require.Error(t, err, "%q", tc.in)
		assert.Contains(t, err.Error(), tc.want, "%q", tc.in)
	}
}

// The embedded table parses, names every delta it judges, and formats
// back to itself (rows sorted), so a hand edit that breaks it fails here.
func TestEmbeddedBuildTable(t *testing.T) {
	tb, err := ParseBuildTable(buildsTxt)
	require.NoError(t, err)
	again, err := ParseBuildTable(tb.Format())
	require.NoError(t, err)
	assert.Equal(t, tb, again)
	var body []string
	for _, l := range strings.Split(buildsTxt, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			body = append(body, l)
		}
	}
	assert.Equal(t, strings.Join(body, "\n")+"\n", tb.Format(), "builds.txt is not in Format's form (tramp vm bisect --table prints it)")
}

func FuzzParseBuildTable(f *testing.F) {
	f.Add(sampleTable)
	f.Add(buildsTxt)
	f.Fuzz(func(t *testing.T, s string) {
		tb, err := ParseBuildTable(s)
		if err != nil {
			return
		}
		again, err := ParseBuildTable(tb.Format())
		if err != nil {
			t.Fatalf("Format's output does not parse: %v\n%s", err, tb.Format())
		}
		if again.Format() != tb.Format() {
			t.Fatalf("Format is not stable:\n%s\n%s", tb.Format(), again.Format())
		}
		for _, d := range Deltas {
			for _, a := range DefaultArches() {
				tb.decide(&d, MustVersion("7.2.10"), a)
			}
		}
	})
}
