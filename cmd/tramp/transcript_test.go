package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/bpftramp/tramp/internal/golden"
)

const transcriptFile = "testdata/transcript.txt"

// transcriptCommands are the offline commands whose whole output the
// transcript pins: what a reviewer reads, so that a change to the model,
// a generator or a printer shows up as a diff of it.
var transcriptCommands = [][]string{
	{"link", "cases/fsession_no_cookie_between.tramp"},
	{"plan", "cases/fsession_two_cookies_mixed.tramp"},
	{"explain", "--line", "5", "cases/fsession_cookie.tramp"},
	{"explain", "--arch", "arm64", "--line", "5", "cases/fsession_cookie.tramp"},
	{"emu", "cases/fsession_cookie.tramp"},
	{"emu", "--arch", "arm64", "cases/fsession_fmod_ret.tramp"},
	{"diff", "--from", "linux-7.2.8", "--to", "debian-7.2.13", "cases/fsession_two_cookies_mixed.tramp"},
	{"gen", "--format", "hex", "--arch", "x86_64", "cases/fsession_two_cookies_mixed.tramp"},
}

// TestTranscript runs transcriptCommands and compares stdout, stderr and
// the exit code of each with testdata/transcript.txt.
func TestTranscript(t *testing.T) {
	t.Chdir("../..")
	var got strings.Builder
	for _, args := range transcriptCommands {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		fmt.Fprintf(&got, "$ tramp %s\n%s", strings.Join(args, " "), stdout.String())
		if stderr.Len() > 0 {
			fmt.Fprintf(&got, "[stderr]\n%s", stderr.String())
		}
		fmt.Fprintf(&got, "[exit %d]\n\n", code)
	}
	golden.Check(t, "cmd/tramp/"+transcriptFile, got.String(), "go test ./cmd/tramp -run TestTranscript")
}
