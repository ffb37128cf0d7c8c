package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/transcript.txt from the commands' output (read the diff before committing)")

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
	path := "cmd/tramp/" + transcriptFile
	if *update {
		if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/tramp -run TestTranscript -update writes it)", err)
	}
	if d := cmp.Diff(string(want), got.String()); d != "" {
		t.Errorf("the commands' output differs from %s (-want +got); if the change is meant, -update rewrites it:\n%s", transcriptFile, d)
	}
}
