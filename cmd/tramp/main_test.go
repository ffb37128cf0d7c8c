package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func runTramp(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func writeCase(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.tramp")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsageAndExitCodes(t *testing.T) {
	if code, _, e := runTramp(); code != exitUsage || !strings.Contains(e, "usage: tramp") {
		t.Errorf("no args: code %d, stderr %q", code, e)
	}
	if code, _, _ := runTramp("bogus"); code != exitUsage {
		t.Errorf("unknown command: code %d", code)
	}
	for _, c := range commands() {
		if code, o, e := runTramp(c.name, "--help"); code != exitOK || !strings.Contains(o+e, "usage: tramp "+c.name) {
			t.Errorf("%s --help: code %d, output %q", c.name, code, o+e)
		}
	}
	if code, _, _ := runTramp("link", "--nosuchflag", "x"); code != exitUsage {
		t.Errorf("bad flag: code %d", code)
	}
	if code, _, e := runTramp("link", "/nonexistent.tramp"); code != exitUsage || !strings.Contains(e, "nonexistent") {
		t.Errorf("missing file: code %d %q", code, e)
	}
	bad := writeCase(t, "target bpf_fentry_test1\nprog s fsesion\n")
	if code, _, e := runTramp("link", bad); code != exitUsage || !strings.Contains(e, "c.tramp:2:8:") {
		t.Errorf("bad case: code %d %q", code, e)
	}
}

// The JSON contract of 'tramp link --json'.
func TestLinkJSON(t *testing.T) {
	p := writeCase(t, "target bpf_fentry_test1\nprog s fsession\nprog e fentry\nattach s\nattach e expect ok\ndetach e\nattach s expect EBUSY\n")
	code, out, e := runTramp("link", p, "--json")
	if code != exitOK {
		t.Fatalf("code %d: %s", code, e)
	}
	var got struct {
		Ops []struct {
			Op     string              `json:"op"`
			Prog   string              `json:"prog"`
			Result string              `json:"result"`
			Lists  map[string][]string `json:"lists"`
			Flags  string              `json:"flags"`
		} `json:"ops"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	type op = struct {
		Op     string              `json:"op"`
		Prog   string              `json:"prog"`
		Result string              `json:"result"`
		Lists  map[string][]string `json:"lists"`
		Flags  string              `json:"flags"`
	}
	lists := func(fentry, fexit []string) map[string][]string {
		return map[string][]string{"fentry": fentry, "fexit": fexit, "fmod_ret": {}}
	}
	want := []op{
		{"attach", "s", "ok", lists([]string{"s"}, []string{"s"}), "0x2"},
		{"attach", "e", "ok", lists([]string{"e", "s"}, []string{"s"}), "0x2"},
		{"detach", "e", "ok", lists([]string{"s"}, []string{"s"}), "0x2"},
		{"attach", "s", "EBUSY", lists([]string{"s"}, []string{"s"}), "0x2"},
	}
	if diff := cmp.Diff(want, got.Ops); diff != "" {
		t.Errorf("ops (-want +got):\n%s", diff)
	}
}

func TestLinkExpectMismatchExits1(t *testing.T) {
	p := writeCase(t, "target bpf_fentry_test1\nprog s fsession\nattach s expect E2BIG\n")
	code, out, e := runTramp("link", p)
	if code != exitCheck || !strings.Contains(e, "c.tramp:3: attach s: model says ok, the case expects E2BIG") || !strings.Contains(out, "MISMATCH") {
		t.Errorf("code %d\nstdout %s\nstderr %s", code, out, e)
	}
}

func TestCheckCorpus(t *testing.T) {
	code, out, e := runTramp("check")
	if code != exitOK || !strings.Contains(out, " 0 failed") {
		t.Errorf("code %d\n%s\n%s", code, out, e)
	}
	p := writeCase(t, "target bpf_fentry_test1\nprog s fsession\nattach s expect EBUSY\n")
	if code, out, _ := runTramp("check", p); code != exitCheck || !strings.Contains(out, "FAIL") {
		t.Errorf("failing case: code %d\n%s", code, out)
	}
}

func TestPlan(t *testing.T) {
	p := writeCase(t, "target bpf_fentry_test1\nprog s fsession cookie\nattach s\n")
	code, out, e := runTramp("plan", "--arch", "arm64", p)
	if code != exitOK {
		t.Fatalf("code %d %s", code, e)
	}
	for _, want := range []string{`"arch": "arm64"`, `"func_meta": "0x201"`, `"func_meta": "0x8000000000000201"`, `"flags": "0x6"`} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %s:\n%s", want, out)
		}
	}
}

// tramp diff --recording: the model against a real kernel's images.
func TestDiffRecording(t *testing.T) {
	rec := "../../cases/testdata/debian-7.2.13/x86_64/fsession_cookie.json"
	if code, out, e := runTramp("diff", "--recording", rec); code != exitOK || !strings.Contains(out, "byte-exact") {
		t.Errorf("code %d\n%s\n%s", code, out, e)
	}
	wrong := writeCase(t, "target bpf_fentry_test1\nprog s fsession\nattach s\n")
	if code, out, _ := runTramp("diff", "--recording", rec, wrong); code != exitCheck || !strings.Contains(out, "differ") {
		t.Errorf("wrong case: code %d\n%s", code, out)
	}
	if code, _, _ := runTramp("diff", "--recording", "/nonexistent.json"); code != exitUsage {
		t.Errorf("missing recording: code %d", code)
	}
}

// TestGenFeatures: --features changes the x86 ending and adds call-depth
// accounting; bad lists and other arches are usage errors.
func TestGenFeatures(t *testing.T) {
	p := writeCase(t, "target bpf_fentry_test1\nprog s fsession cookie\nattach s\n")
	hexOf := func(args ...string) string {
		t.Helper()
		code, out, e := runTramp(append([]string{"gen", "--format", "hex"}, append(args, p)...)...)
		if code != exitOK {
			t.Fatalf("gen %v: code %d: %s", args, code, e)
		}
		return strings.TrimSpace(out)
	}
	def := hexOf()
	if !strings.HasSuffix(def, "c9 c3 cc") {
		t.Errorf("default ending: ...%s", def[len(def)-12:])
	}
	its := hexOf("--features", "endbr,sls,rethunk=its_return_thunk")
	if !strings.Contains(its[len(its)-18:], "c9 e9") || len(its) != len(def)+9 {
		t.Errorf("rethunk ending: ...%s", its[len(its)-18:])
	}
	cd := hexOf("--features", "endbr,sls,calldepth")
	if !strings.HasPrefix(cd, "65 48 c1 3d") {
		t.Errorf("call depth: starts %s", cd[:12])
	}
	for _, args := range [][]string{{"--features", "retpoline"}, {"--features", "rethunk="}, {"--arch", "arm64", "--features", "sls"}} {
		if code, _, e := runTramp(append(append([]string{"gen"}, args...), p)...); code != exitUsage || !strings.Contains(e, "--features") {
			t.Errorf("gen %v: code %d %q", args, code, e)
		}
	}
	if code, _, e := runTramp("diff", "--recording", "x.json", "--features", "sls"); code != exitUsage || !strings.Contains(e, "--features") {
		t.Errorf("diff --recording --features: code %d %q", code, e)
	}
}
