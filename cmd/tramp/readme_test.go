package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// offlineCommands are the tramp commands a README listing may show that
// run without booting anything; their listings are checked here.
var offlineCommands = map[string]bool{"link": true, "plan": true, "explain": true, "gen": true, "emu": true, "diff": true, "check": true, "timeline": true, "observed": true}

// readmeListing is one "$ tramp ..." command in a README code block and
// the output lines shown under it ("..." marks lines left out).
type readmeListing struct {
	line   int
	args   []string
	output []string
}

func readmeListings(t *testing.T, text string) []readmeListing {
	t.Helper()
	var out []readmeListing
	var cur *readmeListing
	inBlock := false
	for i, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "```") {
			inBlock = !inBlock
			cur = nil
			continue
		}
		if !inBlock {
			continue
		}
		if cmd, ok := strings.CutPrefix(l, "$ "); ok {
			cur = nil
			cmd, _, _ = strings.Cut(cmd, "#")
			f := strings.Fields(cmd)
			if len(f) < 2 || f[0] != "tramp" || !offlineCommands[f[1]] || strings.ContainsAny(cmd, "><|") {
				continue
			}
			out = append(out, readmeListing{line: i + 1, args: f[1:]})
			cur = &out[len(out)-1]
			continue
		}
		if cur != nil {
			cur.output = append(cur.output, strings.TrimRight(l, " "))
		}
	}
	return out
}

// TestReadmeListings runs every offline "$ tramp ..." listing of the
// README and requires each line it shows, in order, in the real output
// ("..." stands for lines left out), so the listings cannot go stale.
func TestReadmeListings(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	t.Chdir("../..")
	ls := readmeListings(t, string(b))
	if len(ls) < 3 {
		t.Fatalf("found %d offline listings in README.md; the parser or the README changed", len(ls))
	}
	for _, l := range ls {
		var stdout, stderr bytes.Buffer
		code := run(l.args, &stdout, &stderr)
		if code != exitOK {
			t.Errorf("README.md:%d: tramp %s exits %d:\n%s", l.line, strings.Join(l.args, " "), code, stderr.String())
			continue
		}
		got := strings.Split(stdout.String(), "\n")
		for i := range got {
			got[i] = strings.TrimRight(got[i], " ")
		}
		j := 0
		for k, want := range l.output {
			if want == "..." || want == "" {
				continue
			}
			for j < len(got) && got[j] != want {
				j++
			}
			if j == len(got) {
				t.Errorf("README.md:%d: tramp %s: line %d of the listing is not in the output (in order):\n  %s\noutput:\n%s",
					l.line, strings.Join(l.args, " "), k+1, want, stdout.String())
				break
			}
			j++
		}
	}
}
